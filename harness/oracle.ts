// The oracle loop. One step applies an operation to the model (the statechart's
// pure `transition`) and to the implementation under test, compares the
// implementation's whole observable state (docs/protocol.md section 6) with the model's,
// and checks every invariant. After a crash inside an operation it accepts only
// the recovered states the model's crash-outcome function allows, and continues
// from the one the implementation shows.
//
// Without an implementation (model-only replay) the oracle follows the model
// alone, and after a crash inside an operation it follows every allowed outcome
// (a torn region is followed as its old and its new content).

import { AsyncLocalStorage } from 'node:async_hooks';
import { crashOutcomes, matchOutcome } from '../model/crashOutcomes.ts';
import type { CrashOutcome, ObservedState } from '../model/crashOutcomes.ts';
import { checkLiveness, checkState, checkTransition } from '../model/invariants.ts';
import type { Violation } from '../model/invariants.ts';
import * as rules from '../model/rules.ts';
import { snapshotOf, stateOf, stepMachine } from '../model/transitions.ts';
import type { ModelSnapshot } from '../model/transitions.ts';
import type { Geometry, ModelState, Op } from '../model/types.ts';
import { AdapterSut } from './adapterSut.ts';
import type { ContentBook } from './trace/content.ts';
import { modelOpOf } from './sut.ts';
import { bits } from './types.ts';
import type { CrashRequest, SutOp, SutReply, SutState, SystemUnderTest } from './sut.ts';

export interface Difference {
  readonly field: string;
  readonly expected: string;
  readonly observed: string;
}

export type FailureKind = 'expectError' | 'invariant' | 'divergence' | 'crash-outcome' | 'expect' | 'sut';

/** A check that failed: what was expected, what was observed, side by side. */
export class OracleFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly differences: readonly Difference[] = [],
    readonly violations: readonly Violation[] = [],
  ) {
    super(message);
    this.name = 'OracleFailure';
  }
}

/** A rejection whose message does not name the operation, the region or the phase. */
export interface MessageWarning {
  readonly step: string;
  readonly message: string;
  readonly missing: readonly string[];
}

/** Message warnings of a run: how many, and the first few as examples. */
export class MessageWarnings {
  static readonly examplesMax = 5;
  count = 0;
  readonly examples: MessageWarning[] = [];

  add(warning: MessageWarning): void {
    this.count++;
    if (this.examples.length < MessageWarnings.examplesMax) this.examples.push(warning);
  }
}

/**
 * How rejection messages are judged. The verdict rests on what the protocol
 * defines (states, codes, data): a message must be a non-empty string, and
 * whether it names the operation, the region and the phase (docs/protocol.md
 * section 4 asks for it) is a warning, or a failure when `strict`.
 */
export interface MessageRule {
  readonly strict: boolean;
  /** Where warnings go (none: they are dropped). */
  readonly warnings?: MessageWarnings;
}

const messageRuleScope = new AsyncLocalStorage<MessageRule>();

/**
 * Runs `body` (and everything it awaits, generators included) with `rule`. Outside
 * any scope the rule is strict for the reference implementation in this process
 * (its messages name all three: `cowmap verify`, `cowmap replay` without a
 * command, the mutants) and lenient for an implementation behind the adapter
 * (`cowmap replay FILE -- CMD`), whose wording is its own.
 */
export function withMessageRule<T>(rule: MessageRule, body: () => Promise<T>): Promise<T> {
  return messageRuleScope.run(rule, body);
}

function messageRuleFor(sut: SystemUnderTest | null): MessageRule {
  return messageRuleScope.getStore() ?? { strict: !(sut instanceof AdapterSut) };
}

export type OracleOp = SutOp | { readonly type: 'crash' } | { readonly type: 'recover' };

export interface OracleStats {
  steps: number;
  invariantChecks: number;
  crashStates: number;
}

function parseBits(text: string): boolean[] {
  return [...text].map((bit) => bit === '1');
}

