// The parent's side of proxyChild.ts: starts the fault proxy's process in a group
// of its own, sends it requests one at a time and reads their answers, and ends
// its group at close (the far side it runs has a group of its own, which the
// child ends as it exits).

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { FarSideSpec } from './farSide.ts';
import type { ProxyCounts, ProxyListen } from './faultProxy.ts';
import type { FaultSchedule } from './schedule.ts';

const childScript = join(import.meta.dirname, 'proxyChild.ts');
const answerTimeoutMs = 60_000;

export class ProxyProcess {
  private readonly waiters: ((line: string) => void)[] = [];
  private readonly exited: Promise<void>;
  private stderrText = '';

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => this.waiters.shift()?.(line));
    child.stderr!.on('data', (chunk: Buffer) => {
      if (this.stderrText.length < 4000) this.stderrText += chunk.toString('utf8');
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static start(): ProxyProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', childScript], {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new ProxyProcess(child);
  }

  private async call(request: Record<string, unknown>): Promise<Record<string, unknown>> {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`fault proxy: no answer to ${request.op}: ${this.stderrText.trim()}`)),
        answerTimeoutMs,
      );
      this.waiters.push((text) => {
        clearTimeout(timer);
        resolve(text);
      });
      this.child.stdin!.write(`${JSON.stringify(request)}\n`);
    });
    const body = JSON.parse(line) as { ok: boolean; error?: string } & Record<string, unknown>;
    if (!body.ok) throw new Error(`fault proxy ${request.op}: ${body.error}`);
    return body;
  }

  begin(far: FarSideSpec, listen: ProxyListen): Promise<unknown> {
    return this.call({ op: 'begin', far, listen });
  }

  arm(schedule: FaultSchedule): Promise<unknown> {
    return this.call({ op: 'arm', schedule });
  }

  calm(): Promise<unknown> {
    return this.call({ op: 'calm' });
  }

  async counts(): Promise<{ counts: ProxyCounts; farProblem: string | null; farCrash: string | null }> {
    const body = await this.call({ op: 'counts' });
    return {
      counts: body.counts as ProxyCounts,
      farProblem: (body.farProblem as string | null) ?? null,
      farCrash: (body.farCrash as string | null) ?? null,
    };
  }

  end(): Promise<unknown> {
    return this.call({ op: 'end' });
  }

  /** Ends the child (stdin's end; its group killed if it does not exit in time). */
  async close(): Promise<void> {
    this.child.stdin!.end();
    const timer = setTimeout(() => this.killGroup(), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  killGroup(): void {
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}
