// Crashes inside create. create makes directories, files and the metadata, in
// the durable order docs/format.md gives; a crash may strike after any of its
// durable calls, in process, power or torn mode. What is left must be nothing a
// user could mistake for a volume: `open` says E_NOT_FOUND (no volume), or opens
// THE fresh all-zero volume (create had made its metadata durable). A second
// create over the leftovers may refuse with E_EXISTS (create never removes what
// a create cut short left: docs/format.md, "Names: what create makes, what it
// refuses, and when a name is durable") or make a fresh volume. Either way a
// volume that opens must be usable: a write, a finished cycle, and, after a
// process crash whose unsynced names and data the recovery inherited, a power
// loss and a second recovery that still find it.

import { initialState } from '../../model/rules.ts';
import { MemoryStorage } from '../storage/memoryStorage.ts';
import { OracleFailure } from '../oracle/oracle.ts';
import type { ScenarioStep } from '../scenario.ts';
import { memoryFiles, volumeDir } from '../sut/explorationSut.ts';
import type { SutOp } from '../sut/systemUnderTest.ts';
import { asFailure } from '../sut/thrown.ts';
import type { ChoiceShape } from '../sut/volumeSutOptions.ts';
import type { Choice } from './choices.ts';
import { choicesAt, choiceText, powerChoices } from './choices.ts';
import type { Explorer } from './explorer.ts';
import type { FoundFailure } from './found.ts';
import { foundInWords } from './found.ts';
import { finishCycle, powerLossAfterRecovery } from './judging.ts';
import type { PrefixNode } from './prefixes.ts';

/** Crashes create at each of its durable calls, in every mode the exploration runs; the first failure, or null. */
export async function crashCreates(explorer: Explorer, root: PrefixNode): Promise<FoundFailure | null> {
  const sut = explorer.sut;
  const stats = explorer.stats.inside.create;
  const foreign = keepsForeignFiles(explorer, root);
  if (foreign !== null) return foreign;
  let io: number;
  try {
    const made = sut.createCrashing(explorer.geometry, null);
    if (made.crashed) throw new Error('exploration: create crashed with no crash armed');
    if (!made.reply.ok)
      throw new OracleFailure('sut', `create on fresh files says ${made.reply.code}: ${made.reply.message}`);
    io = made.reply.io ?? 0;
  } catch (error) {
    return {
      error: asFailure(error, 'create'),
      node: root,
      op: null,
      plainOp: null,
      crashAfterIo: null,
      choice: null,
      shape: null,
      steps: [],
      special: 'create on fresh files',
    };
  }
  // Last call first: the crashes after the metadata is in place (where open's own
  // directory sync matters) are judged before those that leave a bare directory.
  for (let afterIo = io; afterIo >= 0; afterIo--) {
    stats.points++;
    const judged = new Set<string>();
    // A process crash first: it learns what is unsynced at this call, which sizes the power and torn choices.
    let shape: ChoiceShape | null = null;
    for (const mode of ['process', ...explorer.modes.filter((mode) => mode !== 'process')] as const) {
      if (mode !== 'process' && shape === null) break;
      const { choices } =
        mode === 'process'
          ? { choices: [{ mode, bits: null, seed: 0 } as Choice] }
          : choicesAt(mode, shape!, explorer.subsetBitsMax, explorer.samplesMax, explorer.tearable);
      for (const choice of choices) {
        const found = await oneCreateCrash(explorer, root, judged, afterIo, io, choice, shape);
        // A create that finished before its k-th call (its call count changed) has nothing to crash there.
        if (found === 'uncrashed') break;
        if (found !== null) return found;
        if (mode === 'process' && shape === null) shape = sut.lastShape;
      }
    }
  }
  return null;
}

/** What a user keeps in the directory given to init, under the names of a volume's own files. */
const foreignFiles: ReadonlyArray<{ name: string; bytes: Uint8Array }> = [
  { name: 'primary', bytes: new TextEncoder().encode('a user file named primary') },
  { name: 'cow', bytes: new TextEncoder().encode('a user file named cow') },
];

/**
 * create in a directory that holds a user's files named like the volume's own
 * (synced: durable) must refuse with E_EXISTS and leave them as they were: init
 * never removes or truncates what it did not make.
 */
