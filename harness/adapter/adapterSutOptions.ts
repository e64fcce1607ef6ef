// How an AdapterSut runs its implementation: the options a caller gives, and
// their defaults in one place.

/** Where every line sent and received goes, with notes on the process's life ("started pid 123", "killed"). */
export type Transcript = (direction: 'request' | 'response' | 'note', line: string) => void;

/** The most processes kept started ahead of restarts. */
export const standbyCountMax = 8;

export interface AdapterSutOptions {
  /** How reports name it; default: the name and version from hello, or the command line. */
  readonly name?: string;
  /** Every request, hello included: no answer in time is a ProtocolError. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Waiting for the process to exit after its stdin closed, or after a kill. Default 10 s. */
  readonly exitTimeoutMs?: number;
  /** The longest line the implementation may print. Default 128 MiB (a 64 MiB region in base64 fits). */
  readonly maxLineBytes?: number;
  /** How much of its standard error is kept for messages. Default 64 KiB. */
  readonly stderrBytesMax?: number;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** The name prefix of the temporary volume directories (made under the system temp dir). Default cowmap-adapter-. */
  readonly tempPrefix?: string;
  /**
   * Where the temporary volume directories are made (default: the system temp dir,
   * which TMPDIR sets). A RAM-backed one (/dev/shm) makes an implementation's
   * fsyncs nearly free, and conformance never relies on them: process crashes lose
   * nothing that reached the OS, power losses are the adapter's own simulation.
   * Not the default: an implementation using O_DIRECT cannot open files there.
   */
  readonly tempDir?: string;
  /** Every line sent and received, and notes such as "started pid 123" and "killed" (for `conform --transcript`). */
  readonly transcript?: Transcript;
  /**
   * close() closes the volume but keeps the process for the next create (end() ends
   * it): one process serves every run that has no crash. Default false: close() ends it.
   */
  readonly keepProcess?: boolean;
  /**
   * After the first crash, keep this many processes started ahead (hello sent, no
   * volume open), so that the restart of recover() does not wait for the
   * implementation's start-up: generated sequences crash every few steps, and
   * an implementation's start-up (an interpreter, a version-manager shim) takes
   * far longer than a step, so a few start side by side. Default 3; 0: none.
   */
  readonly standbyCount?: number;
}

/** The timeouts and bounds of an AdapterSut, defaults applied. */
export interface AdapterSutLimits {
  readonly requestTimeoutMs: number;
  readonly exitTimeoutMs: number;
  readonly maxLineBytes: number;
  readonly stderrBytesMax: number;
  readonly standbyCount: number;
}

export function adapterSutLimits(options: AdapterSutOptions): AdapterSutLimits {
  const standbyCount = options.standbyCount ?? 3;
  if (!Number.isSafeInteger(standbyCount) || standbyCount < 0 || standbyCount > standbyCountMax) {
    throw new RangeError(`AdapterSut: standbyCount must be an integer in 0..${standbyCountMax}, got ${standbyCount}`);
  }
  return {
    requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
    exitTimeoutMs: options.exitTimeoutMs ?? 10_000,
    maxLineBytes: options.maxLineBytes ?? 128 * 1024 * 1024,
    stderrBytesMax: options.stderrBytesMax ?? 64 * 1024,
    standbyCount,
  };
}
