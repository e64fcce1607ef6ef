// The one reader of integer options, for every command: a decimal integer (an
// optional minus sign, then digits: no 1e3, no 0x10, no spaces) that is exact in
// a double, within bounds that the message names.

import { UsageError } from './usageError.ts';

export interface IntegerBounds {
  readonly min: number;
  readonly max: number;
}

/** The largest integer that every count, offset and size can take (exact in a double). */
export const integerMax = Number.MAX_SAFE_INTEGER;

/** `--name`'s value as an integer in bounds, or a UsageError that says the rule. */
export function integerOption(name: string, text: string, bounds: IntegerBounds): number {
  const value = Number(text);
  if (!/^-?[0-9]+$/.test(text) || !Number.isSafeInteger(value) || value < bounds.min || value > bounds.max)
    throw new UsageError(`--${name} must be a decimal integer from ${bounds.min} to ${bounds.max}, got '${text}'`);
  return value;
}

/** The same for an option that may be absent (undefined stays undefined). */
export function optionalIntegerOption(
  name: string,
  text: string | undefined,
  bounds: IntegerBounds,
): number | undefined {
  return text === undefined ? undefined : integerOption(name, text, bounds);
}

/** --seed of verify, conform and mutants (a random one is drawn below the max). */
export const seedBounds: IntegerBounds = { min: 0, max: 2 ** 31 - 1 };
/** --time-budget in seconds, of verify, conform and mutants: up to a day. */
export const budgetSecondsBounds: IntegerBounds = { min: 1, max: 86_400 };