function keepsForeignFiles(explorer: Explorer, root: PrefixNode): FoundFailure | null {
  const sut = explorer.sut;
  const label = `create in ${volumeDir}, which holds a user's files named ${foreignFiles.map((file) => file.name).join(' and ')}`;
  try {
    const files = new MemoryStorage();
    files.mkdir(volumeDir);
    for (const { name, bytes } of foreignFiles) {
      const handle = files.open(`${volumeDir}/${name}`, { create: true });
      handle.write(0, bytes);
      handle.close();
    }
    const reply = sut.createOver(memoryFiles(files), explorer.geometry);
    if (reply.ok || reply.code !== 'E_EXISTS') {
      throw new OracleFailure(
        'sut',
        `${label}: ${reply.ok ? 'it succeeded' : `${reply.code}: ${reply.message}`}; it must refuse with E_EXISTS`,
      );
    }
    for (const { name, bytes } of foreignFiles) {
      const path = `${volumeDir}/${name}`;
      const size = files.fileSize(path);
      const kept =
        size === bytes.length &&
        files
          .open(path, { create: false })
          .read(0, size)
          .every((byte, index) => byte === bytes[index]);
      if (!kept)
        throw new OracleFailure('sut', `${label}: it refused, but ${path} is ${size === null ? 'gone' : 'changed'}`);
    }
  } catch (error) {
    return foundInWords(root, label, error);
  }
  return null;
}

async function oneCreateCrash(
  explorer: Explorer,
  root: PrefixNode,
  judged: Set<string>,
  afterIo: number,
  io: number,
  choice: Choice,
  shape: ChoiceShape | null,
): Promise<FoundFailure | null | 'uncrashed'> {
  const sut = explorer.sut;
  const stats = explorer.stats.inside.create;
  const geometry = explorer.geometry;
  stats.runs++;
  const how = choiceText(choice);
  const label = `create crashed after io ${afterIo} of ${io} (${choice.mode}${how === '' ? '' : `, ${how}`})`;
  const steps: ScenarioStep[] = [];
  try {
    const crashed = sut.createCrashing(geometry, {
      afterIo,
      mode: choice.mode === 'process' ? 'process' : 'power',
      ...powerChoices(choice, shape),
    });
    if (!crashed.crashed) return 'uncrashed';
    const carried = choice.mode === 'process' ? sut.carriedSignature() : '';
    const key = `${sut.files.digest()}|${carried}`;
    if (judged.has(key)) {
      explorer.stats.duplicates++;
      return null;
    }
    judged.add(key);
    stats.states++;
    steps.push({ kind: 'recover' });
    const opened = await sut.recover();
    if (!opened.ok) {
      if (opened.code !== 'E_NOT_FOUND') {
        throw new OracleFailure(
          'sut',
          `open after ${label} says ${opened.code}: ${opened.message}; a create cut short must leave no volume (E_NOT_FOUND) or the fresh one`,
        );
      }
      const again = sut.createAgain(geometry);
      if (!again.ok) {
        if (again.code === 'E_EXISTS') return null;
        throw new OracleFailure(
          'sut',
          `create again after ${label} and an open that said E_NOT_FOUND: ${again.code}: ${again.message}; it may only refuse with E_EXISTS`,
        );
      }
    }
    // The volume there must be the fresh one, all zeros, and usable.
    const oracle = explorer.oracleAt(initialState(geometry, explorer.book.zero));
    await oracle.compare(`the volume opened after ${label}`);
    const write = explorer.ops.find((op): op is Extract<SutOp, { type: 'write' }> => op.type === 'write');
    if (write !== undefined) {
      steps.push({ kind: 'op', op: write });
      await oracle.step(write, `${explorer.describe(write)} after ${label}`);
    }
    await finishCycle(explorer, oracle, label, steps);
    if (carried !== '') await powerLossAfterRecovery(explorer, oracle, label, steps, { powerLoss: null });
  } catch (error) {
    return foundInWords(root, label, error, { op: null, crashAfterIo: afterIo, choice, shape, steps });
  } finally {
    explorer.progress();
  }
  return null;
}
