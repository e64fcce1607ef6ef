// The server's reading of a request's fields (docs/adapter.md): each field
// present and of its type, or E_BAD_REQUEST naming it and showing what came.

import { CowmapError } from '../../impl/errors.ts';
import { decodeBase64 } from './lines.ts';
import type { JsonObject } from './protocol.ts';

export function badRequest(message: string): CowmapError {
  return new CowmapError('E_BAD_REQUEST', message);
}

/** A value as a message shows it: JSON, cut at 40 characters. */
export function show(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

export function field(request: JsonObject, name: string, op: string): unknown {
  if (!Object.hasOwn(request, name)) throw badRequest(`${op}: the field '${name}' is missing`);
  return request[name];
}

export function integerField(request: JsonObject, name: string, op: string): number {
  const value = field(request, name, op);
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw badRequest(`${op}: the field '${name}' must be an integer, got ${show(value)}`);
  return value;
}

export function stringField(request: JsonObject, name: string, op: string): string {
  const value = field(request, name, op);
  if (typeof value !== 'string') throw badRequest(`${op}: the field '${name}' must be a string, got ${show(value)}`);
  return value;
}

export function booleanField(request: JsonObject, name: string, op: string): boolean {
  const value = field(request, name, op);
  if (typeof value !== 'boolean')
    throw badRequest(`${op}: the field '${name}' must be true or false, got ${show(value)}`);
  return value;
}

/** A region's data: strict padded base64. */
export function dataField(request: JsonObject, op: string): Uint8Array {
  const data = decodeBase64(stringField(request, 'data', op));
  if (data === null) throw badRequest(`${op}: the field 'data' is not base64`);
  return data;
}
