// The metadata contexts the export offers to NBD_CMD_BLOCK_STATUS (NetworkBlockDevice
// doc/proto.md, "Metadata querying"; QEMU docs/interop/nbd.rst, "qemu namespace"), and
// the queries of NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT that name them.
// docs/nbd.md describes them for users.

import * as nbd from './protocol.ts';

/** What a context reports: allocation (all data), or a change map of docs/protocol.md as a dirty bitmap. */
export type MetaContextKind = 'allocation' | 'next' | 'current';

export interface MetaContext {
  /** The id of NBD_REP_META_CONTEXT after SET: stable, the same on every connection. */
  readonly id: number;
  readonly name: string;
  readonly kind: MetaContextKind;
}

export const metaContexts: readonly MetaContext[] = [
  { id: 1, name: 'base:allocation', kind: 'allocation' },
  { id: 2, name: 'qemu:dirty-bitmap:cowmap-next', kind: 'next' },
  { id: 3, name: 'qemu:dirty-bitmap:cowmap-current', kind: 'current' },
];

/** The context of a SET reply's id; undefined for an id the export never gave. */
export function metaContextOfId(id: number): MetaContext | undefined {
  return metaContexts.find((context) => context.id === id);
}

/**
 * The contexts one LIST query names: the context of that exact name, or, for a query
 * that ends with a colon (`base:`, `qemu:`, `qemu:dirty-bitmap:`), every context under
 * it. An unknown name or namespace names none (the spec: ignored, not an error).
 */
export function contextsListed(query: string): MetaContext[] {
  if (query.endsWith(':')) return metaContexts.filter((context) => context.name.startsWith(query));
  return metaContexts.filter((context) => context.name === query);
}

/**
 * The context one SET query selects: only an exact name. A wildcard selects nothing
 * (the spec: `base:` MUST be ignored by SET, and an empty leaf-name SHOULD NOT
 * select), and an unknown name is ignored.
 */
export function contextSelected(query: string): MetaContext | undefined {
  return metaContexts.find((context) => context.name === query);
}

/** The data of NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT. */
export interface MetaContextRequest {
  readonly exportName: string;
  readonly queries: readonly string[];
}

/**
 * Parses the option data: export name length and name, query count, then each query's
 * length and bytes. null when it is syntactically invalid (a length past the end, bytes
 * left over, a string over the protocol's 4096 bytes): NBD_REP_ERR_INVALID.
 */
export function parseMetaContextRequest(data: Buffer): MetaContextRequest | null {
  let at = 0;
  const string = (): string | null => {
    if (at + 4 > data.length) return null;
    const length = data.readUInt32BE(at);
    if (length > nbd.STRING_BYTES_MAX || at + 4 + length > data.length) return null;
    const text = data.subarray(at + 4, at + 4 + length).toString('utf8');
    at += 4 + length;
    return text;
  };
  const exportName = string();
  if (exportName === null || at + 4 > data.length) return null;
  const count = data.readUInt32BE(at);
  at += 4;
  const queries: string[] = [];
  for (let index = 0; index < count; index++) {
    const query = string();
    if (query === null) return null;
    queries.push(query);
  }
  return at === data.length ? { exportName, queries } : null;
}

/** The data of one NBD_REP_META_CONTEXT: the id, then the name (its length is the reply's). */
export function metaContextReplyData(id: number, name: string): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const data = Buffer.alloc(4 + nameBytes.length);
  data.writeUInt32BE(id, 0);
  nameBytes.copy(data, 4);
  return data;
}
