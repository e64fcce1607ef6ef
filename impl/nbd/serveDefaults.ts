// The defaults of `cowmap serve`'s limits and knobs (NbdServerOptions), defined once:
// the server applies them and the command's --help prints them. docs/nbd.md
// ("Limits") says why each is what it is.

export const serveDefaults = {
  /** The largest READ/WRITE payload (NBD_INFO_BLOCK_SIZE maximum): 32 MiB, as nbdkit and qemu use. */
  payloadMax: 32 * 1024 * 1024,
  /** The one cap on request payload and reply bytes held across all connections. */
  bufferBytesMax: 256 * 1024 * 1024,
  connectionsMax: 64,
  handshakeTimeoutSeconds: 10,
  requestTimeoutSeconds: 60,
  /** Requests in one group-commit batch. */
  batchRequestsMax: 64,
  /** TRIM / WRITE_ZEROES bytes written per batch. */
  chunkBytes: 1024 * 1024,
  summaryEverySeconds: 60,
  /**
   * Bytes per transfer slice of a cycle when --batch-regions is not given: the
   * slice is one transferRegions call (one sync of the secondary), so larger
   * slices sync less; 8 MiB keeps a slice to tens of milliseconds, which is what a
   * client request may wait behind it. 256 KiB regions: 32 per slice.
   */
  sliceBytes: 8 * 1024 * 1024,
  /** Requests a connection may have queued before it stops reading its socket. */
  queuedPerConnectionMax: 1024,
} as const;
