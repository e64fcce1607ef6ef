// Create's cleanup of DIR/remote-digests when the far side's claim fails.

import { parentDir } from '../layout.ts';
import type { FileHandle, Storage } from '../storage.ts';

/** A failed create's file: closed and removed, the removal made durable; errors ignored (the create's own is reported). */
export function removeCreatedFile(storage: Storage, file: FileHandle): void {
  try {
    file.close();
    storage.unlink(file.path);
    storage.syncDir(parentDir(file.path));
  } catch {
    // A leftover is named by the next create (E_EXISTS).
  }
}
