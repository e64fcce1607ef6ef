// The primary of the fault schedules: a volume whose secondary is an NBD URL (the
// NbdReplica of impl/remote/), with link options short enough for a test: faults
// are found in milliseconds, and a call gives up after a budget shorter than the
// history's patience, so that the history's own retries are exercised too.

import type { Geometry } from '../../impl/geometry.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import type { LinkOptions } from '../../impl/remote/linkOptions.ts';
import type { RemoteLinkFactory } from '../../impl/remote/remoteLink.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';

/** The link options of the histories: `retryBudgetMs` must outlast a far side's restart. */
export function historyLinkOptions(retryBudgetMs: number): LinkOptions {
  return {
    connectTimeoutMs: 5_000,
    requestTimeoutMs: 1_000,
    inFlightMax: 8,
    retryBudgetMs,
    backoffFirstMs: 5,
    backoffMaxMs: 100,
  };
}

/** ReplicatedVolume.create with the secondary at `url` and `link` (through a planted bug's link when given). */
export function createRemotePrimary(
  dir: string,
  url: string,
  geometry: Geometry,
  link: LinkOptions,
  linkFactory?: RemoteLinkFactory,
): ReplicatedVolume {
  const options = { secondaryUrl: url, link, ...(linkFactory === undefined ? {} : { linkFactory }) };
  return ReplicatedVolume.create(new NodeStorage(), dir, geometry, options);
}
