// The kinds of secondary, as the metadata's `secondary` string records them
// (docs/remote.md, "The secondary kinds"), and the one place that turns a recorded
// secondary into its Replica:
//   ""  or a relative directory   FileReplica (impl/replica.ts), DIR/secondary by default
//   nbd://... or nbd+unix://...   NbdReplica (impl/remote/nbdReplica.ts), the URL verbatim
//   consistent:RELDIR             ReceiverReplica (impl/receive/receiverReplica.ts): a local
//                                 secondary that applies each cycle atomically

import { CowmapError } from '../errors.ts';
import { secondaryPath } from '../layout.ts';
import { isNbdUrl, parseNbdUrl } from '../nbd/client/nbdUrl.ts';
import { ReceiverReplica } from '../receive/receiverReplica.ts';
import { FileReplica, type Replica, type ReplicaIdentity } from '../replica.ts';
import type { Storage } from '../storage.ts';
import type { LinkOptions } from './linkOptions.ts';
import { NbdReplica } from './nbdReplica.ts';
import type { OpenedAt } from './nbdReplicaOptions.ts';
import type { RemoteLinkFactory } from './remoteLink.ts';

/** The prefix of a consistent secondary's recorded directory. */
export const consistentPrefix = 'consistent:';

export type SecondaryKind =
  | { kind: 'directory'; recorded: string }
  | { kind: 'nbd'; url: string }
  | { kind: 'consistent'; recordedDir: string };

/** The kind of a recorded secondary. */
export function secondaryKindOf(recorded: string): SecondaryKind {
  if (isNbdUrl(recorded)) return { kind: 'nbd', url: recorded };
  const local: SecondaryKind = recorded.startsWith(consistentPrefix)
    ? { kind: 'consistent', recordedDir: recorded.slice(consistentPrefix.length) }
    : { kind: 'directory', recorded };
  refuseUrlAsDirectory(local.kind === 'consistent' ? local.recordedDir : recorded);
  return local;
}

/**
 * E_BAD_REQUEST for a directory secondary given as a URL of another scheme or a
 * mistyped NBD URL (`nbd:/h/e`): taken as a directory, it made folders named after
 * it under the working directory.
 */
export function refuseUrlAsDirectory(dir: string): void {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(dir) && !/^nbd[a-z+.-]*:/i.test(dir)) return;
  throw new CowmapError(
    'E_BAD_REQUEST',
    `the secondary ${dir} reads as a URL, not a directory; an NBD secondary is nbd://HOST[:PORT][/EXPORT] ` +
      'or nbd+unix:///EXPORT?socket=PATH',
  );
}

/** E_BAD_REQUEST naming what is wrong with an NBD URL (nbd://HOST[:PORT][/EXPORT], nbd+unix:///EXPORT?socket=PATH). */
export function checkNbdUrl(url: string): void {
  parseNbdUrl(url);
}

/** The directory a local secondary (a directory or a consistent one) lives in; null for a remote one. */
export function localSecondaryDir(dir: string, kind: SecondaryKind): string | null {
  if (kind.kind === 'nbd') return null;
  return secondaryPath(dir, kind.kind === 'directory' ? kind.recorded : kind.recordedDir);
}

/** What a remote secondary's replica takes beyond its URL. */
export interface LinkChoice {
  link?: Partial<LinkOptions>;
  /** Tests put an in-memory export here (impl/remote/memoryLink.ts). */
  linkFactory?: RemoteLinkFactory;
}

/** Makes the secondary of a new volume (its files in `secondaryDir`, or DIR/remote-digests and the far side's claim). */
export function createReplica(
  storage: Storage,
  dir: string,
  kind: SecondaryKind,
  secondaryDir: string | null,
  identity: ReplicaIdentity,
  choice: LinkChoice,
): Replica {
  if (kind.kind === 'nbd') return NbdReplica.create(storage, dir, kind.url, identity, choice);
  if (secondaryDir === null) throw new CowmapError('E_BAD_REQUEST', 'create: a local secondary needs a directory');
  if (kind.kind === 'consistent') return ReceiverReplica.create(storage, secondaryDir, identity);
  return FileReplica.create(storage, secondaryDir, identity);
}

/** Opens the secondary of an existing volume; a remote one is not contacted. */
export function openReplica(
  storage: Storage,
  dir: string,
  kind: SecondaryKind,
  secondaryDir: string | null,
  identity: ReplicaIdentity,
  at: OpenedAt,
  options: LinkChoice & { readOnly: boolean; syncAtOpen: boolean },
): Replica {
  const { readOnly } = options;
  if (kind.kind === 'nbd') return NbdReplica.open(storage, dir, kind.url, identity, at, options);
  if (secondaryDir === null) throw new CowmapError('E_BAD_REQUEST', 'open: a local secondary needs a directory');
  if (kind.kind === 'consistent') return ReceiverReplica.open(storage, secondaryDir, identity, { readOnly });
  return FileReplica.open(storage, secondaryDir, identity, { readOnly });
}
