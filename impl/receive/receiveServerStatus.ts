// The receive status file, DIR2/receive.status: what `cowmap receive` is doing, for a
// reader while the receiver holds DIR2's lock (nothing else can open the store then).
// Like serve.status (impl/nbd/serveStatus.ts): JSON rewritten whole through a
// temporary file and a rename, never synced (informative only: a power loss may leave
// it old, empty or missing, which reads as no status), written at each cycle event and
// every second, removed when the receiver stops. A file whose pid is dead is stale.

import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReceiveServer } from './receiveServer.ts';

export const receiveStatusFileName = 'receive.status';
const receiveStatusTemporaryFileName = 'receive.status.tmp';

export interface ReceiveStatus {
  /** The receiver's process id. */
  pid: number;
  /** When the receiver wrote this version (ISO 8601). */
  updatedAt: string;
  /** Where it listens: `host:port` or a socket path. */
  listening: string;
  connections: number;
  /** The export's size: the image, then the 4096-byte control block. */
  exportSize: number;
  /** The primary volume's id (hex) and geometry, from its first control block; null before one arrived. */
  volumeId: string | null;
  regions: number | null;
  regionSize: number | null;
  /** The last completed cycle: the consistent image is the primary at its swap; null before the first (init's cycle 0). */
  completedCycle: number | null;
  /** That swap's time (ISO 8601), null when unknown (no cycle completed with a known time). */
  completedSwapAt: string | null;
  /** The cycle whose journal is open (its writes not yet in the consistent image), or null. */
  runningCycle: number | null;
  journalBytes: number;
  /** Cycles completed since the receiver started, and how long the last one took (first signal to commit). */
  cyclesCompleted: number;
  lastCycleSeconds: number | null;
  /** Bytes written by the primary since the receiver started. */
  bytesReceived: number;
  /** The storage error after which the receiver takes no writes (restart it), null while healthy. */
  failure: string | null;
}

export function receiveStatusPath(dir: string): string {
  return join(dir, receiveStatusFileName);
}

/** Replaces DIR2/receive.status with `status` (a temporary file, then a rename; no sync). */
export function writeReceiveStatus(dir: string, status: ReceiveStatus): void {
  const temporaryPath = join(dir, receiveStatusTemporaryFileName);
  writeFileSync(temporaryPath, `${JSON.stringify(status, null, 2)}\n`);
  renameSync(temporaryPath, receiveStatusPath(dir));
}

export function removeReceiveStatus(dir: string): void {
  rmSync(receiveStatusPath(dir), { force: true });
  rmSync(join(dir, receiveStatusTemporaryFileName), { force: true });
}

const numberFields = ['pid', 'connections', 'exportSize', 'journalBytes', 'cyclesCompleted', 'bytesReceived'] as const;
const stringFields = ['updatedAt', 'listening'] as const;
const nullableNumberFields = ['completedCycle', 'regions', 'regionSize', 'runningCycle', 'lastCycleSeconds'] as const;
const nullableStringFields = ['volumeId', 'completedSwapAt', 'failure'] as const;

/** DIR2/receive.status, or null when there is none or it is not a status (cut short, or something else's). */
export function readReceiveStatus(dir: string): ReceiveStatus | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(receiveStatusPath(dir), 'utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const record = parsed as Record<string, unknown>;
  const fits =
    numberFields.every((field) => typeof record[field] === 'number') &&
    stringFields.every((field) => typeof record[field] === 'string') &&
    nullableNumberFields.every((field) => record[field] === null || typeof record[field] === 'number') &&
    nullableStringFields.every((field) => record[field] === null || typeof record[field] === 'string');
  return fits ? (parsed as ReceiveStatus) : null;
}

/** What the server reports now (`listening`: where it listens). */
export function receiveStatusOf(server: ReceiveServer, listening: string): ReceiveStatus {
  const status = server.status;
  const identity = status.identity;
  const swapMs = status.completedSwapTimeMs;
  const failure = server.target.failure;
  return {
    pid: process.pid,
    updatedAt: new Date().toISOString(),
    listening,
    connections: server.connectionCount,
    exportSize: server.sizeBytes,
    volumeId: identity === null ? null : Buffer.from(identity.volumeId).toString('hex'),
    regions: identity?.regions ?? null,
    regionSize: identity?.regionSize ?? null,
    completedCycle: status.completedCycle,
    completedSwapAt: status.completedCycle === null || swapMs === 0 ? null : new Date(swapMs).toISOString(),
    runningCycle: status.runningCycle,
    journalBytes: status.journalBytes,
    cyclesCompleted: server.cyclesCompleted,
    lastCycleSeconds: server.lastCycle?.seconds ?? null,
    bytesReceived: server.target.bytesReceived,
    failure: failure === null ? null : failure instanceof Error ? failure.message : String(failure),
  };
}

/** The status file, kept by a receiver: now, at every `write()` (a cycle event) and every second, until `stop()`. */
export interface StatusFileKeeper {
  write(): void;
  stop(): void;
}

export function keepReceiveStatus(
  dir: string,
  server: ReceiveServer,
  listening: string,
  log: (line: string) => void,
): StatusFileKeeper {
  let warned = false;
  const write = (): void => {
    try {
      writeReceiveStatus(dir, receiveStatusOf(server, listening));
    } catch (error) {
      // Informative only: a status that cannot be written never stops the receiver.
      if (!warned) log(`receive: cannot write ${receiveStatusPath(dir)}: ${(error as Error).message}`);
      warned = true;
    }
  };
  const timer = setInterval(write, 1000);
  timer.unref();
  write();
  return {
    write,
    stop: () => {
      clearInterval(timer);
      removeReceiveStatus(dir);
    },
  };
}
