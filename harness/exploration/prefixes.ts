// The prefix tree of the exploration: an operation run from a prefix state,
// without a crash, gives a child state, unless an equal one was reached before
// (deduplication; see the head of explorer.ts, HOW IT IS MADE FAST). A child
// state is saved to be restored: its files when they are all durable, else its
// nearest all-durable ancestor's and the operations since.

import type { ModelState } from '../../model/types.ts';
import { OracleFailure } from '../oracle/oracle.ts';
import type { ScenarioStep } from '../scenario.ts';
import type { Restore } from '../sut/explorationSut.ts';
import type { SutOp, SutReply } from '../sut/systemUnderTest.ts';
import { asFailure } from '../sut/thrown.ts';
import type { Explorer } from './explorer.ts';
import type { FoundFailure } from './found.ts';

export interface PrefixNode {
  readonly depth: number;
  /** The operations from the root (the first path found: a shortest one). */
  readonly path: readonly SutOp[];
  readonly model: ModelState;
  readonly restore: Restore;
}

/**
 * What prefix states are merged on: the model state (volatile sent set and ghost
 * P@swap included), the digest of every file, and the sent set the volume holds.
 * A prefix that left unsynced data is never merged: the crash layer's records are
 * part of its state.
 */
export function prefixKey(
  explorer: Explorer,
  model: ModelState,
  digest: string,
  sent: readonly number[],
  clean: boolean,
): string {
  const unique = !clean || explorer.options.dedupePrefixes === false;
  return `${JSON.stringify(model)}|${digest}|${sent.join(',')}|${unique ? `unique#${explorer.stats.prefixes}` : 'clean'}`;
}

type Expanded = { child: PrefixNode | null; io: number | null } | { failure: FoundFailure };

/**
 * Runs `op` from `node` without a crash: the model and the implementation must
 * agree. The child state (null when rejected or seen before), and the operation's
 * durable calls (null when rejected: nothing to crash in).
 */
export async function expand(explorer: Explorer, node: PrefixNode, op: SutOp, seen: Set<string>): Promise<Expanded> {
  const sut = explorer.sut;
  explorer.stats.opRuns++;
  const unopened = explorer.restoreAt(node);
  if (unopened !== null) return { failure: unopened };
  const oracle = explorer.oracleAt(node.model);
  const steps: ScenarioStep[] = [{ kind: 'op', op }];
  const failed = (error: OracleFailure): Expanded => ({
    failure: { error, node, op: null, plainOp: op, crashAfterIo: null, choice: null, shape: null, steps },
  });
  let reply: SutReply;
  try {
    reply = await oracle.step(op, `${explorer.describe(op)} after ${explorer.describePath(node.path)}`, null);
  } catch (error) {
    return failed(asFailure(error, explorer.describe(op)));
  }
  const io = sut.lastIoCount;
  if (!reply.ok) {
    explorer.stats.rejected++;
    if (io === 0) return { child: null, io: null };
    return failed(
      new OracleFailure(
        'sut',
        `${explorer.describe(op)} was rejected with ${reply.code} after ${io} durable I/O call(s): a rejection must change nothing`,
      ),
    );
  }
  const image = sut.files.clone();
  const sent = sut.sentRegions();
  const clean = sut.isClean;
  const key = prefixKey(explorer, oracle.state, image.digest(), sent, clean);
  if (seen.has(key)) return { child: null, io };
  seen.add(key);
  explorer.stats.prefixes++;
  const restore: Restore = clean
    ? { image, sent, replay: [] }
    : { ...node.restore, replay: [...node.restore.replay, op] };
  return { child: { depth: node.depth + 1, path: [...node.path, op], model: oracle.state, restore }, io };
}
