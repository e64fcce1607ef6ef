// What a power or torn crash keeps, as the exploration chooses it: every subset of
// the unsynced writes (torn: their sectors), truncates and namespace changes up to
// a bound, seeded samples beyond it, and in torn mode tears INSIDE a sector (byte
// by byte), which the crash layer's seeded coins never draw.

import type { PowerChoices } from '../crash/powerChoices.ts';
import type { UnsyncedWriteInfo } from '../crash/unsyncedRecords.ts';
import { Prng } from '../prng.ts';
import type { ChoiceShape } from '../sut/volumeSutOptions.ts';

import { type FaultMode, faultModes } from '../types.ts';

/** The faults the exploration injects (a crash of either mode, or a torn power loss). */
export type ExplorationMode = FaultMode;
export const explorationModes: readonly ExplorationMode[] = faultModes;

/** One sector of one unsynced write torn inside: its first half new and the rest old, or the reverse. */
export interface SectorTear {
  readonly write: number;
  readonly sector: number;
  readonly newHalf: 'head' | 'tail';
  /** Whether every other unsynced record is kept (else dropped). */
  readonly othersKept: boolean;
}

/** A crash choice: a mode, and either explicit bits (coin order of the crash layer), a tear, or a seed. */
export interface Choice {
  readonly mode: ExplorationMode;
  /** Explicit keep bits in the crash layer's coin order; null: the crash layer's coins for `seed` (or a tear). */
  readonly bits: readonly boolean[] | null;
  readonly seed: number;
  /** Torn mode: a sector torn inside, byte by byte (bits null). */
  readonly tear?: SectorTear;
}

export const noShape: ChoiceShape = { writes: [], truncates: 0, namespace: 0 };

/** Explicit choices of a power crash that keeps nothing unsynced. */
export const dropEverything: PowerChoices = {
  keepWrite: () => false,
  keepSector: () => false,
  keepTruncate: () => false,
  keepNamespace: () => false,
};

/** Choice bits at a crash point: writes (torn: their sectors), then truncates, then namespace operations. */
export function choiceBitCount(shape: ChoiceShape, torn: boolean): number {
  const writes = torn ? shape.writes.reduce((sum, write) => sum + write.sectorCount, 0) : shape.writes.length;
  return writes + shape.truncates + shape.namespace;
}

export function explicitChoices(shape: ChoiceShape, torn: boolean, bits: readonly boolean[]): PowerChoices {
  const sectorOffsets: number[] = [];
  let offset = 0;
  for (const write of shape.writes) {
    sectorOffsets.push(offset);
    offset += torn ? write.sectorCount : 1;
  }
  const writeBits = offset;
  const choices: PowerChoices = {
    keepWrite: (index) => bits[index] === true,
    keepTruncate: (index) => bits[writeBits + index] === true,
    keepNamespace: (index) => bits[writeBits + shape.truncates + index] === true,
  };
  return torn
    ? { ...choices, keepSector: (writeIndex, sector) => bits[sectorOffsets[writeIndex]! + sector] === true }
    : choices;
}

/** The crash layer's explicit choices for a tear: the one sector torn inside, everything else kept or dropped. */
export function tearChoices(tear: SectorTear): PowerChoices {
  const others = (): boolean => tear.othersKept;
  return {
    seed: 0,
    torn: true,
    keepWrite: others,
    keepSector: others,
    keepTruncate: others,
    keepNamespace: others,
    tearSector: (write, sector, covered) => {
      if (write !== tear.write || sector !== tear.sector) return null;
      const half = Math.floor(covered / 2);
      return tear.newHalf === 'head' ? (byte) => byte < half : (byte) => byte >= half;
    },
  };
}

export function powerChoices(choice: Choice, shape: ChoiceShape | null): PowerChoices {
  if (choice.mode === 'process') return {};
  if (choice.tear !== undefined) return tearChoices(choice.tear);
  if (choice.bits === null) return { seed: choice.seed, torn: choice.mode === 'torn' };
  return { seed: 0, torn: choice.mode === 'torn', ...explicitChoices(shape!, choice.mode === 'torn', choice.bits) };
}

/**
 * The tears tried at a torn crash point: the first and the last sector of each
 * unsynced write, each with its first or its second half new, everything else
 * kept or dropped. Halves, because a record's fields lie in order (a metadata
 * slot's magic and version first, its CRC last): half new is the torn update of
 * docs/format.md, and the reverse half is the "old version, new payload" mix.
 * Only the writes `tearable` accepts: the exploration tears the volume's own
 * checksummed records (metadata, map pages, COW entries, the secondary's header
 * and digest table), not region data, whose outcomes the model judges sector by
 * sector (docs/protocol.md section 5, rule 3).
 */
