// cowmap read DIR2 --consistent on a receiver directory (`cowmap receive`'s, or a
// volume's `consistent:` secondary): the consistent image, the primary at the swap of
// the last completed cycle (docs/receive.md). The store is opened read-only: its
// recovery runs in memory, nothing is written. While `cowmap receive` holds DIR2 it is
// E_LOCKED: the image a reader would see could move under it.

import { CowmapError, isCowmapError } from '../../impl/errors.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import { ReceiverStore } from '../../impl/receive/receiverStore.ts';
import { controlBlockSize } from '../../impl/remote/controlBlock.ts';
import { writeStdout } from '../stdout.ts';
import { streamPieces } from './readPieces.ts';

export type ReadRange = { region: number } | { offset: number; length: number };

export async function readReceiverConsistent(dir: string, range: ReadRange): Promise<void> {
  const store = openReadOnly(dir);
  try {
    const imageSize = store.exportSize - controlBlockSize;
    if ('region' in range) {
      const identity = store.status().identity;
      if (identity === null)
        throw new CowmapError(
          'E_BAD_REQUEST',
          `${dir} has received no cycle: no region size; give --offset and --length`,
        );
      const { regionSize } = identity;
      if (range.region >= identity.regions)
        throw new CowmapError('E_RANGE', `region ${range.region}: the image has ${identity.regions} regions`);
      await writeStdout(store.readConsistent(range.region * regionSize, regionSize));
      return;
    }
    const { offset, length } = range;
    if (!Number.isSafeInteger(offset + length) || offset + length > imageSize)
      throw new CowmapError('E_RANGE', `${length} bytes at ${offset}: the image is ${imageSize} bytes`);
    const pieceRegionSize = store.status().identity?.regionSize ?? controlBlockSize;
    await streamPieces(offset, length, pieceRegionSize, (at, bytes) => store.readConsistent(at, bytes));
  } finally {
    store.close();
  }
}

const lockHolders = 'a cowmap receive serves it (or the volume whose consistent secondary it is, is open)';

function openReadOnly(dir: string): ReceiverStore {
  try {
    return ReceiverStore.open(new NodeStorage(), dir, { readOnly: true });
  } catch (error) {
    if (isCowmapError(error, 'E_LOCKED'))
      throw new CowmapError('E_LOCKED', `${dir} is locked: ${lockHolders}; stop receive first`, { cause: error });
    if (isCowmapError(error, 'E_NOT_FOUND'))
      throw new CowmapError('E_NOT_FOUND', `${dir} holds no volume and no receiver's store`, { cause: error });
    throw error;
  }
}
