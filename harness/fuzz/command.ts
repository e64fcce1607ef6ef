// The ONE small command class of the fast-check command sequences
// (PlannedCommand): planned steps made concrete at run time from the model
// (harness/fuzz/model.ts), run through SequenceRun, whose oracle judges each.

import type fc from 'fast-check';
import type { Oracle } from '../oracle/oracle.ts';
import type { ContentRecipe } from '../regionData.ts';
import { describeScenarioStep } from '../scenario.ts';
import type { ScenarioStep } from '../scenario.ts';
import type { CrashRequest, SutOp } from '../sut/systemUnderTest.ts';
import type { ContentBook } from '../trace/content.ts';
import type { Generation, HistoryMin } from './generation.ts';
import { trackStep } from './model.ts';
import type { FuzzModel } from './model.ts';

/** What a write carries: a label (data 'labels'), or a recipe made into bytes at run time against what the run wrote. */
export type DataPlan =
  | { readonly label: string; readonly bytes: Uint8Array }
  | { readonly recipe: ContentRecipe; readonly size: 'region' | number };

/** An operation as planned: fixed, a write whose bytes come at run time, or a transfer of a region the model holds current. */
export type OpPlan =
  | { readonly kind: 'fixed'; readonly op: SutOp }
  | { readonly kind: 'write'; readonly region: number; readonly data: DataPlan }
  | { readonly kind: 'transferCurrent'; readonly pick: number; readonly otherwise: number };

export type StepPlan =
  | { readonly kind: 'op'; readonly op: OpPlan }
  | { readonly kind: 'crash' }
  | { readonly kind: 'recover' }
  | { readonly kind: 'crashInside'; readonly op: OpPlan; readonly crash: CrashRequest }
  /** startCycle unless the model knows one runs, a transfer of every region the model holds current, completeCycle. */
  | { readonly kind: 'cycle' };

/** Content for the book: a label (traces write it as such) or a name (messages only). */
type Naming = { readonly label: string } | { readonly name: string } | null;

/**
 * The system side of one sequence: the oracle of the run (the model beside the
 * implementation), the book that names its contents, and the steps run so far.
 * Without an oracle it only collects the steps (to turn a counterexample back
 * into scenario steps).
 */
export class SequenceRun {
  readonly steps: ScenarioStep[] = [];
  operations = 0;
  cyclesCompleted = 0;

  constructor(
    readonly oracle: Oracle | null,
    readonly book: ContentBook,
  ) {}

  /** One step exactly as runScenario runs it (same oracle calls, same labels). */
  async run(step: ScenarioStep, naming: Naming): Promise<void> {
    const index = this.steps.length;
    this.steps.push(step);
    this.operations++;
    if (naming !== null && step.kind !== 'crash' && step.kind !== 'recover' && step.op.type === 'write') {
      if ('label' in naming) this.book.addLabel(naming.label);
      else this.book.addNamed(step.op.data, naming.name);
    }
    const oracle = this.oracle;
    if (oracle === null) return;
    const label = `step ${index + 1} '${describeScenarioStep(step, oracle.book)}'`;
    if (step.kind === 'crashInside') {
      await oracle.stepCrashing(step.op, step.crash, label);
      return;
    }
    const reply = await oracle.step(step.kind === 'op' ? step.op : { type: step.kind }, label, null);
    if (step.kind === 'op' && step.op.type === 'completeCycle' && reply.ok) this.cyclesCompleted++;
  }
}

/** A command: its steps are planned at generation and made at run time from the model (the bytes written, the regions a cycle sends). */
export class PlannedCommand implements fc.AsyncCommand<FuzzModel, SequenceRun> {
  /** The steps of the last run, for fast-check's report of a counterexample. */
  private made: string[] = [];

  constructor(
    readonly plans: readonly StepPlan[],
    private readonly generation: Generation,
  ) {}

  get isCycle(): boolean {
    return this.plans.some((plan) => plan.kind === 'cycle');
  }

