// Test support (no tests here): read, patch and flip the bytes of a volume's files
// as rot or a hostile tester would, through the same storage the volume uses, each
// change synced; and the region contents the tests write.

import { NodeStorage } from './nodeStorage.ts';

const storage = new NodeStorage();

/** `length` bytes of the file at `position` (to the end by default). */
export function readFileBytes(path: string, position = 0, length?: number): Uint8Array {
  const file = storage.open(path, { create: false });
  try {
    return file.read(position, length ?? file.size() - position);
  } finally {
    file.close();
  }
}

/** Writes `bytes` at `position` of the file and syncs it. */
export function patchFile(path: string, position: number, bytes: Uint8Array): void {
  const file = storage.open(path, { create: false });
  try {
    file.write(position, bytes);
    file.sync();
  } finally {
    file.close();
  }
}

/** Flips the bits of `mask` in one byte of the file (rot), synced. */
export function flipByte(path: string, position: number, mask = 0x40): void {
  patchFile(path, position, Uint8Array.of(readFileBytes(path, position, 1)[0]! ^ mask));
}

/** A region of `regionSize` bytes that starts with `text` (UTF-8), zeros after it. */
export function labelBytes(text: string, regionSize: number): Uint8Array {
  const bytes = new Uint8Array(regionSize);
  bytes.set(new TextEncoder().encode(text));
  return bytes;
}
