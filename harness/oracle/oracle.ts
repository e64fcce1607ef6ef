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

import { crashOutcomes, matchOutcome } from '../../model/crashOutcomes.ts';
import type { CrashOutcome } from '../../model/crashOutcomes.ts';
import { checkLiveness, checkState, checkTransition, type StepFunction } from '../../model/invariants.ts';
import { ModelError } from '../../model/modelError.ts';
import * as rules from '../../model/rules.ts';
import { modelStatechart, stateOf, stepFunctionOf } from '../../model/transitions.ts';
import type { ModelSnapshot, Statechart } from '../../model/transitions.ts';
import type { Geometry, ModelState, Op } from '../../model/types.ts';
import { checkRejectionMessage, messageRuleFor } from './messageRule.ts';
import type { MessageRule } from './messageRule.ts';
import { OracleFailure } from './oracleFailure.ts';
import type { Difference } from './oracleFailure.ts';
import { StateDescriber, observedOf } from './stateDifferences.ts';
import type { ContentBook } from '../trace/content.ts';
import { modelOpOf } from '../sut/systemUnderTest.ts';
import type { CrashRequest, SutOp, SutReply, SutState, SystemUnderTest } from '../sut/systemUnderTest.ts';

// The oracle's public words live beside it, one concept a file; importers take them from here.
export { MessageWarnings, withMessageRule } from './messageRule.ts';
export type { MessageRule, MessageWarning } from './messageRule.ts';
export { OracleFailure } from './oracleFailure.ts';
export type { Difference, FailureKind } from './oracleFailure.ts';
export { observedOf } from './stateDifferences.ts';

export type OracleOp = SutOp | { readonly type: 'crash' } | { readonly type: 'recover' };

export interface OracleStats {
  steps: number;
  invariantChecks: number;
  crashStates: number;
}

export class Oracle {
  private snapshot: ModelSnapshot;
  /** The outcomes allowed after a crash inside an operation, judged at recovery. */
  private pendingOutcomes: CrashOutcome[] | null = null;
  readonly covered: Set<string>;
  readonly stats: OracleStats;
  /** Taken once, at construction: a scope entered later does not change a running oracle. */
  private readonly messageRule: MessageRule;
  private readonly describer: StateDescriber;
  /** The model the oracle steps: the statechart, or (a test) a broken one. */
  private readonly statechart: Statechart<ModelSnapshot>;
  /** What LIVENESS looks ahead with: the rules for the model's statechart, else the statechart given. */
  private readonly lookAhead: StepFunction;

  constructor(
    readonly geometry: Geometry,
    readonly book: ContentBook,
    readonly sut: SystemUnderTest | null,
    from?: { state: ModelState; covered: Set<string>; stats: OracleStats },
    model: { readonly statechart?: Statechart<ModelSnapshot> } = {},
  ) {
    this.statechart = model.statechart ?? modelStatechart;
    // The model's own statechart agrees with the rules on every transition (model/agreement.ts),
    // so its look-ahead runs on the rules, many times faster; a given statechart is stepped.
    this.lookAhead = this.statechart === modelStatechart ? rules.step : stepFunctionOf(this.statechart);
    this.describer = new StateDescriber(book);
    this.snapshot = this.snapshotOf(from?.state ?? rules.initialState(geometry, book.zero));
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
    const from = { state: rules.crash(outcome.state), covered: this.covered, stats: this.stats };
    const forked = new Oracle(this.geometry, this.book, null, from, { statechart: this.statechart });
    forked.pendingOutcomes = [outcome];
    return forked;
  }

  private snapshotOf(state: ModelState): ModelSnapshot {
    return this.statechart.snapshotOf(state);
  }

  /** One step of the statechart; a broken model (ModelError) fails the step like any check. */
  private modelStep(op: Op, label: string): { snapshot: ModelSnapshot; taken: readonly string[] } {
    return this.modelCall(label, () => this.statechart.step(this.snapshot, op));
  }

  private modelCall<T>(label: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      if (!(error instanceof ModelError)) throw error;
      throw new OracleFailure('model', `${label}: the model itself is broken: ${error.message}`);
    }
  }

  private modelOp(op: OracleOp): Op {
    return modelOpOf(op, this.book);
  }

  /** Steps the model; checks the invariants on the new state and on the transition. */
  private stepModel(op: Op, label: string): { ok: true } | { ok: false; code: string; message: string } {
    const before = this.state;
    const { snapshot: after, taken } = this.modelStep(op, label);
    for (const id of taken) this.covered.add(id);
    const rejection = after.context.rejection;
    const violations = [...checkState(stateOf(after)), ...checkLiveness(stateOf(after), this.lookAhead)];
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
      checkRejectionMessage(this.messageRule, op, reply.message, label, this.state.phase);
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
    let outcomes = this.modelCall(label, () => crashOutcomes(before, modelOp, { torn: crash.torn }));
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
    this.snapshot = this.snapshotOf(rules.crash(outcomes[0]!.state));
    return outcomes;
  }

  private async judgeRecovery(label: string): Promise<void> {
    const outcomes = this.pendingOutcomes!;
    this.pendingOutcomes = null;
    this.stats.crashStates++;
    if (this.sut === null) {
      this.snapshot = this.snapshotOf(outcomes[0]!.state);
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
      const withD = observed.consistent !== undefined;
      const allowed = outcomes
        .map((outcome) => this.describer.describeState(outcome.state, withD))
        .join('\n    or       ');
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
    this.snapshot = this.snapshotOf(continued);
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

  describeState(state: ModelState): string {
    return this.describer.describeState(state);
  }

  describeObserved(state: SutState): string {
    return this.describer.describeObserved(state);
  }

  /** The fields where the implementation's state differs from the model's (see StateDescriber). */
  differences(model: ModelState, state: SutState): Difference[] {
    return this.describer.differences(model, state);
  }

  /** Up to this many regions, a differing field is shown whole. */
  static readonly wholeFieldRegionsMax = StateDescriber.wholeFieldRegionsMax;
  /** Beyond it, this many differing regions of a field are shown one by one. */
  static readonly regionRowsMax = StateDescriber.regionRowsMax;

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
