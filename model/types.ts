// The abstract state of docs/protocol.md section 1, and the operations of section 2.
//
// Region content is opaque to the model: a `Content` is any string that is equal
// for equal bytes (the harness uses the SHA-256 digest, the explorer short labels).
// The model never looks inside it, so it stays pure and its states stay small.

export type Content = string;

export interface Geometry {
  readonly regions: number;
  readonly regionSize: number;
}

export type Phase = 'idle' | 'replicating';

export interface ModelState {
  readonly geometry: Geometry;
  /** The phase the durable state holds; while crashed, the phase recovery resumes. */
  readonly phase: Phase;
  /** Between a crash and the recovery: every operation but recover is rejected. */
  readonly crashed: boolean;
  /** P: the primary volume. */
  readonly primary: readonly Content[];
  /** S: the secondary volume. */
  readonly secondary: readonly Content[];
  /** C: the regions the running cycle must copy. */
  readonly current: readonly boolean[];
  /** X: the regions written since the running cycle began (or since the last one, when idle). */
  readonly next: readonly boolean[];
  /** W: the preserved point-in-time copy of each region overwritten during the cycle, or null. */
  readonly cow: readonly (Content | null)[];
  /** The regions sent since the swap or since the last recovery (volatile). */
  readonly sent: readonly boolean[];
  /** P@swap: a ghost variable for INV-SNAPSHOT and INV-POINT-IN-TIME; null while idle. */
  readonly primaryAtSwap: readonly Content[] | null;
  /**
   * D: the consistent image a receiver on the far side keeps (docs/protocol.md section 10):
   * P@swap of the last cycle the far side committed. Only the far side's commit, the first
   * step of completeCycle, changes it (INV-DR).
   */
  readonly consistent: readonly Content[];
}

/** Error codes of docs/protocol.md section 2 that the model decides (the others are about files and requests). */
export type RejectCode = 'E_RANGE' | 'E_SIZE' | 'E_PHASE' | 'E_NOT_CURRENT' | 'E_NOT_DRAINED';

export type Volume = 'primary' | 'secondary';

/** The operations of docs/protocol.md section 2, as statechart events (`type` is the operation's name). */
export type Op =
  | { readonly type: 'write'; readonly region: number; readonly data: Content; readonly size: number }
  | { readonly type: 'read'; readonly region: number; readonly volume: Volume }
  | { readonly type: 'startCycle' }
  | { readonly type: 'transfer'; readonly region: number }
  | { readonly type: 'completeCycle' }
  | { readonly type: 'crash' }
  | { readonly type: 'recover' };

export type OpType = Op['type'];

export interface Rejection {
  readonly code: RejectCode;
  readonly message: string;
}