export function observedOf(state: SutState): ObservedState {
  for (let region = 0; region < state.cowData.length; region++) {
    // docs/protocol.md section 6: the validity of W and its content are one fact, reported twice.
    if ((state.cow[region] === '1') !== (state.cowData[region] !== null)) {
      throw new OracleFailure(
        'divergence',
        `the implementation reports cow bit ${state.cow[region]} for region ${region} with cowData ${state.cowData[region] === null ? 'null' : 'present'}`,
      );
    }
  }
  return {
    phase: state.phase,
    current: parseBits(state.current),
    next: parseBits(state.next),
    cow: state.cowData.map((digest, region) => (state.cow[region] === '1' ? digest : null)),
    primary: state.primary,
    secondary: state.secondary,
  };
}

export class Oracle {
  private snapshot: ModelSnapshot;
  /** The outcomes allowed after a crash inside an operation, judged at recovery. */
  private pendingOutcomes: CrashOutcome[] | null = null;
  readonly covered: Set<string>;
  readonly stats: OracleStats;
  /** Taken once, at construction: a scope entered later does not change a running oracle. */
  private readonly messageRule: MessageRule;

  constructor(
    readonly geometry: Geometry,
    readonly book: ContentBook,
    readonly sut: SystemUnderTest | null,
    from?: { state: ModelState; covered: Set<string>; stats: OracleStats },
  ) {
    this.snapshot = snapshotOf(from?.state ?? rules.initialState(geometry, book.zero));
    this.covered = from?.covered ?? new Set<string>();
    this.stats = from?.stats ?? { steps: 0, invariantChecks: 0, crashStates: 0 };
    this.messageRule = messageRuleFor(sut);
  }

  async start(): Promise<void> {
    if (this.sut !== null) {
      await this.sut.create(this.geometry);
      await this.compare('create');
    }
  }

  get state(): ModelState {
    return stateOf(this.snapshot);
  }

  /** A model-only copy that continues from a crash outcome (crashed, awaiting recover). */
  fork(outcome: CrashOutcome): Oracle {
    if (this.sut !== null) throw new Error('oracle: only a model-only oracle forks');
    const forked = new Oracle(this.geometry, this.book, null, {
      state: rules.crash(outcome.state),
      covered: this.covered,
      stats: this.stats,
    });
    forked.pendingOutcomes = [outcome];
    return forked;
  }

  private modelOp(op: OracleOp): Op {
    return modelOpOf(op, this.book);
  }

  /** Steps the model; checks the invariants on the new state and on the transition. */
  private stepModel(op: Op, label: string): { ok: true } | { ok: false; code: string; message: string } {
    const before = this.state;
    const { snapshot: after, taken } = stepMachine(this.snapshot, op);
    for (const id of taken) this.covered.add(id);
    const rejection = after.context.rejection;
    const violations = [...checkState(stateOf(after)), ...checkLiveness(stateOf(after))];
    if (rejection === null) violations.push(...checkTransition(before, op, stateOf(after)));
    this.stats.invariantChecks++;
    this.stats.steps++;
    if (violations.length > 0) {
      throw new OracleFailure(
        'invariant',
        `the model broke ${violations[0]!.invariant} at ${label}: ${violations[0]!.message}`,
        [],
        violations,
      );
    }
    this.snapshot = after;
    return rejection === null ? { ok: true } : { ok: false, code: rejection.code, message: rejection.message };
  }

  private checkVerdict(
    label: string,
    model: { ok: true } | { ok: false; code: string },
    reply: SutReply | null,
    expectError: string | undefined,
  ): void {
    const modelSays = model.ok ? 'ok' : model.code;
    if (expectError !== undefined && modelSays !== expectError) {
      throw new OracleFailure('expectError', `${label}: expected ${expectError}, the model says ${modelSays}`, [
        { field: 'result', expected: expectError, observed: `${modelSays} (model)` },
      ]);
    }
    if (expectError === undefined && !model.ok) {
      throw new OracleFailure('expectError', `${label}: the model rejects it with ${modelSays}`, [
        { field: 'result', expected: 'ok', observed: `${modelSays} (model)` },
      ]);
    }
    if (reply !== null) {
      const sutSays = reply.ok ? 'ok' : reply.code;
      if (sutSays !== modelSays) {
        const detail = reply.ok ? '' : `: ${reply.message}`;
        throw new OracleFailure(
          'divergence',
          `${label}: the model says ${modelSays}, the implementation ${sutSays}${detail}`,
          [{ field: 'result', expected: `${modelSays} (model)`, observed: `${sutSays} (implementation)` }],
        );
      }
    }
  }

