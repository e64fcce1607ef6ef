// The exploration tests' scratch folders: one fresh folder per exploration, for
// the traces a failure saves, all removed after the test file.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

const scratch = mkdtempSync(join(tmpdir(), 'cowmap-crash-exploration-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let folderCount = 0;

/** A folder name not used before in this test file (not made: the exploration makes it when it saves). */
export function freshFolder(): string {
  return join(scratch, `failures-${folderCount++}`);
}

/** The crashes inside operations and between them only: no create, recovery or scrub crashes, no rot. */
export const opsOnly = { createCrashes: false, recoveryPathsMax: 0, rot: false } as const;
