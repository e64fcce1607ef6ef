// Asynchronous work, waited for synchronously. The volume, its crash layer and the
// adapter are synchronous (Storage is), while a socket is not: the remote replica
// runs its NBD client in a worker thread and blocks on its answers here.
//
// The worker (impl/remote/bridgeWorker.ts, loaded through impl/remote/bridgeEntry.js,
// which registers tsx as bin/cowmap.js does) imports a handler module and keeps it
// loaded between calls, so that a connection outlives a call. A call posts a request on
// a MessageChannel; the worker answers on the same channel and then bumps a counter in
// a SharedArrayBuffer and notifies it. The caller sleeps in Atomics.wait on that
// counter (never spinning) and takes the answer with receiveMessageOnPort: the event
// loop of the calling thread never runs while it waits.
//
// A worker that dies or hangs must be a fault, not a hang of the caller: the worker
// also bumps a heartbeat counter every heartbeatPeriodMs; a call fails with
// BridgeFault when its deadline passes or when the heartbeat stops for
// heartbeatLostMs. After a fault the bridge is broken (the worker is terminated: a
// late answer must never be taken for the next call's) and its owner starts another.

import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';

/** Slots of the shared Int32Array. */
export const bridgeSlots = { answers: 0, heartbeat: 1, ready: 2 } as const;
/** The values of the ready slot (bridgeEntry.js writes loadFailed as a literal 2: it loads no TypeScript). */
export const bridgeReady = { starting: 0, ready: 1, loadFailed: 2, exited: 3 } as const;
const slotCount = 3;
/** How often the worker bumps its heartbeat. */
export const heartbeatPeriodMs = 100;
/** Silence after which a worker counts as dead (a loaded machine stalls a thread for a while). */
const heartbeatLostMsDefault = 5_000;
/** How long the worker may take to load tsx and its handler module. */
const startTimeoutMs = 20_000;
/** The longest single Atomics.wait: the heartbeat is checked between waits. */
const waitSliceMs = 250;

/** What the worker answers: a result, or the error a handler threw (its name, message and own fields). */
export type BridgeAnswer =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string; fields: Record<string, unknown> } };

export interface BridgeRequest {
  id: number;
  op: string;
  args: unknown;
}

/** The worker died, hung, or never started: the bridge is broken; start another. */
export class BridgeFault extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BridgeFault';
  }
}

/** An error a handler threw in the worker, as it arrives: its name, message and own enumerable fields. */
export class RemoteError extends Error {
  readonly remoteName: string;
  readonly fields: Record<string, unknown>;

  constructor(name: string, message: string, fields: Record<string, unknown>) {
    super(message);
    this.name = 'RemoteError';
    this.remoteName = name;
    this.fields = fields;
  }
}

const entryUrl = new URL('./bridgeEntry.js', import.meta.url);

export class SyncBridge {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly signal: Int32Array;
  private nextId = 1;
  private readonly heartbeatLostMs: number;
  private broken: string | null = null;
  private exited = false;

  /**
   * Starts a worker that loads `handlerModule` (a module URL; the module exports
   * `handlers`: op name -> async function of its arguments). The worker is unref'd:
   * it never keeps the process alive. `heartbeatLostMs`: the silence after which the
   * worker counts as dead (tests make it short).
   */
  constructor(handlerModule: URL, options: { heartbeatLostMs?: number } = {}) {
    this.heartbeatLostMs = options.heartbeatLostMs ?? heartbeatLostMsDefault;
    const channel = new MessageChannel();
    this.signal = new Int32Array(new SharedArrayBuffer(slotCount * Int32Array.BYTES_PER_ELEMENT));
    this.port = channel.port1;
    this.worker = new Worker(entryUrl, {
      workerData: { handlerModule: handlerModule.href, port: channel.port2, signal: this.signal },
      transferList: [channel.port2],
      // The worker's own output is its business: a handler reports through its answers.
      stdout: false,
      stderr: false,
    });
    this.worker.unref();
    this.port.unref();
    // Seen only when the caller's event loop runs again; the heartbeat covers a death mid-call.
    this.worker.on('error', (error) => {
      this.broken ??= `the worker failed: ${error.message}`;
    });
    this.worker.on('exit', (code) => {
      this.exited = true;
      this.broken ??= `the worker exited with code ${code}`;
    });
  }

  /** True until a fault or close: calls may be made. */
  get usable(): boolean {
    return this.broken === null;
  }

  /**
   * Runs `op` in the worker and waits for its answer, at most `timeoutMs` (plus the
   * worker's start on a first call). A handler's error arrives as RemoteError;
   * a dead, hung or slow worker is BridgeFault, and breaks the bridge. The buffers in
   * `transfer` move to the worker (detached here): a structured clone of tens of MiB
   * through a MessagePort takes a second, a move nothing.
   */
  call(op: string, args: unknown, timeoutMs: number, transfer: readonly ArrayBuffer[] = []): unknown {
    if (this.broken !== null) throw new BridgeFault(`${op}: ${this.broken}`);
    const id = this.nextId++;
    this.port.postMessage({ id, op, args } satisfies BridgeRequest, [...transfer]);
    const answer = this.waitFor(id, op, timeoutMs);
    if (answer.ok) return answer.result;
    throw new RemoteError(answer.error.name, answer.error.message, answer.error.fields);
  }

  /** Terminates the worker (a connection it held ends with it). Idempotent. */
  close(): void {
    this.broken ??= 'the bridge is closed';
    this.port.close();
    if (!this.exited) void this.worker.terminate();
  }

  private waitFor(id: number, op: string, timeoutMs: number): BridgeAnswer {
    const started = Date.now();
    let heartbeat = Atomics.load(this.signal, bridgeSlots.heartbeat);
    let heartbeatAt = started;
    for (;;) {
      const seen = Atomics.load(this.signal, bridgeSlots.answers);
      const message = receiveMessageOnPort(this.port);
      if (message !== undefined) {
        const answer = message.message as BridgeAnswer;
        if (answer.id === id) return answer;
        if (answer.id === 0 && !answer.ok) this.fail(`${op}: the worker could not load: ${answer.error.message}`);
        continue; // An answer to an earlier call that timed out is never taken (the bridge broke then).
      }
      const now = Date.now();
      const readyState = Atomics.load(this.signal, bridgeSlots.ready);
      if (readyState === bridgeReady.exited) this.fail(`${op}: the worker exited`);
      const ready = readyState === bridgeReady.ready;
      const deadline = started + timeoutMs + (ready ? 0 : startTimeoutMs);
      const beat = Atomics.load(this.signal, bridgeSlots.heartbeat);
      if (beat !== heartbeat) {
        heartbeat = beat;
        heartbeatAt = now;
      }
      const silence = ready ? this.heartbeatLostMs : startTimeoutMs;
      if (now >= deadline) this.fail(`${op}: no answer from the worker within ${timeoutMs} ms`);
      if (now - heartbeatAt >= silence)
        this.fail(`${op}: the worker stopped (no heartbeat for ${now - heartbeatAt} ms)`);
      Atomics.wait(this.signal, bridgeSlots.answers, seen, Math.min(waitSliceMs, deadline - now));
    }
  }

  private fail(message: string): never {
    this.broken ??= message;
    this.close();
    throw new BridgeFault(message);
  }
}
