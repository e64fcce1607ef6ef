// The reference implementation as a SystemUnderTest: a ReplicatedVolume (or a
// named broken variant of it) on real files in a temporary directory, through
// NodeStorage under the crash layer (volumeSut.ts), so that the harness can crash
// it after any durable I/O call, in process, power or torn mode.

import { makeTemporaryDir, NodeStorage, removeTree } from '../../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { VolumeClass } from '../types.ts';
import type { SystemUnderTest } from './systemUnderTest.ts';
import type { VolumeFiles } from './volumeSutOptions.ts';
import { VolumeSut } from './volumeSut.ts';

export interface ReferenceSutOptions {
  /** The volume class: ReplicatedVolume, or a mutant subclass. */
  readonly volumeClass?: VolumeClass;
  readonly name?: string;
  /** Feature `consistent`: a `consistent:` secondary, whose image D state() reports (docs/protocol.md section 10). */
  readonly consistent?: boolean;
}

/** A fresh temporary directory on real files; the volume lives in its `volume` subdirectory. */
function temporaryFiles(): VolumeFiles<NodeStorage> {
  const root = makeTemporaryDir('cowmap-sut-');
  return { storage: new NodeStorage(), dir: `${root}/volume`, dispose: () => removeTree(root) };
}

export class ReferenceSut extends VolumeSut<NodeStorage> {
  constructor(options: ReferenceSutOptions = {}) {
    const consistent = options.consistent === true;
    super(options.volumeClass ?? ReplicatedVolume, {
      name: options.name ?? `the reference implementation${consistent ? ' (consistent secondary)' : ''}`,
      newFiles: temporaryFiles,
      consistent,
    });
  }
}

export function createReferenceSut(options: ReferenceSutOptions = {}): SystemUnderTest {
  return new ReferenceSut(options);
}
