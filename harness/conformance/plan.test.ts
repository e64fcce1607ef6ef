import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Feature } from '../sut/systemUnderTest.ts';
import {
  allCheckIds,
  checkSelected,
  isBounded,
  levelChecks,
  levels,
  selectedLevels,
  traceRunsAt,
  unknownCheckNames,
} from './plan.ts';
import { readTrace } from '../trace/reader.ts';

describe('the plan of checks', () => {
  it('runs the cheap checks whole and bounds the others', () => {
    assert.deepEqual(
      levelChecks('rules', new Set())
        .filter((spec) => !isBounded(spec.kind))
        .map((spec) => spec.id),
      ['rules/traces', 'rules/protocol'],
    );
    for (const level of levels) {
      const kinds = levelChecks(level, new Set()).map((spec) => spec.kind);
      assert.ok(kinds.includes('history'), `${level} has a long history`);
      assert.ok(kinds.includes('fast-check'), `${level} has fast-check`);
    }
  });

  it('crashes as each level asks, torn only where offered', () => {
    const all = new Set<Feature>(['failpoint', 'power-loss', 'torn']);
    assert.deepEqual(
      levelChecks('rules', all).map((spec) => [spec.crashBetween, spec.crashModes.length]),
      levelChecks('rules', all).map(() => [false, 0]),
    );
    assert.ok(levelChecks('crash', all).every((spec) => spec.crashBetween && spec.crashModes.length === 0));
    assert.deepEqual(levelChecks('failpoint', all)[0]!.crashModes, ['process']);
    assert.deepEqual(levelChecks('power', all)[0]!.crashModes, ['power', 'torn']);
    assert.deepEqual(levelChecks('power', new Set<Feature>(['failpoint', 'power-loss']))[0]!.crashModes, ['power']);
  });

  it('selects checks by id or kind, and names the unknown ones', () => {
    const specs = levels.flatMap((level) => levelChecks(level, new Set()));
    assert.deepEqual(
      specs.filter((spec) => checkSelected(spec, ['paths'])).map((spec) => spec.id),
      ['rules/paths', 'crash/paths'],
    );
    assert.deepEqual(
      specs.filter((spec) => checkSelected(spec, ['crash/history'])).map((spec) => spec.id),
      ['crash/history'],
    );
    assert.equal(specs.filter((spec) => checkSelected(spec, [])).length, specs.length);
    assert.deepEqual(unknownCheckNames(['paths', 'rules/sweep', 'nonsense']), ['rules/sweep', 'nonsense']);
    assert.equal(new Set(allCheckIds()).size, allCheckIds().length, 'ids are unique');
  });

  it('--level runs one level, --up-to every level up to it; up to power adds the optional level consistent', () => {
    assert.deepEqual(selectedLevels('failpoint', 'only'), ['failpoint']);
    assert.deepEqual(selectedLevels('failpoint', 'upTo'), ['rules', 'crash', 'failpoint']);
    assert.deepEqual(selectedLevels('power', 'upTo'), ['rules', 'crash', 'failpoint', 'power', 'consistent']);
    assert.deepEqual(selectedLevels('consistent', 'only'), ['consistent']);
  });

  it('the level consistent: kills always, failpoints and their sweep only where offered', () => {
    const withFailpoint = levelChecks('consistent', new Set<Feature>(['consistent', 'failpoint']));
    assert.deepEqual(
      withFailpoint.map((spec) => spec.kind),
      ['traces', 'sweep', 'fast-check', 'history'],
    );
    assert.ok(withFailpoint.every((spec) => spec.crashBetween && spec.crashModes.join() === 'process'));
    const killsOnly = levelChecks('consistent', new Set<Feature>(['consistent']));
    assert.deepEqual(
      killsOnly.map((spec) => spec.kind),
      ['traces', 'fast-check', 'history'],
    );
    assert.ok(killsOnly.every((spec) => spec.crashBetween && spec.crashModes.length === 0));
  });

  it('runs a trace of the consistent image only at the level consistent, where its crashes are offered', () => {
    const read = (text: string) => readTrace(text, 't.jsonl');
    const header = '{"trace": "cowmap", "version": 1, "regions": 1, "regionSize": 512';
    const plain = read(`${header}}\n{"op": "cycle"}\n`);
    const withD = read(`${header}, "features": ["consistent"]}\n{"op": "cycle"}\n`);
    const withFailpoint = read(
      `${header}, "features": ["consistent"]}\n{"op": "completeCycle", "crashAfterIo": 1}\n{"op": "recover"}\n`,
    );
    const all = new Set<Feature>(['failpoint', 'consistent']);
    assert.deepEqual(
      levels.filter((level) => traceRunsAt(plain, level, all)),
      ['rules'],
    );
    assert.deepEqual(
      levels.filter((level) => traceRunsAt(withD, level, all)),
      ['consistent'],
    );
    assert.equal(traceRunsAt(withFailpoint, 'consistent', all), true);
    assert.equal(traceRunsAt(withFailpoint, 'consistent', new Set<Feature>(['consistent'])), false);
  });
});
