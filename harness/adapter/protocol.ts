// The words of the adapter protocol (docs/adapter.md) that both ends use: the
// version hello names, the features an implementation may offer, and what a
// line must decode to before its fields are read.

import type { Feature } from '../sut/systemUnderTest.ts';

/** The protocol version this suite speaks (hello's `protocol`). */
export const protocolVersion = 1;

/** Every feature docs/adapter.md defines, in the order hello lists them. */
export const protocolFeatures: readonly Feature[] = ['failpoint', 'power-loss', 'torn', 'consistent'];

/** A request or an answer, decoded: a JSON object. */
export type JsonObject = Record<string, unknown>;

/** Whether a decoded line is a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
