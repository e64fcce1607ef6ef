// The regions this open of a remote replica saw confirmed, kept for one read-back
// (impl/remote/farProgress.ts, `verifyCompleted`): when the far block is this open's
// but older than the last completed cycle's last batch, only the bytes tell a late
// control write (nbdkit completes the requests of a dropped connection) from an
// export rewound into that cycle. Kept in memory: a cycle's region numbers.

export class ConfirmedRegions {
  /** Regions of the running cycle confirmed by a FLUSH on this open. */
  private running = new Set<number>();
  /** Those of the last cycle this open completed. */
  private completed: readonly number[] = [];
  /** CRCs of the batch on the wire: its writes may have landed though unconfirmed. */
  private onWire: ReadonlyMap<number, number> = new Map();

  cycleRunning(): void {
    this.running = new Set();
  }

  batchSending(crcs: ReadonlyMap<number, number>): void {
    this.onWire = crcs;
  }

  batchConfirmed(): void {
    for (const region of this.onWire.keys()) this.running.add(region);
    this.onWire = new Map();
  }

  cycleCompleted(): void {
    this.completed = [...this.running];
    this.running = new Set();
  }

  /**
   * The first region of the last completed cycle whose far bytes (`farCrcOf`) are
   * neither as confirmed (`digestOf`) nor as the batch on the wire; null when none.
   */
  firstLoss(farCrcOf: (region: number) => number, digestOf: (region: number) => number): number | null {
    for (const region of this.completed) {
      const crc = farCrcOf(region);
      if (crc !== digestOf(region) && crc !== this.onWire.get(region)) return region;
    }
    return null;
  }
}
