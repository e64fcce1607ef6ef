// The two ways an NBD request fails. NbdReplyError: the server answered this one
// request with an error (the connection is fine, nothing else is affected).
// NbdLinkError: the connection failed (refused, dropped, timed out, the server broke
// the protocol, or the handshake was refused); every request outstanding on it fails
// with one, and none of them is confirmed: a WRITE whose reply never came may or may
// not have reached the disk.

import { errnoNames, optionReplyNames } from '../protocol.ts';

export class NbdReplyError extends Error {
  readonly errno: number;
  readonly errnoName: string;
  readonly command: string;

  constructor(command: string, errno: number, where: string) {
    const errnoName = errnoNameOf(errno);
    super(`NBD ${command}${where === '' ? '' : ` ${where}`}: the server replied ${errnoName}`);
    this.name = 'NbdReplyError';
    this.errno = errno;
    this.errnoName = errnoName;
    this.command = command;
  }
}

/** An NBD error value's name; doc/proto.md asks a client to take an unknown one as EINVAL, so its name says both. */
export function errnoNameOf(errno: number): string {
  return errnoNames[errno] ?? `errno ${errno} (unknown, taken as EINVAL)`;
}

export class NbdLinkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NbdLinkError';
  }
}

/**
 * The server refused the handshake with an option reply error (NBD_REP_ERR_UNKNOWN for
 * an export it does not have, _POLICY, _TLS_REQD, ...), or closed the connection
 * after NBD_OPT_EXPORT_NAME (its only way to refuse an export). A link error, but one
 * that a retry on a healthy link meets again: a caller may tell it apart to stop
 * retrying. `replyType` is null when the server could only close the connection.
 */
export class NbdHandshakeError extends NbdLinkError {
  readonly exportName: string;
  readonly replyType: number | null;

  constructor(exportName: string, replyType: number | null, message: string) {
    super(message);
    this.name = 'NbdHandshakeError';
    this.exportName = exportName;
    this.replyType = replyType;
  }
}

/** An option reply type's name, for messages. */
export function optionReplyNameOf(type: number): string {
  return optionReplyNames[type] ?? `option reply 0x${type.toString(16)}`;
}
