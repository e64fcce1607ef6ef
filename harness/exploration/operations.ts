// The operations a crash exploration runs, and how it names them: a write of
// each label to each region written, startCycle, a transfer of each region
// written, completeCycle. A label fills every sector of its region (`A1....A1`),
// so that a torn write shows; reports show it by its short name (`A1`).

import { sectorSize } from '../../impl/geometry.ts';
import type { SutOp } from '../sut/systemUnderTest.ts';
import type { ContentBook } from '../trace/content.ts';
import { defaultNames } from '../trace/reader.ts';

/**
 * The label written as value `value` to region `name`: `A1` for a one-sector
 * region; for a larger one the short name again at the start of every sector
 * (`A1....A1`, dots in between), so that every sector of two contents differs and
 * a torn write shows (a short label followed by zeros would leave every sector but
 * the first equal, and torn mode would test nothing).
 */
export function explorationLabel(name: string, value: number, regionSize: number): string {
  const short = `${name}${value}`;
  let label = short;
  for (let sector = 1; sector < regionSize / sectorSize; sector++)
    label += '.'.repeat(sector * sectorSize - label.length) + short;
  return label;
}

/** A text with the long exploration labels shown by their short names. */
export function shortenLabels(text: string): string {
  return text.replace(/([A-Z0-9]+)\.{100,}\1(?:\.+\1)*/g, '$1');
}

/** The operations of the exploration: writes of every label to every region, the swap, every transfer, completion. */
export function explorationOps(
  regions: number,
  values: number,
  book: ContentBook,
  active?: readonly number[],
): SutOp[] {
  const names = defaultNames(regions);
  const ops: SutOp[] = [];
  const touched = active ?? Array.from({ length: regions }, (_, region) => region);
  for (const region of touched) {
    for (let value = 1; value <= values; value++) {
      const label = explorationLabel(names[region]!, value, book.regionSize);
      ops.push({ type: 'write', region, data: book.bytesOf(book.addLabel(label))! });
    }
  }
  ops.push({ type: 'startCycle' });
  for (const region of touched) ops.push({ type: 'transfer', region });
  ops.push({ type: 'completeCycle' });
  return ops;
}

/** An operation in words, a write by its label's short name. */
export function describeOp(op: SutOp, book: ContentBook, names: readonly string[]): string {
  switch (op.type) {
    case 'write':
      return `write ${names[op.region]} ${shortenLabels(book.show(book.addBytes(op.data)))}`;
    case 'transfer':
      return `transfer ${names[op.region]}`;
    case 'read':
      return `read ${names[op.region]} ${op.volume}`;
    default:
      return op.type;
  }
}