  check(): boolean {
    return true;
  }

  async run(model: FuzzModel, real: SequenceRun): Promise<void> {
    this.made = [];
    const take = async (step: ScenarioStep, naming: Naming = null) => {
      await real.run(step, naming);
      trackStep(model, step, this.generation);
      this.made.push(describeScenarioStep(step, real.book));
    };
    for (const plan of this.plans) {
      // A crash inside an operation needs a running volume (Oracle.stepCrashing), and so does a cycle.
      if ((plan.kind === 'crashInside' || plan.kind === 'cycle') && model.crashed) await take({ kind: 'recover' });
      switch (plan.kind) {
        case 'crash':
        case 'recover':
          await take({ kind: plan.kind });
          break;
        case 'op': {
          const { op, naming } = makeOp(plan.op, model, this.generation);
          await take({ kind: 'op', op }, naming);
          break;
        }
        case 'crashInside': {
          const { op, naming } = makeOp(plan.op, model, this.generation);
          await take({ kind: 'crashInside', op, crash: plan.crash }, naming);
          break;
        }
        case 'cycle': {
          if (model.phase !== 'replicating') await take({ kind: 'op', op: { type: 'startCycle' } });
          // Bounded by the regions: the superset of C is a set of region indices.
          for (const region of [...model.current].sort((a, b) => a - b))
            await take({ kind: 'op', op: { type: 'transfer', region } });
          await take({ kind: 'op', op: { type: 'completeCycle' } });
          break;
        }
      }
    }
  }

  toString(): string {
    if (this.made.length > 0) return this.made.join('; ');
    return this.plans.map((plan) => plan.kind).join('; ');
  }
}

/** The operation a plan makes in the model's present state, with the name of what it writes. */
function makeOp(plan: OpPlan, model: FuzzModel, generation: Generation): { op: SutOp; naming: Naming } {
  switch (plan.kind) {
    case 'fixed':
      return { op: plan.op, naming: null };
    case 'transferCurrent': {
      const current = [...model.current].sort((a, b) => a - b);
      const region = current.length === 0 ? plan.otherwise : current[plan.pick % current.length]!;
      return { op: { type: 'transfer', region }, naming: null };
    }
    case 'write': {
      const data = plan.data;
      if ('label' in data)
        return { op: { type: 'write', region: plan.region, data: data.bytes }, naming: { label: data.label } };
      const content = model.contents.make(data.recipe, plan.region);
      if (data.size !== 'region') {
        const wrong = new Uint8Array(data.size);
        wrong.set(content.bytes.subarray(0, data.size));
        return { op: { type: 'write', region: plan.region, data: wrong }, naming: null };
      }
      if (plan.region >= 0 && plan.region < generation.regions) model.contents.noteWritten(plan.region, content);
      return { op: { type: 'write', region: plan.region, data: content.bytes }, naming: { name: content.name } };
    }
  }
}

/** The command inside fast-check's wrapper (fast-check runs commands wrapped; the wrapper keeps it as `cmd`). */
export function plannedOf(command: unknown): PlannedCommand | null {
  if (command instanceof PlannedCommand) return command;
  const inner = (command as { cmd?: unknown } | null)?.cmd;
  return inner instanceof PlannedCommand ? inner : null;
}

/**
 * Whether a generated sequence is too short for the history: fewer planned
 * steps (each runs one operation or more) or fewer cycle commands (each
 * completes one cycle: it recovers first if the volume is down, and sends a
 * superset of C).
 */
export function shortOfHistory(commands: Iterable<unknown>, history: HistoryMin): boolean {
  let steps = 0;
  let cycles = 0;
  let unknown = 0;
  for (const command of commands) {
    const planned = plannedOf(command);
    if (planned === null) unknown++;
    steps += planned?.plans.length ?? 1;
    if (planned?.isCycle === true) cycles++;
  }
  // Commands this module cannot see into are never skipped for their cycles.
  return steps < history.operations || (unknown === 0 && cycles < history.cycles);
}
