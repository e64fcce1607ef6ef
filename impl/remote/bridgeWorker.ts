// The worker side of a SyncBridge (impl/remote/syncBridge.ts): loads the handler module
// named in workerData, answers each request on the channel in the order the work
// finishes, and after each answer bumps the shared counter the caller waits on. A
// heartbeat tells the caller the worker is alive while a call takes long.

import { type MessagePort, workerData } from 'node:worker_threads';
import { type BridgeAnswer, type BridgeRequest, bridgeReady, bridgeSlots, heartbeatPeriodMs } from './syncBridge.ts';

/** What a handler module exports: each operation the caller may name. */
export type BridgeHandlers = Record<string, (args: never) => Promise<unknown>>;

const { handlerModule, port, signal } = workerData as { handlerModule: string; port: MessagePort; signal: Int32Array };

/** A result's bytes move to the caller instead of being copied, when they own their whole buffer (not a pool's slice). */
function transferOf(result: unknown): ArrayBuffer[] {
  if (!(result instanceof Uint8Array) || !(result.buffer instanceof ArrayBuffer)) return [];
  return result.byteOffset === 0 && result.byteLength === result.buffer.byteLength ? [result.buffer] : [];
}

function answer(message: BridgeAnswer): void {
  port.postMessage(message, message.ok ? transferOf(message.result) : []);
  Atomics.add(signal, bridgeSlots.answers, 1);
  Atomics.notify(signal, bridgeSlots.answers);
}

/** An error as plain data: its name, message and own enumerable fields that clone (errno, command, ...). */
function errorData(error: unknown): { name: string; message: string; fields: Record<string, unknown> } {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    if (['string', 'number', 'boolean'].includes(typeof value)) fields[key] = value;
  }
  return { name: error.name, message: error.message, fields };
}

const { handlers } = (await import(handlerModule)) as { handlers: BridgeHandlers };

port.on('message', (request: BridgeRequest) => {
  const handler = handlers[request.op];
  const work =
    handler === undefined
      ? Promise.reject(new Error(`unknown operation ${request.op}`))
      : Promise.resolve().then(() => handler(request.args as never));
  work.then(
    (result) => answer({ id: request.id, ok: true, result }),
    (error: unknown) => answer({ id: request.id, ok: false, error: errorData(error) }),
  );
});

// A worker that ends (process.exit, an uncaught error) says so at once; one that hangs or
// is killed stops its heartbeat instead.
process.on('exit', () => {
  Atomics.store(signal, bridgeSlots.ready, bridgeReady.exited);
  Atomics.add(signal, bridgeSlots.answers, 1);
  Atomics.notify(signal, bridgeSlots.answers);
});
setInterval(() => Atomics.add(signal, bridgeSlots.heartbeat, 1), heartbeatPeriodMs);
Atomics.store(signal, bridgeSlots.ready, bridgeReady.ready);
Atomics.add(signal, bridgeSlots.heartbeat, 1);
