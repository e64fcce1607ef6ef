// Where a remote cycle's time goes: a link (impl/remote/remoteLink.ts) around the
// real one that times each call the replica makes (connect, read, writeBatch,
// flush, ...), with the requests and bytes of the writes, so that the remote
// section can say what limits a cycle (docs/bench.md, "Remote").

import type { LinkOptions } from '../impl/remote/linkOptions.ts';
import type { RemoteExportInfo, RemoteLink, RemoteLinkFactory, RemoteWrite } from '../impl/remote/remoteLink.ts';
import { workerLinkFactory } from '../impl/remote/workerLink.ts';
import { secondsSince } from './stats.ts';

/** Per kind of call: how many, their seconds, and for writeBatch the WRITEs and bytes. */
export interface LinkCallTimes {
  calls: Record<string, { count: number; seconds: number }>;
  writes: number;
  writeBytes: number;
}

export function emptyLinkCallTimes(): LinkCallTimes {
  return { calls: {}, writes: 0, writeBytes: 0 };
}

class TimedLink implements RemoteLink {
  constructor(
    private readonly inner: RemoteLink,
    private readonly times: LinkCallTimes,
  ) {}

  private timed<T>(name: string, body: () => T): T {
    const started = process.hrtime.bigint();
    try {
      return body();
    } finally {
      const entry = this.times.calls[name] ?? { count: 0, seconds: 0 };
      this.times.calls[name] = entry;
      entry.count++;
      entry.seconds += secondsSince(started);
    }
  }

  connect(): RemoteExportInfo {
    return this.timed('connect', () => this.inner.connect());
  }

  get connected(): boolean {
    return this.inner.connected;
  }

  read(offset: number, length: number): Uint8Array {
    return this.timed('read', () => this.inner.read(offset, length));
  }

  writeBatch(writes: readonly RemoteWrite[]): void {
    this.times.writes += writes.length;
    for (const write of writes) this.times.writeBytes += write.bytes.length;
    this.timed('writeBatch', () => this.inner.writeBatch(writes));
  }

  writeZeroes(offset: number, length: number): void {
    this.timed('writeZeroes', () => this.inner.writeZeroes(offset, length));
  }

  flush(): void {
    this.timed('flush', () => this.inner.flush());
  }

  disconnect(): void {
    this.timed('disconnect', () => this.inner.disconnect());
  }

  close(): void {
    this.timed('close', () => this.inner.close());
  }
}

/** The real link, its calls timed into `times`. */
export function timedLinkFactory(times: LinkCallTimes): RemoteLinkFactory {
  return (url: string, options: LinkOptions) => new TimedLink(workerLinkFactory(url, options), times);
}

/** The calls in one line: "connect 1 x 3.1 ms, writeBatch 3 x 40.2 ms, ...; 166 WRITEs, 10.3 MiB". */
export function describeLinkCallTimes(times: LinkCallTimes): string {
  const calls = Object.entries(times.calls)
    .map(([name, { count, seconds }]) => `${name} ${count} x ${((seconds / count) * 1000).toFixed(1)} ms`)
    .join(', ');
  return `${calls}; ${times.writes} WRITEs, ${(times.writeBytes / (1 << 20)).toFixed(1)} MiB`;
}
