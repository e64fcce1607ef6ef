// Planted bugs of the NBD secondary, made as links (impl/remote/remoteLink.ts) that
// wrap the real one, so that NbdReplica's own code runs unchanged around them; the
// fault schedules must catch both (faultSchedules.test.ts):
//
//   countsBeforeFlush  a batch counts as sent once its WRITEs replied: the batch's
//                      FLUSH is never sent (the FLUSH after a `sending` control
//                      block returns at once), so nothing makes the batch durable
//                      until the cycle's confirmation flushes everything.
//   noFinalFlush       the cycle completes without the FLUSH after its `complete`
//                      control block.

import { controlBlockSize, decodeControlBlock, type ControlState } from '../../impl/remote/controlBlock.ts';
import type { LinkOptions } from '../../impl/remote/linkOptions.ts';
import type { RemoteExportInfo, RemoteLink, RemoteLinkFactory, RemoteWrite } from '../../impl/remote/remoteLink.ts';
import { workerLinkFactory } from '../../impl/remote/workerLink.ts';

export const plantedBugs = ['countsBeforeFlush', 'noFinalFlush'] as const;
export type PlantedBug = (typeof plantedBugs)[number];

class PlantedLink implements RemoteLink {
  private exportSize = 0;
  /** The state of the last control block written on this link, null before one. */
  private lastControl: ControlState | null = null;

  constructor(
    private readonly inner: RemoteLink,
    private readonly bug: PlantedBug,
  ) {}

  connect(): RemoteExportInfo {
    const info = this.inner.connect();
    this.exportSize = info.exportSize;
    return info;
  }

  get connected(): boolean {
    return this.inner.connected;
  }

  read(offset: number, length: number): Uint8Array {
    return this.inner.read(offset, length);
  }

  /**
   * The writes as the replica gives them, except that two control block writes of
   * one batch go one after the other: in flight together, the far side may apply
   * them in either order (NBD does not order concurrent requests), a fault of its own
   * that must not pass for the planted bug's.
   */
  writeBatch(writes: readonly RemoteWrite[]): void {
    const controlOffset = this.exportSize - controlBlockSize;
    const controls = writes.filter((write) => write.offset === controlOffset);
    for (const write of controls) {
      const decoded = decodeControlBlock(write.bytes);
      if (decoded.kind === 'block') this.lastControl = decoded.block.state;
    }
    if (controls.length < 2) {
      this.inner.writeBatch(writes);
      return;
    }
    this.inner.writeBatch(writes.filter((write) => write.offset !== controlOffset));
    for (const write of controls) this.inner.writeBatch([write]);
  }

  writeZeroes(offset: number, length: number): void {
    this.inner.writeZeroes(offset, length);
  }

  flush(): void {
    if (this.bug === 'countsBeforeFlush' && this.lastControl === 'sending') return;
    if (this.bug === 'noFinalFlush' && this.lastControl === 'complete') return;
    this.inner.flush();
  }

  disconnect(): void {
    this.inner.disconnect();
  }

  close(): void {
    this.inner.close();
  }
}

/** The real link (NBD client in a worker thread) with `bug` planted around it. */
export function plantedLinkFactory(bug: PlantedBug): RemoteLinkFactory {
  return (url: string, options: LinkOptions) => new PlantedLink(workerLinkFactory(url, options), bug);
}
