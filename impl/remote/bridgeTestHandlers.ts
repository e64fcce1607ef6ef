// Test support (impl/remote/syncBridge.test.ts): a handler module for a SyncBridge
// worker that keeps state between calls, fails on demand and dies or hangs on demand.

import type { BridgeHandlers } from './bridgeWorker.ts';

let count = 0;

class ReplyLikeError extends Error {
  readonly errno: number;

  constructor(message: string, errno: number) {
    super(message);
    this.name = 'ReplyLikeError';
    this.errno = errno;
  }
}

export const handlers = {
  count: async () => ++count,
  echo: async (args: { bytes: Uint8Array; delayMs: number }) => {
    await new Promise((resolve) => setTimeout(resolve, args.delayMs));
    return args.bytes.map((byte) => byte ^ 0xff);
  },
  fail: async (args: { errno: number }) => {
    throw new ReplyLikeError(`failed with ${args.errno}`, args.errno);
  },
  exit: async () => process.exit(3),
  hang: async () => {
    // Blocks the worker's thread: no answer and no heartbeat.
    const until = Date.now() + 60_000;
    while (Date.now() < until) {}
  },
} satisfies BridgeHandlers;
