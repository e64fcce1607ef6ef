// The connection of a remote replica and its faults (docs/remote.md, "Faults and
// retries"): connects lazily, checks the far side on every connect before anything
// is written (the export's size, then the control block through the replica's
// judge), and runs each operation with retries: a LinkFault drops the connection,
// waits with bounded exponential backoff and runs the WHOLE operation again, within
// the retry budget; past it the operation fails with ReplicaLinkError E_IO naming
// the operation and the last fault. The link's status is kept for `cowmap status`.

import { ReplicaLinkError } from '../errors.ts';
import type { Geometry } from '../geometry.ts';
import type { LinkStatus } from './linkStatus.ts';
import {
  controlBlockSize,
  controlOffsetOf,
  type DecodedControl,
  decodeControlBlock,
  exportSizeOf,
} from './controlBlock.ts';
import type { LinkOptions } from './linkOptions.ts';
import { LinkFault, type RemoteExportInfo, type RemoteLink, type RemoteLinkFactory } from './remoteLink.ts';

/**
 * Judges the far side's control block at a connect: throws ReplicaLinkError (never
 * retried) when the export must not be used, returns otherwise.
 */
export type FarJudge = (decoded: DecodedControl, link: RemoteLink) => void;

/** One operation's own retry budget, when not the link's (a probe makes one attempt). */
export interface RunOptions {
  retryBudgetMs?: number;
}

const sleeper = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));

