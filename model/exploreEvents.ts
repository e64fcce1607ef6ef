// The explorer's alphabet: the operations it tries in every state, and the
// labels its writes carry. Contents are labels: region A written with value 1
// holds `A1`; the initial zero content is the empty label. Contents never move
// between regions, so one label set per region gives the same state space as
// one shared set.

import type { Content, Op } from './types.ts';

export const exploreRegionSize = 512;

export function regionName(region: number, regions: number): string {
  return regions <= 26 ? String.fromCharCode(65 + region) : String(region);
}

export function valueLabel(region: number, value: number, regions: number): Content {
  return `${regionName(region, regions)}${value}`;
}

/** The operations tried in every state, in a fixed order (so the shortest path is deterministic). */
export function exploreEvents(regions: number, values: number, crash: boolean): Op[] {
  const events: Op[] = [];
  for (let region = 0; region < regions; region++) {
    for (let value = 1; value <= values; value++) {
      events.push({ type: 'write', region, data: valueLabel(region, value, regions), size: exploreRegionSize });
    }
  }
  events.push({ type: 'startCycle' });
  for (let region = 0; region < regions; region++) events.push({ type: 'transfer', region });
  events.push({ type: 'completeCycle' });
  if (crash) events.push({ type: 'crash' }, { type: 'recover' });
  return events;
}
