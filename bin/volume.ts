// What the volume's commands (init, write, read, cycle, status, scrub, serve)
// share: their one positional argument, the volume directory, and opening the
// volume on the file system around a body.

import { NodeStorage } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { UsageError } from './usageError.ts';

/** The one positional argument, the volume directory. */
export function volumeDirArgument(positionals: readonly string[]): string {
  if (positionals.length !== 1)
    throw new UsageError(`expected one volume directory, got ${positionals.length} arguments`);
  if (positionals[0] === '') throw new UsageError('the volume directory is an empty string');
  return positionals[0]!;
}

/** `--name` when the command cannot do without it. */
export function requiredOption<T>(name: string, value: T | undefined): T {
  if (value === undefined) throw new UsageError(`--${name} is required`);
  return value;
}

/**
 * Opens the volume in `dir` on the file system (recovery included), runs `body`,
 * closes it. `readOnly` opens it without writing anything (OpenOptions.readOnly):
 * what status and read use, so that they work on a read-only file system.
 */
export async function withVolume<T>(
  dir: string,
  body: (volume: ReplicatedVolume) => Promise<T> | T,
  options: { readOnly?: boolean } = {},
): Promise<T> {
  const volume = ReplicatedVolume.open(new NodeStorage(), dir, options.readOnly === true ? { readOnly: true } : {});
  try {
    return await body(volume);
  } finally {
    volume.close();
  }
}
