// `cowmap adapter` driven by raw lines, as harness/adapterServer.test.ts needs it:
// any bytes may be sent (malformed requests, blank lines, a last line without its
// newline), and every answer is read back as it came. Test-only: nothing outside
// *.test.ts imports this file.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LineSplitter } from './lines.ts';

const bin = fileURLToPath(new URL('../../bin/cowmap.js', import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: raw replies, whose fields each test checks one by one
export type Json = Record<string, any>;

/** The adapters started and not ended. */
const running = new Set<RawAdapter>();

/** Kills every adapter not ended yet: a failing test leaves its own, which would keep the test file from ending. */
export function killRunningAdapters(): void {
  for (const adapter of running) adapter.child.kill('SIGKILL');
}

/** One `cowmap adapter` process, driven by raw lines. */
export class RawAdapter {
  readonly child: ChildProcess;
  private readonly lines: Buffer[] = [];
  private wake: (() => void) | null = null;
  private closed = false;
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private nextId = 1;

  constructor(args: string[] = []) {
    this.child = spawn(process.execPath, [bin, 'adapter', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const splitter = new LineSplitter(1 << 26);
    this.child.stdout!.on('data', (chunk: Buffer) => {
      for (const event of splitter.push(chunk)) if (event.kind === 'line') this.lines.push(event.bytes);
      this.wake?.();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.child.stdin!.on('error', () => {});
    running.add(this);
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        running.delete(this);
        this.closed = true;
        this.wake?.();
        resolve({ code, signal });
      });
    });
  }

  send(line: string | Buffer): void {
    this.child.stdin!.write(typeof line === 'string' ? `${line}\n` : Buffer.concat([line, Buffer.from('\n')]));
  }

  /**
   * The next response line, parsed; null when the process ended without one. The
   * timeout only ends a hung test: it is long, because on a loaded machine a new
   * process's start-up and a recovery's syncs have taken over 20 s.
   */
  async next(timeoutMs = 60_000): Promise<Json | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.closed) return null;
      if (Date.now() > deadline) throw new Error(`no response within ${timeoutMs} ms; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return JSON.parse(this.lines.shift()!.toString('utf8')) as Json;
  }

  async request(op: string, fields: Json = {}): Promise<Json> {
    const id = this.nextId++;
    this.send(JSON.stringify({ id, op, ...fields }));
    const response = await this.next();
    assert.ok(response !== null, `the adapter ended without answering ${op}; stderr: ${this.stderr}`);
    assert.equal(response.id, id, JSON.stringify(response));
    return response;
  }

  /** Sends a request that must make the process exit without an answer; returns the exit. */
  async crashes(op: string, fields: Json = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.send(JSON.stringify({ id: this.nextId++, op, ...fields }));
    const response = await this.next();
    assert.equal(response, null, `expected an exit without an answer, got ${JSON.stringify(response)}`);
    return this.exited;
  }

  async end(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.stdin!.end();
    return this.exited;
  }
}

export async function ok(adapter: RawAdapter, op: string, fields: Json = {}): Promise<Json> {
  const response = await adapter.request(op, fields);
  assert.equal(response.ok, true, `${op}: ${JSON.stringify(response)}`);
  assert.ok(Number.isInteger(response.io) && response.io >= 0, `${op}: io ${response.io}`);
  return response;
}

export async function rejected(adapter: RawAdapter, code: string, op: string, fields: Json = {}): Promise<Json> {
  const response = await adapter.request(op, fields);
  assert.equal(
    response.ok,
    false,
    `${op} ${JSON.stringify(fields).slice(0, 80)}: expected ${code}, got ${JSON.stringify(response)}`,
  );
  assert.equal(response.error.code, code, `${op} ${JSON.stringify(fields).slice(0, 80)}: ${response.error.message}`);
  assert.equal(typeof response.error.message, 'string');
  assert.equal(response.io, 0, `a rejected ${op} makes no durable call`);
  return response;
}
