// NBD URIs (NetworkBlockDevice doc/uri.md): the examples of the standard, what this
// client refuses and why, and formatNbdUrl as the inverse of parseNbdUrl.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isCowmapError } from '../../errors.ts';
import { formatNbdUrl, isNbdUrl, type NbdAddress, parseNbdUrl } from './nbdUrl.ts';

const tcp = (host: string, port: number, exportName: string): NbdAddress => ({ kind: 'tcp', host, port, exportName });
const unix = (socketPath: string, exportName: string): NbdAddress => ({ kind: 'unix', socketPath, exportName });

describe('parseNbdUrl', () => {
  const cases: [string, NbdAddress][] = [
    // doc/uri.md's table of export names.
    ['nbd://example.com/disk', tcp('example.com', 10809, 'disk')],
    ['nbd+unix:///disk?socket=sock', unix('sock', 'disk')],
    ['nbd://example.com/', tcp('example.com', 10809, '')],
    ['nbd://example.com', tcp('example.com', 10809, '')],
    ['nbd://example.com//disk', tcp('example.com', 10809, '/disk')],
    ['nbd://example.com/hello%20world', tcp('example.com', 10809, 'hello world')],
    ['nbd://127.0.0.1:10810/vol', tcp('127.0.0.1', 10810, 'vol')],
    ['nbd://[::1]:2000/x', tcp('::1', 2000, 'x')],
    ['nbd://[::1]', tcp('::1', 10809, '')],
    ['NBD://Host:1/e', tcp('Host', 1, 'e')],
    ['nbd+unix:///?socket=/run/nbd%20x.sock', unix('/run/nbd x.sock', '')],
    ['nbd+unix:///?socket=%00/abstract', unix('\0/abstract', '')],
    ['nbd+unix:///a+b?socket=a+b', unix('a+b', 'a+b')],
  ];
  for (const [text, address] of cases) {
    test(text, () => assert.deepEqual(parseNbdUrl(text), address));
  }
});

describe('parseNbdUrl refuses, naming what is wrong (E_BAD_REQUEST)', () => {
  const cases: [string, RegExp][] = [
    ['nbds://example.com/disk', /TLS \(nbds\) is not supported/],
    ['nbds+unix:///disk?socket=s', /TLS \(nbds\+unix\) is not supported/],
    ['http://example.com/', /unknown scheme 'http'/],
    ['nbd+vsock://2:10809/', /unknown scheme 'nbd\+vsock'/],
    ['nbd:example.com', /the authority part is missing/],
    ['nbd://example.com/x?socket=s', /nbd:\/\/ takes no query parameters \(got socket\)/],
    ['nbd+unix:///x', /needs the query parameter socket=PATH/],
    ['nbd+unix:///x?socket=', /needs the query parameter socket=PATH/],
    ['nbd+unix:///x?socket=a&socket=b', /'socket' is given twice/],
    ['nbd+unix:///x?socket=a&tls-type=x509', /TLS \(tls-type\) is not supported/],
    ['nbd+unix:///x?socket=a&x-foo=1', /unknown query parameter 'x-foo'/],
    ['nbd+unix://host/x?socket=a', /takes no host \('host'\)/],
    ['nbd://example.com:0/', /the port '0' is not a number from 1 to 65535/],
    ['nbd://example.com:65536/', /the port '65536'/],
    ['nbd://example.com:12ab/', /the port '12ab'/],
    ['nbd:///disk', /nbd:\/\/ needs a host/],
    ['nbd://user@example.com/', /user information/],
    ['nbd://::1/', /an IPv6 address is written in brackets/],
    ['nbd://[not-v6]/', /'\[not-v6\]' is not an IPv6 address/],
    ['nbd://exa mple.com/', /'exa mple.com' is not a host name/],
    ['nbd://example.com/%zz', /the export name '%zz' is not valid percent-encoding/],
    ['nbd://example.com/a%00b', /the export name contains NUL/],
    ['nbd://example.com/disk#part', /a fragment \('#part'\)/],
    [`nbd://example.com/${'x'.repeat(4097)}`, /longer than 4096 bytes/],
    ['not a uri at all', /not a URI/],
  ];
  for (const [text, problem] of cases) {
    test(text.length > 60 ? `${text.slice(0, 60)}...` : text, () => {
      assert.throws(
        () => parseNbdUrl(text),
        (error: unknown) =>
          isCowmapError(error, 'E_BAD_REQUEST') && problem.test(error.message) && error.message.includes(text),
      );
    });
  }
});

test('isNbdUrl: every NBD scheme (so that a refused one is an error, not a directory), nothing else', () => {
  for (const text of ['nbd://h/e', 'nbd+unix:///e?socket=s', 'NBD://h', 'nbds://h/e', 'nbds+unix:///?socket=s'])
    assert.equal(isNbdUrl(text), true, text);
  for (const text of ['', 'secondary', '../dir', '/abs/nbd://', 'nbd', 'nbd:/x', 'consistent:dir', 'http://h/'])
    assert.equal(isNbdUrl(text), false, text);
});

describe('formatNbdUrl is the inverse of parseNbdUrl', () => {
  test('the standard forms', () => {
    for (const text of [
      'nbd://example.com/disk',
      'nbd://[::1]:2000/x',
      'nbd+unix:///disk?socket=/run/s.sock',
      'nbd://h:1/',
    ]) {
      assert.equal(formatNbdUrl(parseNbdUrl(text)), text);
    }
  });

  test('the default port is left out', () => {
    assert.equal(formatNbdUrl(tcp('h', 10809, 'e')), 'nbd://h/e');
  });

  test('random export names, hosts and socket paths', () => {
    const seed = Date.now() % 1_000_000;
    process.stdout.write(`# formatNbdUrl round trip seed ${seed}\n`);
    let state = seed;
    const random = (below: number): number => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state % below;
    };
    const alphabet = [
      'a',
      'Z',
      '0',
      ' ',
      '/',
      '%',
      '?',
      '#',
      '&',
      '=',
      '+',
      ':',
      '@',
      '[',
      ']',
      "'",
      '~',
      'é',
      '日',
      '\u{1F600}',
    ];
    const text = (length: number): string => Array.from({ length }, () => alphabet[random(alphabet.length)]).join('');
    const hosts = ['example.com', '127.0.0.1', '::1', 'fe80::1', 'h-1.example'];
    for (let round = 0; round < 500; round++) {
      const address: NbdAddress =
        random(2) === 0
          ? tcp(hosts[random(hosts.length)]!, 1 + random(65535), text(random(12)))
          : unix(`/${text(1 + random(12))}`, text(random(12)));
      assert.deepEqual(
        parseNbdUrl(formatNbdUrl(address)),
        address,
        `seed ${seed} round ${round}: ${formatNbdUrl(address)}`,
      );
    }
  });
});
