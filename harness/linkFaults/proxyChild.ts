// The fault proxy in a process of its own (proxyProcess.ts starts it): a primary
// whose NBD secondary is reached through the proxy blocks its thread while the
// replica's worker talks to the far side, so the proxy cannot share that thread.
// One JSON request a line on stdin, one JSON answer a line on stdout:
//
//   {"op":"begin","far":FarSideSpec,"listen":ProxyListen}  the far side started, the proxy listening, no faults
//   {"op":"arm","schedule":FaultSchedule}                   the schedule applies from the next request on
//   {"op":"calm"}                                           no more faults
//   {"op":"counts"}                                         ProxyCounts, the far side's problem and last crash
//   {"op":"end"}                                            proxy and far side stopped (another begin may follow)
//
// COWMAP_LINKFAULTS_TRACE=FILE appends the proxy's events to FILE (connections and why
// they closed, each request and the faults it fired, the far side's restarts).
// Every answer is {"ok":true,...} or {"ok":false,"error":"..."}. Stdin's end stops
// everything and exits.

import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { FarSide, type FarSideSpec } from './farSide.ts';
import { FaultProxy, type ProxyListen } from './faultProxy.ts';
import type { FaultSchedule } from './schedule.ts';

type Request =
  | { op: 'begin'; far: FarSideSpec; listen: ProxyListen }
  | { op: 'arm'; schedule: FaultSchedule }
  | { op: 'calm' }
  | { op: 'counts' }
  | { op: 'end' };

let proxy: FaultProxy | null = null;

/** COWMAP_LINKFAULTS_TRACE=FILE: the proxy's events appended to FILE, one a line (for a replayed seed). */
const traceFile = process.env.COWMAP_LINKFAULTS_TRACE;
const trace = (line: string): void => {
  if (traceFile !== undefined) appendFileSync(traceFile, `${new Date().toISOString()} ${line}\n`);
};

function answer(body: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(body)}\n`);
}

function running(): FaultProxy {
  if (proxy === null) throw new Error('no proxy: begin first');
  return proxy;
}

async function handle(request: Request): Promise<Record<string, unknown>> {
  switch (request.op) {
    case 'begin': {
      if (proxy !== null) throw new Error('a proxy is running: end it first');
      trace(`begin ${request.far.socketPath}`);
      const started = new FaultProxy(new FarSide(request.far), request.listen, { seed: 0, faults: [] }, trace);
      await started.start();
      proxy = started;
      return {};
    }
    case 'arm':
      trace(`arm ${JSON.stringify(request.schedule)}`);
      running().arm(request.schedule);
      return {};
    case 'calm':
      running().calm();
      return {};
    case 'counts':
      return { counts: running().counts, farProblem: running().farProblem, farCrash: running().farCrash };
    case 'end': {
      const stopping = running();
      proxy = null;
      await stopping.stop();
      return {};
    }
  }
}

// Requests are handled one at a time, in order.
let queue: Promise<void> = Promise.resolve();
createInterface({ input: process.stdin })
  .on('line', (line) => {
    queue = queue.then(async () => {
      try {
        answer({ ok: true, ...(await handle(JSON.parse(line) as Request)) });
      } catch (error) {
        answer({ ok: false, error: error instanceof Error ? error.message : String(error) });
      }
    });
  })
  .on('close', () => {
    queue = queue.then(async () => {
      await proxy?.stop();
      process.exit(0);
    });
  });