export function tearsAt(shape: ChoiceShape, tearable: (write: UnsyncedWriteInfo) => boolean): SectorTear[] {
  const tears: SectorTear[] = [];
  shape.writes.forEach((write, index) => {
    if (!tearable(write)) return;
    const sectors = write.sectorCount > 1 ? [0, write.sectorCount - 1] : write.sectorCount === 1 ? [0] : [];
    for (const sector of sectors) {
      for (const newHalf of ['head', 'tail'] as const) {
        for (const othersKept of [false, true]) tears.push({ write: index, sector, newHalf, othersKept });
      }
    }
  });
  return tears;
}

/** The choices tried in one mode at a crash point, and whether they were sampled. */
export function choicesAt(
  mode: ExplorationMode,
  shape: ChoiceShape,
  subsetBitsMax: number,
  samplesMax: number,
  tearable: ((write: UnsyncedWriteInfo) => boolean) | null = null,
): { choices: Choice[]; sampled: boolean; bits: number } {
  if (mode === 'process') return { choices: [{ mode, bits: null, seed: 0 }], sampled: false, bits: 0 };
  if (shape === noShape) throw new Error('exploration: a power or torn crash point without its shape');
  const bitCount = choiceBitCount(shape, mode === 'torn');
  const tears: Choice[] =
    mode === 'torn' && tearable !== null
      ? tearsAt(shape, tearable).map((tear) => ({ mode, bits: null, seed: 0, tear }))
      : [];
  if (bitCount > subsetBitsMax) {
    return {
      choices: [...Array.from({ length: samplesMax }, (_, seed): Choice => ({ mode, bits: null, seed })), ...tears],
      sampled: true,
      bits: bitCount,
    };
  }
  const choices: Choice[] = [];
  // Keep-everything first: it is the process-mode state, so it dedupes at once.
  for (let mask = (1 << bitCount) - 1; mask >= 0; mask--) {
    choices.push({ mode, bits: Array.from({ length: bitCount }, (_, bit) => ((mask >> bit) & 1) === 1), seed: 0 });
  }
  return { choices: [...choices, ...tears], sampled: false, bits: bitCount };
}

/** A seed whose crash-layer coins draw exactly `bits` (in order), or null. */
export function seedFor(bits: readonly boolean[], seedSearchMax: number): number | null {
  for (let seed = 0; seed <= seedSearchMax; seed++) {
    const prng = new Prng(seed);
    let matches = true;
    for (const bit of bits) {
      if (prng.nextBool() !== bit) {
        matches = false;
        break;
      }
    }
    if (matches) return seed;
  }
  return null;
}

export function drawBits(seed: number, count: number): boolean[] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, () => prng.nextBool());
}

export function describeBits(bits: readonly boolean[], shape: ChoiceShape, torn: boolean): string {
  const parts: string[] = [];
  let index = 0;
  for (const write of shape.writes) {
    const where = `write ${write.index} (${write.path} @${write.position}+${write.length})`;
    if (torn) {
      const sectors = bits
        .slice(index, index + write.sectorCount)
        .map((kept) => (kept ? 'K' : '-'))
        .join('');
      parts.push(`${where} sectors ${sectors}`);
      index += write.sectorCount;
    } else {
      parts.push(`${where} ${bits[index] ? 'kept' : 'dropped'}`);
      index++;
    }
  }
  for (let truncate = 0; truncate < shape.truncates; truncate++)
    parts.push(`truncate ${truncate} ${bits[index++] ? 'kept' : 'dropped'}`);
  for (let op = 0; op < shape.namespace; op++) parts.push(`namespace op ${op} ${bits[index++] ? 'kept' : 'dropped'}`);
  return parts.length === 0 ? 'nothing was unsynced' : parts.join('; ');
}

export function describeTear(tear: SectorTear, shape: ChoiceShape): string {
  const write = shape.writes[tear.write];
  const where =
    write === undefined
      ? `write ${tear.write}`
      : `write ${write.index} (${write.path} @${write.position}+${write.length})`;
  const half = tear.newHalf === 'head' ? 'first' : 'second';
  const others = tear.othersKept ? 'kept' : 'dropped';
  return `${where} torn inside sector ${tear.sector} (${half} half of its bytes new), everything else unsynced ${others}`;
}

/** A choice in a label: the subset as bits, the seed, or the tear. */
export function choiceText(choice: Choice): string {
  if (choice.tear !== undefined)
    return `tear w${choice.tear.write}s${choice.tear.sector} ${choice.tear.newHalf} new, others ${choice.tear.othersKept ? 'kept' : 'dropped'}`;
  if (choice.bits !== null) return `subset ${choice.bits.map((kept) => (kept ? 1 : 0)).join('')}`;
  return choice.mode === 'process' ? '' : `seed ${choice.seed}`;
}
