// One operation on a volume, as the SystemUnderTest interface answers it
// (systemUnderTest.ts): a rejection (a CowmapError) is a reply, not a throw.
// Every volume in this process (volumeSut.ts) applies its operations here.

import { isCowmapError } from '../../impl/errors.ts';
import type { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { SutOp, SutReply } from './systemUnderTest.ts';

export function applyToVolume(volume: ReplicatedVolume, op: SutOp): SutReply {
  try {
    switch (op.type) {
      case 'write':
        volume.writeRegion(op.region, op.data);
        return { ok: true };
      case 'read':
        return { ok: true, data: volume.readRegion(op.region, op.volume) };
      case 'startCycle':
        volume.startCycle();
        return { ok: true };
      case 'transfer':
        volume.transfer(op.region);
        return { ok: true };
      case 'completeCycle':
        volume.completeCycle();
        return { ok: true };
    }
  } catch (error) {
    if (isCowmapError(error)) return { ok: false, code: error.code, message: error.message };
    throw error;
  }
}
