// What `cowmap scrub` reports (docs/format.md, "Scrub"): one finding per structure
// that fails its checksum, or per region whose copies disagree, with the file, the
// byte offset and the region it concerns, and whether --repair dealt with it.

export interface ScrubFinding {
  /** The file, as the volume opened it (DIR/meta, DIR/map0, DIR2/image, ...). */
  file: string;
  /** The byte offset in `file` of the structure or region that failed. */
  offset: number;
  /** The region concerned, or null for a structure that is not a region's (a metadata slot). */
  region: number | null;
  /** What is wrong, in words, e.g. "page 0 fails its CRC-32". */
  problem: string;
  /** True when --repair dealt with it (the regions it affects are marked in the next map). */
  repaired: boolean;
}

export interface ScrubReport {
  findings: ScrubFinding[];
  /** The regions --repair marked in the next map, ascending. */
  repairedRegions: number[];
  /** Regions of P and S read and compared. */
  regionsChecked: number;
}

export interface ScrubOptions {
  repair: boolean;
}
