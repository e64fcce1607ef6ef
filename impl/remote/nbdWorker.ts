// The worker side of the remote replica's link (impl/remote/workerLink.ts): one NBD
// client (impl/nbd/client/) kept between calls, so that a connection outlives a call.
// A failed request ends the connection: nothing after a fault is trusted, and the
// replica reconnects and resends its whole batch.

import { NbdClient, type NbdClientOptions } from '../nbd/client/nbdClient.ts';
import { parseNbdUrl } from '../nbd/client/nbdUrl.ts';
import type { BridgeHandlers } from './bridgeWorker.ts';
import type { RemoteExportInfo, RemoteWrite } from './remoteLink.ts';

let client: NbdClient | null = null;

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

export const handlers = {
  connect: async (args: { url: string; options: NbdClientOptions }): Promise<RemoteExportInfo> => {
    dropClient();
    client = await NbdClient.connect(parseNbdUrl(args.url), args.options);
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
    withClient(async (c) => {
      // Every write issued at once, in order (the client keeps inFlightMax on the wire);
      // allSettled: the connection ends only once no request of the batch is left.
      const results = await Promise.allSettled(args.writes.map((write) => c.write(write.offset, write.bytes)));
      const failed = results.find((result) => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    }),
  writeZeroes: (args: { offset: number; length: number }) => withClient((c) => c.writeZeroes(args.offset, args.length)),
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
