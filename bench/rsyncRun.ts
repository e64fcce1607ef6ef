// The cycle's first baseline: rsync of the primary image to a replica file, made
// durable, with the bytes its processes moved.

import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { timeSeconds } from './stats.ts';
import { syncFile } from './system.ts';

export interface RsyncRun {
  seconds: number;
  status: number | null;
  /**
   * Bytes its processes read and wrote through read/write system calls (files and
   * their pipes), from /proc/PID/io of the shell that waited for them.
   */
  syscallBytesRead: number | null;
  syscallBytesWritten: number | null;
  /** rsync --stats: the data it could not match and sent literally. */
  literalBytes: number | null;
  stderr: string;
}

export const rsyncArgs = ['--inplace', '--no-whole-file', '-I', '--stats'];

/** rsync SOURCE DESTINATION, then an fdatasync of DESTINATION, timed together. */
export function runRsync(source: string, destination: string): RsyncRun {
  const holder: { result?: SpawnSyncReturns<string> } = {};
  const seconds = timeSeconds(() => {
    // The shell's /proc/PID/io includes the I/O of the children it has reaped (rsync's three processes).
    holder.result = spawnSync(
      'sh',
      ['-c', `rsync ${rsyncArgs.join(' ')} "$1" "$2" && cat /proc/$$/io`, 'rsync-bench', source, destination],
      { encoding: 'utf8', maxBuffer: 16 << 20 },
    );
    syncFile(destination);
  });
  const finished = holder.result!;
  const stdout = finished.stdout ?? '';
  const number = (pattern: RegExp) => {
    const match = pattern.exec(stdout);
    return match === null ? null : Number(match[1]!.replaceAll(',', ''));
  };
  return {
    seconds,
    status: finished.status,
    syscallBytesRead: number(/^rchar: (\d+)/m),
    syscallBytesWritten: number(/^wchar: (\d+)/m),
    literalBytes: number(/Literal data: ([\d,]+) bytes/),
    stderr: (finished.stderr ?? '').trim(),
  };
}
