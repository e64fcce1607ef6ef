// The worker side of the remote replica's link (impl/remote/workerLink.ts): one NBD
// client (impl/nbd/client/) kept between calls, so that a connection outlives a call.
// A failed request ends the connection: nothing after a fault is trusted, and the
// replica reconnects and resends its whole batch.

import { NbdClient, type NbdClientOptions } from '../nbd/client/nbdClient.ts';
import { parseNbdUrl } from '../nbd/client/nbdUrl.ts';
import { queuedRequestsMaxDefault } from '../nbd/client/transmission.ts';
import type { BridgeHandlers } from './bridgeWorker.ts';
import type { RemoteExportInfo, RemoteWrite } from './remoteLink.ts';

let client: NbdClient | null = null;
/** Requests one call keeps issued at most: far below the client's queue bound (queuedRequestsMaxDefault). */
const issuedMaxDefault = 4096;
let issuedMax = issuedMaxDefault;

function dropClient(): void {
  client?.destroy();
  client = null;
}

/** Runs `work` on the connected client; any failure ends the connection. */
async function withClient<T>(work: (connected: NbdClient) => Promise<T>): Promise<T> {
  if (client === null) throw new Error('not connected');
  try {
    return await work(client);
  } catch (error) {
    dropClient();
    throw error;
  }
}

/**
 * Issues `issue(item)` for every item in order, at most issuedMax unanswered at once (a
 * request answered lets the next one go), and returns once none is left on the wire;
 * after a failure nothing more is issued and the first failure is thrown: the
 * connection ends only once no request of the call is left.
 */
async function inWindows<T>(items: readonly T[], issue: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const lane = async (): Promise<void> => {
    while (next < items.length && failure === null) {
      const item = items[next++] as T;
      try {
        await issue(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(issuedMax, items.length) }, lane));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/** [offset, length) in pieces of at most pieceMax bytes. */
function piecesOf(offset: number, length: number, pieceMax: number): [number, number][] {
  const pieces: [number, number][] = [];
  for (let at = offset; at < offset + length; at += pieceMax)
    pieces.push([at, Math.min(pieceMax, offset + length - at)]);
  return pieces;
}

export const handlers = {
  connect: async (args: { url: string; options: NbdClientOptions; issuedMax?: number }): Promise<RemoteExportInfo> => {
    dropClient();
    issuedMax = Math.min(args.issuedMax ?? issuedMaxDefault, queuedRequestsMaxDefault);
    // The client's queue holds every request of a window: the bound is never met.
    client = await NbdClient.connect(parseNbdUrl(args.url), { ...args.options, queuedRequestsMax: issuedMax });
    return {
      exportSize: client.exportSize,
      readOnly: client.readOnly,
      canFlush: client.canFlush,
      payloadMax: client.payloadMax,
      blockSizeMin: client.blockSizeMin,
    };
  },
  read: (args: { offset: number; length: number }) => withClient((c) => c.read(args.offset, args.length)),
  writeBatch: (args: { writes: RemoteWrite[] }) =>
    // Each write is one request (the replica splits runs to payloadMax).
    withClient((c) => inWindows(args.writes, (write) => c.write(write.offset, write.bytes))),
  // In pieces of one request each, so that the claim of any volume size goes in windows.
  writeZeroes: (args: { offset: number; length: number }) =>
    withClient((c) => inWindows(piecesOf(args.offset, args.length, c.payloadMax), ([at, n]) => c.writeZeroes(at, n))),
  // The link refuses at connect an export without FLUSH for a writing open (linkSession.ts).
  flush: () => withClient((c) => c.flush()),
  disconnect: async () => {
    const connected = client;
    client = null;
    if (connected === null) return;
    try {
      await connected.close();
    } catch {
      connected.destroy();
    }
  },
} satisfies BridgeHandlers;