/** Blocks the thread for `ms` (the replica is synchronous: nothing else runs meanwhile). */
function sleepMs(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

export class LinkSession {
  readonly url: string;
  private readonly options: LinkOptions;
  private readonly factory: RemoteLinkFactory;
  private readonly geometry: Geometry;
  /** Set by the replica: false when it never writes (a read-only open), so that a read-only export serves it. */
  writes = true;
  /** Set by the replica: how a connect judges the far side's control block. */
  judge: FarJudge = () => {};
  private link: RemoteLink | null = null;
  private exportInfo: RemoteExportInfo | null = null;
  /** Counts successful connects: an operation tells a new connection from the one it used before. */
  private connects = 0;
  private state: LinkStatus['state'] = 'idle';
  private lastError: string | null = null;
  private lastErrorAtMs: number | null = null;
  private failedAttempts = 0;
  /** What status shows of the far side; the replica updates it as it reads and writes control blocks. */
  far: LinkStatus['far'] = null;

  constructor(url: string, geometry: Geometry, options: LinkOptions, factory: RemoteLinkFactory) {
    this.url = url;
    this.geometry = geometry;
    this.options = options;
    this.factory = factory;
  }

  /** The serial number of the current connection (0: none yet). */
  get connection(): number {
    return this.connects;
  }

  get info(): RemoteExportInfo {
    if (this.exportInfo === null) throw new LinkFault('link', 'not connected');
    return this.exportInfo;
  }

  status(): LinkStatus {
    return {
      url: this.url,
      state: this.state,
      lastError: this.lastError,
      lastErrorAtMs: this.lastErrorAtMs,
      failedAttempts: this.failedAttempts,
      far: this.far,
    };
  }

  /**
   * Runs `body` on a connected, checked link; after a LinkFault, reconnects and runs
   * it again (from its start) until the budget is spent. ReplicaLinkError from the
   * judge or the body is not retried.
   */
  run<T>(operation: string, body: (link: RemoteLink) => T, runOptions: RunOptions = {}): T {
    const budgetMs = runOptions.retryBudgetMs ?? this.options.retryBudgetMs;
    const startedAtMs = Date.now();
    let backoffMs = this.options.backoffFirstMs;
    let reconnectedStale = false;
    for (let attempt = 1; ; attempt++) {
      const reused = this.link?.connected === true && this.exportInfo !== null;
      try {
        const result = body(this.connected());
        this.failedAttempts = 0;
        return result;
      } catch (error) {
        if (!(error instanceof LinkFault)) {
          if (error instanceof ReplicaLinkError) this.noteError(`${error.code}: ${error.message}`);
          throw error;
        }
        // Every attempt a fault ended counts, a dropped connection as much as a refused connect.
        this.failedAttempts++;
        this.noteError(`E_IO: ${error.message}`);
        this.drop();
        // A connection made before this call may have died while idle (the server restarted
        // between cycles): one fresh connection is tried at once, whatever the budget.
        if (reused && !reconnectedStale) {
          reconnectedStale = true;
          continue;
        }
        const elapsedMs = Date.now() - startedAtMs;
        if (elapsedMs + backoffMs > budgetMs) {
          throw new ReplicaLinkError(
            'E_IO',
            `${operation}: the secondary ${this.url} failed: ${error.message} ` +
              `(${attempt} attempt(s) in ${elapsedMs} ms, retry budget ${budgetMs} ms)`,
            { cause: error },
          );
        }
        sleepMs(backoffMs);
        backoffMs = Math.min(backoffMs * 2, this.options.backoffMaxMs);
      }
    }
  }

  /** Makes the link without connecting (the real one starts its worker thread then, so that a first connect does not wait for it). */
  prepare(): void {
    this.link ??= this.factory(this.url, this.options);
  }

  /** Ends the connection (NBD_CMD_DISC) and the link. */
  close(): void {
    const link = this.link;
    this.link = null;
    this.exportInfo = null;
    if (link === null) return;
    link.disconnect();
    link.close();
  }

  /** The link, connected and checked: a new connection is checked before the caller writes anything. */
  private connected(): RemoteLink {
    if (this.link?.connected === true && this.exportInfo !== null) return this.link;
    this.link ??= this.factory(this.url, this.options);
    const info = this.link.connect();
    this.state = 'up';
    this.checkExport(info);
    const decoded = decodeControlBlock(this.link.read(controlOffsetOf(this.geometry), controlBlockSize));
    try {
      this.judge(decoded, this.link);
    } catch (error) {
      this.refuse();
      throw error;
    }
    this.exportInfo = info;
    this.connects++;
    return this.link;
  }

  /**
   * What the handshake said must fit, else ReplicaLinkError at once (never retried:
   * the server says the same on every connect): the size; for a writing open, writes
   * allowed and FLUSH offered (a region counts as sent only when a FLUSH covered it);
   * a minimum block size that divides the region size and the control block's.
   */
  private checkExport(info: RemoteExportInfo): void {
    const { regions, regionSize } = this.geometry;
    const expectedSize = exportSizeOf(this.geometry);
    let problem: { code: 'E_IO' | 'E_CORRUPT'; why: string } | null = null;
    if (info.exportSize !== expectedSize) {
      const needs = `${expectedSize} bytes (${regions} x ${regionSize} + ${controlBlockSize})`;
      problem = {
        code: 'E_CORRUPT',
        why: `is ${info.exportSize} bytes; this volume needs an export of exactly ${needs}`,
      };
    } else if (info.readOnly && this.writes) {
      // Every write would fail with EPERM until the server is started read-write.
      problem = { code: 'E_IO', why: 'is a read-only export; the primary writes to it' };
    } else if (!info.canFlush && this.writes) {
      const why =
        'offers no FLUSH: no region could ever be confirmed (a region counts as sent only once a FLUSH covered it)';
      problem = { code: 'E_CORRUPT', why };
    } else if (regionSize % info.blockSizeMin !== 0 || controlBlockSize % info.blockSizeMin !== 0) {
      const why = `has a minimum block size of ${info.blockSizeMin} bytes, which does not divide the region size ${regionSize}`;
      problem = { code: 'E_CORRUPT', why: `${why} and ${controlBlockSize} (the control block)` };
    }
    if (problem === null) return;
    this.refuse();
    throw new ReplicaLinkError(problem.code, `the secondary ${this.url} ${problem.why}`);
  }

  /** The far side is not to be used: the connection ends (a judge's ReplicaLinkError says why). */
  private refuse(): void {
    this.state = 'down';
    this.link?.disconnect();
  }

  /** After a fault: the connection is gone (the link dropped it already); the next run reconnects. */
  private drop(): void {
    this.exportInfo = null;
    this.state = 'down';
    this.link?.disconnect();
  }

  private noteError(message: string): void {
    this.lastError = message;
    this.lastErrorAtMs = Date.now();
  }
}
