// The address of an NBD export as a URI (NetworkBlockDevice doc/uri.md, on RFC 3986):
// nbd://HOST[:PORT][/EXPORT] over TCP and nbd+unix:///EXPORT?socket=PATH over a Unix
// socket. The export name is the path without its leading '/', percent-decoded. This
// client speaks no TLS, so nbds and nbds+unix are refused by name (doc/uri.md asks a
// client without TLS to give an error), as is every query parameter but `socket`.

import { isIPv6 } from 'node:net';
import { CowmapError } from '../../errors.ts';

export type NbdAddress =
  | { kind: 'tcp'; host: string; port: number; exportName: string }
  | { kind: 'unix'; socketPath: string; exportName: string };

/** The NBD port assigned by IANA: the port of a URI that names none. */
export const nbdDefaultPort = 10809;

/**
 * True when `text` names an NBD URI scheme (nbd, nbds, nbd+unix, nbds+unix, ...):
 * the caller then parses it, so that a URI this client refuses (TLS, another
 * transport) is an error naming what is wrong, not a directory of that name.
 */
export function isNbdUrl(text: string): boolean {
  return /^nbds?(\+[a-z0-9.-]+)?:\/\//i.test(text);
}

// RFC 3986 appendix B: scheme, authority, path, query, fragment.
const uriPattern = /^([a-zA-Z][a-zA-Z0-9+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/;

function bad(text: string, problem: string): CowmapError {
  return new CowmapError('E_BAD_REQUEST', `NBD URI '${text}': ${problem}`);
}

function decode(text: string, part: string, encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw bad(text, `the ${part} '${encoded}' is not valid percent-encoding`);
  }
}

export function parseNbdUrl(text: string): NbdAddress {
  const match = uriPattern.exec(text);
  if (match === null)
    throw bad(text, 'not a URI (expected nbd://HOST[:PORT][/EXPORT] or nbd+unix:///EXPORT?socket=PATH)');
  const [, schemeText, authority, path, query, fragment] = match;
  const scheme = schemeText!.toLowerCase();
  if (scheme === 'nbds' || scheme === 'nbds+unix')
    throw bad(text, `TLS (${scheme}) is not supported; use nbd or nbd+unix`);
  if (scheme !== 'nbd' && scheme !== 'nbd+unix')
    throw bad(text, `unknown scheme '${schemeText}' (expected nbd or nbd+unix)`);
  if (authority === undefined) throw bad(text, `expected '${scheme}://' (the authority part is missing)`);
  if (fragment !== undefined) throw bad(text, `a fragment ('#${fragment}') has no meaning in an NBD URI`);
  if (path !== '' && !path!.startsWith('/')) throw bad(text, `the path '${path}' must start with '/'`);
  const exportName = decode(text, 'export name', path!.slice(1));
  if (exportName.includes('\0')) throw bad(text, 'the export name contains NUL');
  if (Buffer.byteLength(exportName) > 4096) throw bad(text, 'the export name is longer than 4096 bytes');
  const parameters = parseQuery(text, query);
  if (scheme === 'nbd') {
    if (parameters.size > 0)
      throw bad(text, `nbd:// takes no query parameters (got ${[...parameters.keys()].join(', ')})`);
    return { kind: 'tcp', ...parseAuthority(text, authority), exportName };
  }
  if (authority !== '')
    throw bad(text, `nbd+unix:// takes no host ('${authority}'): write nbd+unix:///EXPORT?socket=PATH`);
  const socketPath = parameters.get('socket');
  if (socketPath === undefined || socketPath === '')
    throw bad(text, 'nbd+unix:// needs the query parameter socket=PATH');
  return { kind: 'unix', socketPath, exportName };
}

/** The query's parameters: only `socket`, at most once; anything else is refused by name. */
function parseQuery(text: string, query: string | undefined): Map<string, string> {
  const parameters = new Map<string, string>();
  if (query === undefined || query === '') return parameters;
  for (const pair of query.split('&')) {
    const equals = pair.indexOf('=');
    const key = decode(text, 'query parameter', equals < 0 ? pair : pair.slice(0, equals));
    const value = equals < 0 ? '' : decode(text, `value of ${key}`, pair.slice(equals + 1));
    if (key.startsWith('tls')) throw bad(text, `TLS (${key}) is not supported`);
    if (key !== 'socket') throw bad(text, `unknown query parameter '${key}' (only socket is understood)`);
    if (parameters.has(key)) throw bad(text, `the query parameter '${key}' is given twice`);
    parameters.set(key, value);
  }
  return parameters;
}

function parseAuthority(text: string, authority: string): { host: string; port: number } {
  if (authority.includes('@'))
    throw bad(text, 'user information (USER@) is for TLS authentication, which is not supported');
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(authority);
  let host: string;
  let portText: string | undefined;
  if (bracketed !== null) {
    host = decode(text, 'host', bracketed[1]!);
    if (!isIPv6(host)) throw bad(text, `'[${bracketed[1]}]' is not an IPv6 address`);
    portText = bracketed[2];
  } else {
    const colon = authority.lastIndexOf(':');
    host = decode(text, 'host', colon < 0 ? authority : authority.slice(0, colon));
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
    if (host.includes(':')) throw bad(text, `an IPv6 address is written in brackets: nbd://[${host}]/`);
    if (!/^[A-Za-z0-9._~!$&'()*+,;=-]*$/.test(host)) throw bad(text, `'${host}' is not a host name`);
  }
  if (host === '') throw bad(text, 'nbd:// needs a host (nbd://HOST[:PORT][/EXPORT])');
  if (portText === undefined || portText === '') return { host, port: nbdDefaultPort };
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) throw bad(text, `the port '${portText}' is not a number from 1 to 65535`);
  return { host, port };
}

// Percent-encodes all but RFC 3986's unreserved characters and '/', which a path and
// a query may hold as they are (a socket path stays readable).
function encode(text: string): string {
  return encodeURIComponent(text).replace(/%2F/g, '/');
}

/** The URI of `address`; parseNbdUrl(formatNbdUrl(a)) equals a. */
export function formatNbdUrl(address: NbdAddress): string {
  const path = `/${encode(address.exportName)}`;
  if (address.kind === 'unix') return `nbd+unix://${path}?socket=${encode(address.socketPath)}`;
  const host = address.host.includes(':') ? `[${address.host.replace(/%/g, '%25')}]` : encode(address.host);
  const port = address.port === nbdDefaultPort ? '' : `:${address.port}`;
  return `nbd://${host}${port}${path}`;
}
