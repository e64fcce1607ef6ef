// Lines and fields of the adapter protocol (docs/adapter.md), shared by both ends:
// a bounded line splitter, strict UTF-8 and strict padded base64.

export type LineEvent =
  | { readonly kind: 'line'; readonly bytes: Buffer }
  | { readonly kind: 'oversized'; readonly length: number };

/**
 * Splits a byte stream into lines ("\n", an optional "\r" before it dropped),
 * holding at most `maxLineBytes` of one line: a longer line is skipped as it
 * arrives and reported once its end is seen (`overflowing` says so at once).
 * Shared by both ends of the protocol.
 */
export class LineSplitter {
  private chunks: Buffer[] = [];
  private length = 0;
  private skipping = false;
  private skipped = 0;

  constructor(readonly maxLineBytes: number) {
    if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1)
      throw new RangeError(`LineSplitter: maxLineBytes must be a positive integer, got ${maxLineBytes}`);
  }

  /** Whether the line now arriving is already longer than the bound. */
  get overflowing(): boolean {
    return this.skipping;
  }

  /** Bytes of an unfinished line held or skipped so far. */
  get pendingBytes(): number {
    return this.skipping ? this.skipped : this.length;
  }

  push(chunk: Uint8Array): LineEvent[] {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const events: LineEvent[] = [];
    let start = 0;
    while (start < buffer.length) {
      const newline = buffer.indexOf(0x0a, start);
      const end = newline < 0 ? buffer.length : newline;
      this.take(buffer.subarray(start, end));
      if (newline < 0) break;
      events.push(this.finishLine());
      start = newline + 1;
    }
    return events;
  }

  /** The last line when the stream ends without a newline (null when there is none). */
  flush(): LineEvent | null {
    if (!this.skipping && this.length === 0) return null;
    return this.finishLine();
  }

  private take(piece: Buffer): void {
    if (this.skipping) {
      this.skipped += piece.length;
    } else if (this.length + piece.length > this.maxLineBytes) {
      this.skipping = true;
      this.skipped = this.length + piece.length;
      this.chunks = [];
      this.length = 0;
    } else if (piece.length > 0) {
      this.chunks.push(piece);
      this.length += piece.length;
    }
  }

  private finishLine(): LineEvent {
    let event: LineEvent;
    if (this.skipping) {
      event = { kind: 'oversized', length: this.skipped };
    } else {
      let line = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      event = { kind: 'line', bytes: line };
    }
    this.chunks = [];
    this.length = 0;
    this.skipping = false;
    this.skipped = 0;
    return event;
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A line's text, or null when it is not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64 (the standard alphabet, padded), or null. */
export function decodeBase64(text: string): Buffer | null {
  if (text.length % 4 !== 0 || !base64Pattern.test(text)) return null;
  return Buffer.from(text, 'base64');
}

/** Bytes as base64 (a region's data in a request or an answer). */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** The start of a line as a JSON string, for a message that quotes what the other end printed. */
export function preview(bytes: Uint8Array, max = 200): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, max)).toString('utf8');
  return JSON.stringify(text) + (bytes.byteLength > max ? ` (${bytes.byteLength} bytes in all)` : '');
}
