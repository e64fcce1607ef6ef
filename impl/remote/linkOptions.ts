// How the primary talks to a remote secondary (docs/remote.md, "Faults and retries"):
// the NBD client's timeouts and requests in flight, and how long a call of the
// replica keeps retrying a fault before it gives up with ReplicaLinkError.

export interface LinkOptions {
  /** A connection attempt (TCP or Unix socket, then the handshake) that takes longer fails. */
  readonly connectTimeoutMs: number;
  /** A request without a reply for this long fails the connection (and every request on it). */
  readonly requestTimeoutMs: number;
  /**
   * Requests on the wire at once; the rest wait in the client. 64: a cycle's regions are
   * scattered, one WRITE each, and each round of them costs a round trip (at 5 ms a
   * request, 16 in flight made 164 regions 11 rounds; 64 make 3).
   */
  readonly inFlightMax: number;
  /**
   * Requests a call keeps issued (on the wire or waiting in the client) at most; a batch
   * of more goes in windows (impl/remote/nbdWorker.ts). Optional: tests make it small.
   */
  readonly issuedMax?: number;
  /**
   * How long one call of the replica (a batch, a confirmation, a read) keeps retrying
   * after a fault, from its first attempt; 0: one attempt only (cowmap serve, which
   * retries the cycle itself from a timer).
   */
  readonly retryBudgetMs: number;
  /** The wait before the first retry; each next wait doubles, up to backoffMaxMs. */
  readonly backoffFirstMs: number;
  readonly backoffMaxMs: number;
}

/** What `cowmap cycle` and a library open use: about a minute of retries. */
export const linkOptionsDefault: LinkOptions = {
  connectTimeoutMs: 5_000,
  requestTimeoutMs: 30_000,
  inFlightMax: 64,
  retryBudgetMs: 60_000,
  backoffFirstMs: 100,
  backoffMaxMs: 5_000,
};

/** The defaults with the given fields replaced. */
export function linkOptionsWith(overrides: Partial<LinkOptions> | undefined): LinkOptions {
  return { ...linkOptionsDefault, ...overrides };
}