  /**
   * docs/protocol.md section 4: a rejection says why in a message that names the
   * operation, the region and the phase. A message that is not a non-empty string
   * fails; one that names less is a warning (a failure under a strict rule).
   */
  private checkRejectionMessage(op: SutOp, message: unknown, label: string): void {
    if (typeof message !== 'string' || message.trim().length === 0) {
      throw new OracleFailure('divergence', `${label}: the rejection has no message (it must be a non-empty string)`, [
        { field: 'message', expected: 'a non-empty string', observed: JSON.stringify(message) ?? String(message) },
      ]);
    }
    const missing: string[] = [];
    if (!message.includes(op.type)) missing.push(`the operation (${op.type})`);
    if ('region' in op && !new RegExp(`(^|[^0-9])${op.region}([^0-9]|$)`).test(message))
      missing.push(`the region (${op.region})`);
    if (!message.includes(this.state.phase)) missing.push(`the phase (${this.state.phase})`);
    if (missing.length === 0) return;
    if (this.messageRule.strict) {
      throw new OracleFailure(
        'divergence',
        `${label}: the rejection's message does not name ${missing.join(', ')}: "${message}"`,
        [{ field: 'message', expected: `names ${missing.join(', ')}`, observed: message }],
      );
    }
    this.messageRule.warnings?.add({ step: label, message, missing });
  }

  /**
   * One operation on the model and the implementation. `expectError` is the code
   * the caller expects (undefined: the operation must succeed on the model; null:
   * whatever the model says). Returns the implementation's reply, or the model's
   * verdict when model-only.
   */
  async step(op: OracleOp, label: string, expectError?: string | null): Promise<SutReply> {
    const wasCrashed = this.state.crashed;
    // An operation goes to the implementation first and the model steps while it
    // works (through an adapter, another process): the two are independent until
    // the verdicts are compared, and the model's time hides behind the request's.
    const applying =
      this.sut !== null && !wasCrashed && op.type !== 'crash' && op.type !== 'recover' ? this.sut.apply(op) : null;
    let verdict: ReturnType<Oracle['stepModel']>;
    try {
      verdict = this.stepModel(this.modelOp(op), label);
    } catch (error) {
      // The model failed (an invariant): let the request in flight end before reporting it.
      await applying?.catch(() => undefined);
      throw error;
    }
    let reply: SutReply | null = null;
    if (this.sut !== null) {
      if (op.type === 'crash') {
        if (!wasCrashed) await this.sut.crash();
        reply = { ok: true };
      } else if (op.type === 'recover') {
        reply = verdict.ok ? await this.sut.recover() : verdict;
      } else if (applying !== null) {
        reply = await applying;
      }
      // Between crash and recover the implementation is not running: the model alone decides.
    }
    this.checkVerdict(
      label,
      verdict,
      reply,
      expectError === null ? (verdict.ok ? undefined : verdict.code) : expectError,
    );
    if (reply !== null && !reply.ok && this.sut !== null && op.type !== 'recover' && op.type !== 'crash')
      this.checkRejectionMessage(op, reply.message, label);
    if (op.type === 'read' && reply !== null && reply.ok && this.sut !== null) {
      const model = this.state;
      const expected = op.volume === 'primary' ? model.primary[op.region]! : model.secondary[op.region]!;
      const observed = reply.data === undefined ? 'nothing' : this.book.addBytes(reply.data);
      if (observed !== expected) {
        throw new OracleFailure('divergence', `${label}: read returned other bytes than the model holds`, [
          {
            field: `${op.volume}[${op.region}]`,
            expected: this.book.show(expected),
            observed: this.book.show(observed),
          },
        ]);
      }
    }
    if (op.type === 'recover' && verdict.ok && this.pendingOutcomes !== null) await this.judgeRecovery(label);
    else if (!this.state.crashed) await this.compare(label);
    return reply ?? verdict;
  }

