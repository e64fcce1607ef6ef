// What an implementation throws instead of answering. A rejection (a CowmapError)
// and a simulated crash are answers; anything else is a failure of the
// implementation, reported with its stack, never a crash of the checker.

import { isCowmapError } from '../../impl/errors.ts';
import { OracleFailure } from '../oracle/oracle.ts';

/** An error as text with the first frames of its stack: what a failure report shows of an unexpected throw. */
export function errorWithTrace(error: unknown, frames = 8): string {
  if (!(error instanceof Error)) return String(error);
  const stack = (error.stack ?? '')
    .split('\n')
    .filter((line) => line.trimStart().startsWith('at '))
    .slice(0, frames);
  return [`${error.name}: ${error.message}`, ...stack.map((line) => `    ${line.trim()}`)].join('\n');
}

/** Any error as a failure: an OracleFailure as it is; anything else the implementation threw, with its trace. */
export function asFailure(error: unknown, where: string): OracleFailure {
  if (error instanceof OracleFailure) return error;
  if (isCowmapError(error))
    return new OracleFailure('sut', `${where}: an unexpected ${error.code} escaped: ${errorWithTrace(error)}`);
  return new OracleFailure('sut', `${where}: the implementation threw ${errorWithTrace(error)}`);
}
