// The serve status file, DIR/serve.status: what `cowmap serve` is doing, for
// `cowmap status DIR` to show while the server holds the volume's lock (status
// cannot open the volume then: E_LOCKED). JSON, rewritten whole through a
// temporary file and a rename, so a reader sees one version or the next, never a
// mix. It is never synced: it is informative only (a power loss may leave it old,
// empty or missing, and that reads as no status), and the volume's durability
// never depends on it. The server writes it at each cycle event and at least
// every second, and removes it when it stops.

import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LinkStatus } from '../remote/linkStatus.ts';
import type { CycleRetryStatus } from './cycles.ts';

/** The file's name in the volume directory, and the temporary name a rewrite goes through. */
export const serveStatusFileName = 'serve.status';
export const serveStatusTemporaryFileName = 'serve.status.tmp';

export interface ServeStatus {
  /** The server's process id: a file whose pid is dead is stale (the server was killed). */
  pid: number;
  /** When the server wrote this version (ISO 8601). */
  updatedAt: string;
  /** Where it listens: `host:port` or a socket path. */
  listening: string;
  connections: number;
  /** Request payload and reply bytes held in memory (counted against bufferBytesMax). */
  bufferedBytes: number;
  /** The volume's cycle number and phase. */
  cycle: number;
  phase: 'idle' | 'replicating';
  /** The server's cycle runner has a cycle open: sending, or paused after a link fault (see `retry`). */
  cycleRunning: boolean;
  /** Current regions not yet sent in the running cycle (0 when idle). */
  regionsLeft: number;
  /** Regions written since the last swap: what the next cycle will send. */
  nextRegions: number;
  /** Cycles completed since the server started. */
  cyclesCompleted: number;
  lastCompletedCycle: number | null;
  /** The swap time of the last completed cycle: the secondary's point in time (ISO 8601). */
  lastCompletedSwapAt: string | null;
  lastCycleSeconds: number | null;
  /** The last cycle failure's message, null when the last cycle did not fail. */
  failure: string | null;
  /** The link to a remote secondary as its replica reports it; null for a directory secondary. */
  link: LinkStatus | null;
  /** The cycle's pauses after link faults and their retries (cycles.ts, linkRetry.ts). */
  retry: CycleRetryStatus;
}

export function serveStatusPath(dir: string): string {
  return join(dir, serveStatusFileName);
}

/** Replaces DIR/serve.status with `status` (temporary file, then rename; no sync, see the top of this file). */
export function writeServeStatus(dir: string, status: ServeStatus): void {
  const temporaryPath = join(dir, serveStatusTemporaryFileName);
  writeFileSync(temporaryPath, `${JSON.stringify(status, null, 2)}\n`);
  renameSync(temporaryPath, serveStatusPath(dir));
}

/** Removes the status file and its temporary (a server stopping); missing files are fine. */
export function removeServeStatus(dir: string): void {
  rmSync(serveStatusPath(dir), { force: true });
  rmSync(join(dir, serveStatusTemporaryFileName), { force: true });
}

type FieldKind = 'number' | 'string' | 'boolean' | 'number|null' | 'string|null' | 'object' | 'object|null';

const fieldKinds: Readonly<Record<keyof ServeStatus, FieldKind>> = {
  pid: 'number',
  updatedAt: 'string',
  listening: 'string',
  connections: 'number',
  bufferedBytes: 'number',
  cycle: 'number',
  phase: 'string',
  cycleRunning: 'boolean',
  regionsLeft: 'number',
  nextRegions: 'number',
  cyclesCompleted: 'number',
  lastCompletedCycle: 'number|null',
  lastCompletedSwapAt: 'string|null',
  lastCycleSeconds: 'number|null',
  failure: 'string|null',
  link: 'object|null',
  retry: 'object',
};

const linkKinds: Readonly<Record<keyof LinkStatus, FieldKind>> = {
  url: 'string',
  state: 'string',
  lastError: 'string|null',
  lastErrorAtMs: 'number|null',
  failedAttempts: 'number',
  far: 'object|null',
};

const farKinds: Readonly<Record<keyof NonNullable<LinkStatus['far']>, FieldKind>> = {
  completedCycle: 'number',
  swapTimeMs: 'number',
};

const retryKinds: Readonly<Record<keyof CycleRetryStatus, FieldKind>> = {
  paused: 'boolean',
  failedAttempts: 'number',
  lastError: 'string|null',
  lastErrorAtMs: 'number|null',
  downSinceMs: 'number|null',
  nextRetryAtMs: 'number|null',
  faultsTotal: 'number',
  resends: 'number',
  regionsResent: 'number',
};

function hasKind(value: unknown, kind: FieldKind): boolean {
  if (value === null) return kind.endsWith('|null');
  if (Array.isArray(value)) return false;
  return typeof value === kind.replace('|null', '');
}

/** Every field of `kinds` is in `value` with its kind (null is no record). */
function hasFields(value: unknown, kinds: Readonly<Record<string, FieldKind>>): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const record = value as Record<string, unknown>;
  return Object.entries(kinds).every(([field, kind]) => hasKind(record[field], kind));
}

function isLinkStatus(value: unknown): boolean {
  if (!hasFields(value, linkKinds)) return false;
  if (value.state !== 'up' && value.state !== 'down' && value.state !== 'idle') return false;
  return value.far === null || hasFields(value.far, farKinds);
}

/** `parsed` as a ServeStatus, or null when a field is missing or of another type. */
function asServeStatus(parsed: unknown): ServeStatus | null {
  if (!hasFields(parsed, fieldKinds)) return null;
  const record = parsed;
  if (record.link !== null && !isLinkStatus(record.link)) return null;
  if (!hasFields(record.retry, retryKinds)) return null;
  if (record.phase !== 'idle' && record.phase !== 'replicating') return null;
  if (!Number.isSafeInteger(record.pid) || (record.pid as number) <= 0) return null;
  return parsed as unknown as ServeStatus;
}

/**
 * DIR/serve.status, or null when there is none or it is not a status (empty or cut
 * short by a power loss, or written by something else): the file is informative,
 * so a bad one is no status rather than an error.
 */
export function readServeStatus(dir: string): ServeStatus | null {
  let text: string;
  try {
    text = readFileSync(serveStatusPath(dir), 'utf8');
  } catch {
    return null;
  }
  try {
    return asServeStatus(JSON.parse(text));
  } catch {
    return null;
  }
}

/**
 * The age in seconds of the secondary's point in time (`now` minus the last
 * completed cycle's swap), or null when no cycle completed since the server started.
 */
export function lagSeconds(status: ServeStatus, now: Date): number | null {
  if (status.lastCompletedSwapAt === null) return null;
  const swapMs = Date.parse(status.lastCompletedSwapAt);
  if (Number.isNaN(swapMs)) return null;
  return Math.max(0, (now.getTime() - swapMs) / 1000);
}

/** The process `pid` exists (EPERM: it exists but is another user's). A dead pid makes the file stale. */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
