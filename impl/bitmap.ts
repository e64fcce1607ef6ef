// One bit per region, in memory. The byte layout is the on-disk one (region r in
// byte r >> 3, bit r & 7, least significant bit first), so a map file's bytes load
// and store without translation (impl/mapFile.ts).

import { assert } from './assert.ts';
import { mapSize } from './geometry.ts';

export class Bitmap {
  readonly regions: number;
  readonly bytes: Uint8Array;
  private setCount: number;

  constructor(regions: number, bytes?: Uint8Array) {
    assert(Number.isSafeInteger(regions) && regions >= 1, `bitmap regions ${regions}`);
    this.regions = regions;
    this.bytes = new Uint8Array(mapSize(regions));
    if (bytes !== undefined) {
      assert(bytes.length === this.bytes.length, `bitmap of ${regions} regions from ${bytes.length} bytes`);
      this.bytes.set(bytes);
      assert(this.paddingClear(), 'bitmap padding bits beyond the last region are set');
    }
    this.setCount = 0;
    for (let i = 0; i < this.bytes.length; i++) this.setCount += popCount(this.bytes[i]!);
  }

  /** The bits past the last region in the last byte are clear (a map file with them set is corrupt). */
  static paddingClear(regions: number, bytes: Uint8Array): boolean {
    const used = regions & 7;
    if (used === 0) return true;
    return (bytes[bytes.length - 1]! & ~((1 << used) - 1) & 0xff) === 0;
  }

  private paddingClear(): boolean {
    return Bitmap.paddingClear(this.regions, this.bytes);
  }

  has(region: number): boolean {
    this.checkRegion(region);
    return (this.bytes[region >> 3]! & (1 << (region & 7))) !== 0;
  }

  set(region: number): void {
    if (this.has(region)) return;
    this.bytes[region >> 3]! |= 1 << (region & 7);
    this.setCount++;
  }

  clear(region: number): void {
    if (!this.has(region)) return;
    this.bytes[region >> 3]! &= ~(1 << (region & 7)) & 0xff;
    this.setCount--;
  }

  clearAll(): void {
    this.bytes.fill(0);
    this.setCount = 0;
  }

  get count(): number {
    return this.setCount;
  }

  isClear(): boolean {
    return this.setCount === 0;
  }

  /** The set regions in ascending order. */
  regionsSet(): number[] {
    const result: number[] = [];
    for (let byte = 0; byte < this.bytes.length; byte++) {
      const value = this.bytes[byte]!;
      if (value === 0) continue;
      for (let bit = 0; bit < 8; bit++) if ((value & (1 << bit)) !== 0) result.push(byte * 8 + bit);
    }
    assert(result.length === this.setCount, 'bitmap count out of step with its bytes');
    return result;
  }

  /** Region 0 first, e.g. "0100" (docs/protocol.md section 6). */
  toBitString(): string {
    let result = '';
    for (let region = 0; region < this.regions; region++) result += this.has(region) ? '1' : '0';
    return result;
  }

  private checkRegion(region: number): void {
    assert(
      Number.isInteger(region) && region >= 0 && region < this.regions,
      `bitmap region ${region} of ${this.regions}`,
    );
  }
}

function popCount(byte: number): number {
  let count = 0;
  for (let value = byte; value !== 0; value &= value - 1) count++;
  return count;
}
