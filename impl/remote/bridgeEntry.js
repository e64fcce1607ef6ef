// The entry of a SyncBridge worker (impl/remote/syncBridge.ts): a worker thread does not
// inherit bin/cowmap.js's loader, so it registers tsx itself (as bin/cowmap.js does), then
// loads the TypeScript side. Even under `node --import tsx` (the tests): Node 20 passes
// the flag to a worker's execArgv but does not run the import there. A failure to load
// is reported to the caller through the shared signal (ready = 2) and the channel (an
// answer with id 0), never as a hang.

import { workerData } from 'node:worker_threads';

try {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./bridgeWorker.ts');
} catch (error) {
  const message = String(error instanceof Error ? error.message : error).split('\n', 1)[0];
  workerData.port.postMessage({ id: 0, ok: false, error: { name: 'LoadError', message, fields: {} } });
  Atomics.store(workerData.signal, 2, 2);
  Atomics.add(workerData.signal, 0, 1);
  Atomics.notify(workerData.signal, 0);
}
