// The storage errors the crash layer (harness/crash/crashStorage.ts) injects with
// armFault, shaped as node:fs shapes its own (code, errno, syscall, path), and the
// reading of an error's code that the layer uses for errors of the wrapped storage.

import type { DurableIoKind } from '../storage/storageCall.ts';

export type FaultCode = 'ENOSPC' | 'EIO';

export interface ArmFaultOptions {
  /** The (afterIo + 1)-th durable call from now fails. */
  afterIo: number;
  code: FaultCode;
}

const faultErrno: Record<FaultCode, number> = { ENOSPC: -28, EIO: -5 };
const faultText: Record<FaultCode, string> = { ENOSPC: 'no space left on device', EIO: 'i/o error' };

export function faultError(code: FaultCode, kind: DurableIoKind, path: string): Error {
  return Object.assign(new Error(`${code}: ${faultText[code]} (injected), ${kind} '${path}'`), {
    code,
    errno: faultErrno[code],
    syscall: kind,
    path,
  });
}

/** The `code` of an error as node:fs sets it, or undefined. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
