// What the benchmarks need from the machine: its description and load, the page
// cache dropped between contenders (when allowed), rsync installed, and the files
// of a volume made durable, hashed and measured on disk.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, totalmem, type } from 'node:os';
import { summarize } from './stats.ts';

export interface MachineDescription {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  memoryFreeBytesAtStart: number;
  nodeVersion: string;
  os: string;
  tempDir: string;
  tempFileSystem: string;
  tempMountSource: string;
  tempMountOptions: string;
  rsyncVersion: string | null;
  /** 1, 5 and 15 minute load averages when the bench started (other work on the machine perturbs every figure). */
  loadAverageAtStart: number[];
}

/** The 1, 5 and 15 minute load averages now, to two decimals. */
export function loadAverages(): number[] {
  return loadavg().map((value) => Number(value.toFixed(2)));
}

/** 1-minute load averages taken at the starts of a section's runs, as "load average MEDIAN (MIN..MAX)". */
export function describeLoad(values: readonly number[]): string {
  if (values.length === 0) return 'load average not taken';
  const { median, min, max } = summarize(values);
  return `load average ${median.toFixed(2)} (${min.toFixed(2)}..${max.toFixed(2)})`;
}

function run(command: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

export function describeMachine(tempDir: string): MachineDescription {
  const cpuList = cpus();
  // findmnt names the file system that holds the directory; stat -f is the fallback.
  const mount = run('findmnt', ['-n', '-o', 'FSTYPE,SOURCE,OPTIONS', '-T', tempDir]);
  let tempFileSystem = 'unknown';
  let tempMountSource = 'unknown';
  let tempMountOptions = '';
  if (mount.status === 0 && mount.stdout.trim() !== '') {
    const [fsType, source, options] = mount.stdout.trim().split(/\s+/);
    tempFileSystem = fsType ?? 'unknown';
    tempMountSource = source ?? 'unknown';
    tempMountOptions = options ?? '';
  } else {
    const stat = run('stat', ['-f', '-c', '%T', tempDir]);
    if (stat.status === 0) tempFileSystem = stat.stdout.trim();
  }
  return {
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    memoryBytes: totalmem(),
    memoryFreeBytesAtStart: freemem(),
    nodeVersion: process.version,
    os: `${type()} ${release()}`,
    tempDir,
    tempFileSystem,
    tempMountSource,
    tempMountOptions,
    rsyncVersion: rsyncVersion(),
    loadAverageAtStart: loadAverages(),
  };
}

export function rsyncVersion(): string | null {
  const result = run('rsync', ['--version']);
  if (result.status !== 0) return null;
  return result.stdout.split('\n')[0]?.trim() ?? null;
}

/**
 * rsync, installed with apt-get when missing (the machine is Debian and we are
 * root). Returns its version or null.
 */
export function ensureRsync(log: (line: string) => void): string | null {
  const present = rsyncVersion();
  if (present !== null) return present;
  log('rsync is missing: apt-get install -y rsync');
  let install = run('apt-get', ['install', '-y', '-q', 'rsync']);
  if (install.status !== 0) {
    log('apt-get install failed; apt-get update, then again');
    run('apt-get', ['update', '-q']);
    install = run('apt-get', ['install', '-y', '-q', 'rsync']);
  }
  const version = rsyncVersion();
  if (version === null) log(`rsync could not be installed: ${install.stderr.trim().split('\n').slice(-2).join(' ')}`);
  return version;
}

/**
 * Writes back dirty pages and drops the page cache (clean pages, dentries and
 * inodes), so that the next contender starts cold. Needs root; returns whether it
 * worked (when it did not, every contender runs with whatever is cached).
 */
export function dropCaches(): boolean {
  const synced = spawnSync('sync');
  if (synced.status !== 0) return false;
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

/** fdatasync of a file by path (what a copy needs to be durable, as a transfer is). */
export function syncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** SHA-256 of a whole file, read in chunks of `chunkBytes`, as hex. */
export function hashFile(path: string, chunkBytes = 8 << 20): string {
  const hash = createHash('sha256');
  const size = statSync(path).size;
  const buffer = Buffer.alloc(chunkBytes);
  const fd = openSync(path, 'r');
  try {
    // Each pass reads at least one byte (zero bytes before the end throws), so the
    // loop ends within `size` passes; normally ceil(size / chunkBytes).
    let position = 0;
    while (position < size) {
      const count = readSync(fd, buffer, 0, Math.min(chunkBytes, size - position), position);
      if (count === 0) throw new Error(`hashFile: ${path} ended at ${position} of ${size} bytes`);
      hash.update(buffer.subarray(0, count));
      position += count;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Bytes of a file that are allocated on disk (st_blocks * 512). */
export function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}

/** The machine in one line, for the log and the table's heading. */
export function describeMachineLine(machine: MachineDescription): string {
  return (
    `${machine.cpuModel}, ${machine.cores} cores, ${(machine.memoryBytes / (1 << 30)).toFixed(1)} GiB memory, ` +
    `node ${machine.nodeVersion}, ${machine.os}; temp dir ${machine.tempDir} on ${machine.tempFileSystem} ` +
    `(${machine.tempMountSource}, ${machine.tempMountOptions}); ${machine.rsyncVersion ?? 'no rsync'}; ` +
    `load average at start ${machine.loadAverageAtStart.join(' ')}`
  );
}
