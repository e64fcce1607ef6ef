// Region content as the harness handles it: bytes, their SHA-256 digest (the
// model's opaque `Content`), and the label that names them in traces.
//
// A label's content is its UTF-8 bytes followed by zero bytes up to regionSize
// (docs/traces.md). The empty label is a region of zeros, the initial content.
//
// Content without a label (the generators' full-region bytes) goes into traces
// as base64, and into messages by a short name the generator gave it (`r3`,
// `r3~last`) or else by its digest's first 8 hex digits (`#1a2b3c4d`): a name is
// for people only and never stands for the bytes in a trace.

import { createHash } from 'node:crypto';
import { sectorSize } from '../../impl/geometry.ts';

export const zeroLabel = '';
export const labelShownMax = 16;
/** Hex digits of the digest that show content with neither label nor name. */
export const digestShownLength = 8;

export function digestOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The bytes of a label, or null when its UTF-8 encoding is longer than a region. */
export function labelBytes(label: string, regionSize: number): Uint8Array | null {
  const encoded = new TextEncoder().encode(label);
  if (encoded.length > regionSize) return null;
  const bytes = new Uint8Array(regionSize);
  bytes.set(encoded);
  return bytes;
}

/**
 * Every content a run has seen, by digest: its bytes (for the torn model's
 * sector-wise checks) and its label where one is known (for readable reports).
 */
export class ContentBook {
  private readonly bytesByDigest = new Map<string, Uint8Array>();
  private readonly labelByDigest = new Map<string, string>();
  private readonly nameByDigest = new Map<string, string>();
  readonly zero: string;

  constructor(readonly regionSize: number) {
    this.zero = this.addLabel(zeroLabel);
  }

  /** Records a label's content and returns its digest. */
  addLabel(label: string): string {
    const bytes = labelBytes(label, this.regionSize);
    if (bytes === null) throw new RangeError(`label '${label}' is longer than regionSize ${this.regionSize}`);
    const digest = this.addBytes(bytes);
    if (!this.labelByDigest.has(digest)) this.labelByDigest.set(digest, label);
    return digest;
  }

  addBytes(bytes: Uint8Array): string {
    const digest = digestOf(bytes);
    if (!this.bytesByDigest.has(digest)) this.bytesByDigest.set(digest, bytes.slice());
    return digest;
  }

  /** Records content with a name for messages (not a label: traces carry its bytes); returns its digest. */
  addNamed(bytes: Uint8Array, name: string): string {
    const digest = this.addBytes(bytes);
    if (!this.nameByDigest.has(digest)) this.nameByDigest.set(digest, name);
    return digest;
  }

  bytesOf(digest: string): Uint8Array | undefined {
    return this.bytesByDigest.get(digest);
  }

  labelOf(digest: string): string | undefined {
    return this.labelByDigest.get(digest);
  }

  /** A label where one is known, else a name, else `#` and the digest's first 8 hex digits. */
  show(digest: string | null): string {
    if (digest === null) return '_';
    const label = this.labelByDigest.get(digest);
    if (label === zeroLabel) return '0';
    if (label === undefined) return this.nameByDigest.get(digest) ?? `#${digest.slice(0, digestShownLength)}`;
    if (label.length <= labelShownMax) return label;
    // Labels made to fill every sector (the crash exploration's `A1....A1`) read as their name.
    const dot = label.indexOf('.');
    const head = dot > 0 ? label.slice(0, dot) : '';
    if (head !== '' && head.length <= labelShownMax && label.split(/\.+/).every((part) => part === head || part === ''))
      return head;
    return `${label.slice(0, labelShownMax)}…`;
  }

  /** Whether `observed` is, sector by sector of `sectorBytes`, `old` or `next` (the torn model). */
  isSectorMix(old: string, next: string, observed: string, sectorBytes = sectorSize): boolean {
    const a = this.bytesOf(old);
    const b = this.bytesOf(next);
    const seen = this.bytesOf(observed);
    if (a === undefined || b === undefined || seen === undefined) return false;
    if (a.length !== seen.length || b.length !== seen.length) return false;
    for (let offset = 0; offset < seen.length; offset += sectorBytes) {
      const end = Math.min(offset + sectorBytes, seen.length);
      let fromOld = true;
      let fromNew = true;
      for (let i = offset; i < end && (fromOld || fromNew); i++) {
        if (seen[i] !== a[i]) fromOld = false;
        if (seen[i] !== b[i]) fromNew = false;
      }
      if (!fromOld && !fromNew) return false;
    }
    return true;
  }
}