  /**
   * An operation with a crash after its k-th durable I/O call; the next step must
   * be recover. Returns the outcomes the model allows; a model-only caller forks
   * one oracle per outcome, an implementation picks one at recovery.
   */
  async stepCrashing(op: SutOp, crash: CrashRequest, label: string): Promise<CrashOutcome[]> {
    const modelOp = this.modelOp(op);
    const before = this.state;
    if (before.crashed)
      throw new OracleFailure('expectError', `${label}: a crash inside an operation needs a running volume`);
    let outcomes = crashOutcomes(before, modelOp, { torn: crash.torn });
    if (this.sut !== null) {
      const result = await this.sut.applyCrashing(op, crash);
      if (!result.crashed) {
        // The operation completed and answered before the crash: what it acknowledged must survive.
        const verdict = this.stepModel(modelOp, label);
        this.checkVerdict(label, verdict, result.reply, verdict.ok ? undefined : verdict.code);
        await this.compare(label);
        await this.sut.crash();
        outcomes = [{ state: rules.recover(rules.crash(this.state)), mix: null }];
      }
    }
    this.stats.steps++;
    this.covered.add(`${before.phase}:crash`);
    this.pendingOutcomes = outcomes;
    this.snapshot = snapshotOf(rules.crash(outcomes[0]!.state));
    return outcomes;
  }

  private async judgeRecovery(label: string): Promise<void> {
    const outcomes = this.pendingOutcomes!;
    this.pendingOutcomes = null;
    this.stats.crashStates++;
    if (this.sut === null) {
      this.snapshot = snapshotOf(outcomes[0]!.state);
      return;
    }
    const observed = await this.sut.state();
    await this.learnBytes(observed, outcomes);
    const continued = matchOutcome(outcomes, observedOf(observed), (old, next, seen) =>
      this.book.isSectorMix(old, next, seen),
    );
    if (continued === null) {
      const differences = this.differences(outcomes[outcomes.length - 1]!.state, observed);
      if (this.geometry.regions > Oracle.wholeFieldRegionsMax) {
        // Whole states of a large volume would fill the screen: the table compares with the last outcome allowed.
        throw new OracleFailure(
          'crash-outcome',
          `${label}: the recovered state is not one of the ${outcomes.length} the model allows after this crash (the table compares it with the last of them)`,
          differences,
        );
      }
      const allowed = outcomes.map((outcome) => this.describeState(outcome.state)).join('\n    or       ');
      throw new OracleFailure(
        'crash-outcome',
        `${label}: the recovered state is not one the model allows after this crash\n    allowed: ${allowed}\n    observed: ${this.describeObserved(observed)}`,
        differences,
      );
    }
    const violations = checkState(continued);
    this.stats.invariantChecks++;
    if (violations.length > 0)
      throw new OracleFailure(
        'invariant',
        `${label}: the recovered state breaks ${violations[0]!.invariant}`,
        [],
        violations,
      );
    this.snapshot = snapshotOf(continued);
  }

  /**
   * The torn model is judged on bytes: where a region that may be torn shows
   * content the run has not seen, read its bytes from the implementation.
   */
  private async learnBytes(observed: SutState, outcomes: readonly CrashOutcome[]): Promise<void> {
    for (const { mix } of outcomes) {
      if (mix === null) continue;
      const digest = observed[mix.volume][mix.region];
      if (digest === undefined || this.book.bytesOf(digest) !== undefined) continue;
      const reply = await this.sut!.apply({ type: 'read', region: mix.region, volume: mix.volume });
      if (!reply.ok || reply.data === undefined)
        throw new OracleFailure('sut', `reading ${mix.volume}[${mix.region}] after recovery failed`);
      if (this.book.addBytes(reply.data) !== digest) {
        throw new OracleFailure(
          'divergence',
          `${mix.volume}[${mix.region}] reads other bytes than its reported digest`,
        );
      }
    }
  }

