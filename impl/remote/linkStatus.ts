// The status of the link to a remote secondary (impl/remote/): what the replica's
// linkStatus() and probeLink() return, `cowmap status` prints and serve.status carries.

/** The link to a remote secondary, as status reports it. */
export interface LinkStatus {
  /** The secondary as recorded (nbd://HOST:PORT/EXPORT or nbd+unix:///EXPORT?socket=PATH). */
  readonly url: string;
  /** up: connected and handshaken; down: the last attempt failed; idle: not connected yet (connects on first use). */
  readonly state: 'up' | 'down' | 'idle';
  /** The last fault seen ("connect: ECONNREFUSED", "FLUSH: EIO reply", ...), null when none since open. */
  readonly lastError: string | null;
  /** When lastError happened, ms since the epoch; null when none. */
  readonly lastErrorAtMs: number | null;
  /** Connection attempts that failed since the last success. */
  readonly failedAttempts: number;
  /**
   * The far side's control block as last read or written: the last cycle it
   * confirmed complete and that cycle's swap time (0 unknown); null before the
   * first connect.
   */
  readonly far: { readonly completedCycle: number; readonly swapTimeMs: number } | null;
}
