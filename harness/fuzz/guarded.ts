// The implementation as the fuzz runs see it: an error it throws (rather than
// answers) becomes an OracleFailure, so that the scenario keeps its records.

import { OracleFailure } from '../oracle/oracle.ts';
import type { SystemUnderTest } from '../sut/systemUnderTest.ts';

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The implementation, each of its calls guarded. */
export function guarded(sut: SystemUnderTest): SystemUnderTest {
  const wrap = async <T>(what: string, body: () => Promise<T>): Promise<T> => {
    try {
      return await body();
    } catch (error) {
      if (error instanceof OracleFailure) throw error;
      throw new OracleFailure(
        'sut',
        `${sut.name} threw during ${what}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  };
  return {
    name: sut.name,
    features: sut.features,
    create: (geometry) => wrap('create', () => sut.create(geometry)),
    apply: (op) => wrap(op.type, () => sut.apply(op)),
    applyCrashing: (op, crash) => wrap(`${op.type} with a failpoint`, () => sut.applyCrashing(op, crash)),
    state: () => wrap('state', () => sut.state()),
    crash: () => wrap('crash', () => sut.crash()),
    recover: () => wrap('recover', () => sut.recover()),
    close: () => sut.close(),
  };
}