  private show(list: readonly (string | null)[]): string {
    return list.map((content) => this.book.show(content)).join(' ');
  }

  describeState(state: ModelState): string {
    return `${state.phase} P=${this.show(state.primary)} S=${this.show(state.secondary)} C=${bits(state.current)} X=${bits(state.next)} W=${this.show(state.cow)}`;
  }

  describeObserved(state: SutState): string {
    const observed = observedOf(state);
    return `${state.phase} P=${this.show(observed.primary)} S=${this.show(observed.secondary)} C=${state.current} X=${state.next} W=${this.show(observed.cow)}`;
  }

  /**
   * The fields where the implementation's state differs from the model's. A
   * volume of a few regions shows each differing field whole; a larger one shows
   * the differing regions one by one (`secondary[8]`, `next[64]`), the first
   * `regionRowsMax` of them, so that a table stays readable at 1,000 regions.
   */
  differences(model: ModelState, state: SutState): Difference[] {
    const observed = observedOf(state);
    const phase: Difference[] =
      model.phase === observed.phase ? [] : [{ field: 'phase', expected: model.phase, observed: observed.phase }];
    // Compared by content (digests), shown by label: two contents may share a
    // shortened label, and a label may read like an empty slot.
    const fields: [string, readonly (string | null)[], readonly (string | null)[], 'content' | 'bit'][] = [
      ['primary', model.primary, observed.primary, 'content'],
      ['secondary', model.secondary, observed.secondary, 'content'],
      ['current', model.current.map((bit) => (bit ? '1' : '0')), [...state.current], 'bit'],
      ['next', model.next.map((bit) => (bit ? '1' : '0')), [...state.next], 'bit'],
      ['cow', model.cow, observed.cow, 'content'],
    ];
    const showContent = (expected: string | null, seen: string | null): [string, string] => {
      const [shownExpected, shownSeen] = [this.book.show(expected), this.book.show(seen)];
      return [shownExpected, shownExpected === shownSeen ? `${shownSeen} (other bytes, same label)` : shownSeen];
    };
    const rows: Difference[] = [];
    for (const [field, expected, seen, kind] of fields) {
      const count = Math.max(expected.length, seen.length);
      const differing = [...Array(count).keys()].filter((region) => expected[region] !== seen[region]);
      if (differing.length === 0) continue;
      if (expected.length !== seen.length || count <= Oracle.wholeFieldRegionsMax) {
        const whole = kind === 'bit' ? [expected.join(''), seen.join('')] : [this.show(expected), this.show(seen)];
        rows.push({
          field,
          expected: whole[0]!,
          observed: whole[0] === whole[1] ? `${whole[1]} (other bytes, same label)` : whole[1]!,
        });
        continue;
      }
      for (const region of differing.slice(0, Oracle.regionRowsMax)) {
        const [shownExpected, shownSeen] =
          kind === 'bit'
            ? [expected[region]!, seen[region]!]
            : showContent(expected[region] ?? null, seen[region] ?? null);
        rows.push({ field: `${field}[${region}]`, expected: shownExpected, observed: shownSeen });
      }
      if (differing.length > Oracle.regionRowsMax)
        rows.push({
          field: `${field}[...]`,
          expected: '',
          observed: `and ${differing.length - Oracle.regionRowsMax} more regions differ`,
        });
    }
    return [...phase, ...rows];
  }

  /** Up to this many regions, a differing field is shown whole. */
  static readonly wholeFieldRegionsMax = 8;
  /** Beyond it, this many differing regions of a field are shown one by one. */
  static readonly regionRowsMax = 8;

  /** Compares the implementation's whole observable state with the model's. */
  async compare(label: string): Promise<void> {
    if (this.sut === null) return;
    const differences = this.differences(this.state, await this.sut.state());
    if (differences.length > 0) {
      throw new OracleFailure(
        'divergence',
        `${label}: the implementation's state differs from the model's`,
        differences,
      );
    }
  }
}
