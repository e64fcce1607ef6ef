// The real RemoteLink: the NBD client (impl/nbd/client/) in a worker thread
// (impl/remote/nbdWorker.ts), waited for synchronously through a SyncBridge. Faults
// arrive as LinkFault: `reply` for an NBD error reply, `link` for the rest (refused,
// dropped, timed out, a worker that died or hung; a broken bridge is replaced at the
// next connect).

import { ReplicaLinkError } from '../errors.ts';
import type { LinkOptions } from './linkOptions.ts';
import { LinkFault, type RemoteExportInfo, type RemoteLink, type RemoteWrite } from './remoteLink.ts';
import { BridgeFault, RemoteError, SyncBridge } from './syncBridge.ts';

const handlerModule = new URL('./nbdWorker.ts', import.meta.url);
/** Added to the connect's own bound: a worker's answer after its client gave up must still arrive. */
const bridgeSlackMs = 2_000;
/** How long a clean disconnect (NBD_CMD_DISC, then the end of the socket) may take. */
const disconnectBoundMs = 2_000;

export class WorkerLink implements RemoteLink {
  private bridge: SyncBridge | null;
  private isConnected = false;

  /** Starts the worker now (it loads in the background, about a second): the first connect finds it ready. */
  constructor(
    private readonly url: string,
    private readonly options: LinkOptions,
  ) {
    this.bridge = new SyncBridge(handlerModule);
  }

  get connected(): boolean {
    return this.isConnected;
  }

  connect(): RemoteExportInfo {
    if (this.bridge?.usable !== true) {
      this.bridge?.close();
      this.bridge = new SyncBridge(handlerModule);
    }
    this.isConnected = false;
    const { connectTimeoutMs, requestTimeoutMs, inFlightMax, issuedMax } = this.options;
    const options = { connectTimeoutMs, requestTimeoutMs, inFlightMax };
    const info = this.call('connect', { url: this.url, options, issuedMax });
    this.isConnected = true;
    return info as RemoteExportInfo;
  }

  read(offset: number, length: number): Uint8Array {
    return this.call('read', { offset, length }) as Uint8Array;
  }

  /** The writes' buffers move to the worker when they own them whole (RemoteLink.writeBatch takes the bytes). */
  writeBatch(writes: readonly RemoteWrite[]): void {
    const transfer = new Set<ArrayBuffer>();
    for (const { bytes } of writes) {
      if (bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength)
        transfer.add(bytes.buffer);
    }
    this.call('writeBatch', { writes }, [...transfer]);
  }

  writeZeroes(offset: number, length: number): void {
    this.call('writeZeroes', { offset, length });
  }

  flush(): void {
    this.call('flush', {});
  }

  disconnect(): void {
    if (!this.isConnected || this.bridge?.usable !== true) return;
    this.isConnected = false;
    try {
      // DISC has no reply: a close that takes longer than this is a server not reading, not worth waiting for.
      this.bridge.call('disconnect', {}, disconnectBoundMs);
    } catch {
      // Quiet by contract: the connection is gone either way.
    }
  }

  close(): void {
    this.disconnect();
    this.bridge?.close();
    this.bridge = null;
  }

  /**
   * A call waited for until the worker answers. The connect is bounded by its own
   * timeout; a request call is not bounded here (a bound counting requests failed any
   * batch on a link slower than it assumed): the client fails a request that gets no
   * reply within requestTimeoutMs of leaving, or that cannot leave while the link takes
   * nothing for as long, and the bridge's heartbeat finds a worker that died or hung.
   */
  private call(op: string, args: unknown, transfer: readonly ArrayBuffer[] = []): unknown {
    const boundMs = op === 'connect' ? this.options.connectTimeoutMs + bridgeSlackMs : Number.POSITIVE_INFINITY;
    const bridge = this.bridge;
    if (bridge === null || (!this.isConnected && op !== 'connect')) throw new LinkFault('link', `${op}: not connected`);
    try {
      return bridge.call(op, args, boundMs, transfer);
    } catch (error) {
      this.isConnected = false;
      throw linkFaultOf(op, error);
    }
  }
}

/**
 * The worker's failure as the replica sees it: LinkFault (retried) for the link's
 * faults and NBD error replies; ReplicaLinkError E_IO (not retried, the volume stays
 * usable) for what another attempt would meet again: the server refused the export
 * in the handshake, or the worker refused the call (a CowmapError: bad input).
 */
function linkFaultOf(op: string, error: unknown): unknown {
  if (error instanceof BridgeFault) return new LinkFault('link', `${op}: ${error.message}`, { cause: error });
  if (!(error instanceof RemoteError)) return error;
  if (error.remoteName === 'NbdHandshakeError' || error.remoteName === 'CowmapError') {
    const code = typeof error.fields.code === 'string' ? `${error.fields.code}: ` : '';
    return new ReplicaLinkError('E_IO', `${op}: ${code}${error.message} (not retried)`, { cause: error });
  }
  if (error.remoteName === 'NbdReplyError') {
    const command = String(error.fields.command ?? op);
    return new LinkFault('reply', `${command}: ${String(error.fields.errnoName ?? 'error')} reply`, { cause: error });
  }
  return new LinkFault('link', `${op}: ${error.message}`, { cause: error });
}

export function workerLinkFactory(url: string, options: LinkOptions): RemoteLink {
  return new WorkerLink(url, options);
}
