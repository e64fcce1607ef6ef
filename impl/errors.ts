// The errors a caller of the volume sees. Every rejection of docs/protocol.md section 2 is a
// CowmapError with its protocol code; a failing storage call (ENOSPC, EIO, ...) becomes
// the project code E_IO. A broken invariant inside impl/ is a bug and fails an
// assertion (impl/assert.ts) instead: it is never reported as a CowmapError.

export const errorCodes = [
  'E_RANGE',
  'E_SIZE',
  'E_PHASE',
  'E_NOT_CURRENT',
  'E_NOT_DRAINED',
  'E_CORRUPT',
  'E_NOT_FOUND',
  'E_EXISTS',
  'E_LOCKED',
  'E_BAD_REQUEST',
  // A project code (docs/protocol.md section 2): a storage call failed. The call that saw it fails,
  // and the volume handle is poisoned until it is reopened (docs/format.md).
  'E_IO',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class CowmapError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CowmapError';
    this.code = code;
  }
}

/**
 * A fault of the link to a remote secondary or of the far side that outlasted the
 * replica's retries: E_IO (refused, dropped, an NBD error reply, a FLUSH that
 * failed), or E_CORRUPT (the far side is the wrong size, another volume's, or lost
 * cycles it had confirmed complete). The call that saw it changed nothing durable
 * on the primary: the regions it was sending are not counted as sent and the cycle
 * stays running, so the handle is NOT poisoned (impl/volumeCore.ts, perform) and
 * the call may be retried. `lostSent`: the far side lost regions of the running
 * cycle that it had confirmed, so every region of C counts as unsent again.
 */
export class ReplicaLinkError extends CowmapError {
  readonly lostSent: boolean;

  constructor(code: 'E_IO' | 'E_CORRUPT', message: string, options?: { cause?: unknown; lostSent?: boolean }) {
    super(code, message, options);
    this.name = 'ReplicaLinkError';
    this.lostSent = options?.lostSent === true;
  }
}

export function isCowmapError(error: unknown, code?: ErrorCode): error is CowmapError {
  return error instanceof CowmapError && (code === undefined || error.code === code);
}

/**
 * True for an error thrown by a storage call: node:fs errors and the errors a
 * fault-injecting Storage makes in their image. They carry an errno name such as
 * ENOSPC or EIO in `code`. Our own codes have an underscore after the E, so they
 * never match; neither does anything else (a harness's simulated crash included),
 * which must travel up untouched.
 */
export function isStorageError(error: unknown): error is Error & { code: string } {
  if (!(error instanceof Error) || error instanceof CowmapError) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}
