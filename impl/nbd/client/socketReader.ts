// Exact-length reads from a socket for the handshake, where the client waits for each
// message in turn. The transmission phase parses replies as they arrive instead
// (replyReader.ts); `detach` hands it the bytes received so far.

import type { Socket } from 'node:net';
import { assert } from '../../assert.ts';
import { ByteQueue } from '../byteQueue.ts';
import { NbdLinkError } from './nbdErrors.ts';

export class SocketReader {
  private readonly queue = new ByteQueue();
  private wanted = 0;
  private waiter: { resolve: (bytes: Buffer) => void; reject: (error: Error) => void } | null = null;
  private failure: Error | null = null;
  /** The server ended the connection (rather than an error or a timeout failing it). */
  closedByPeer = false;
  private readonly onData = (chunk: Buffer): void => {
    this.queue.push(chunk);
    this.settle();
  };
  private readonly onEnd = (): void => {
    if (this.failure === null) this.closedByPeer = true;
    this.fail(new NbdLinkError('the server closed the connection'));
  };
  private readonly onError = (error: Error): void =>
    this.fail(new NbdLinkError(`connection error: ${error.message}`, { cause: error }));

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** The next `count` bytes; rejects with NbdLinkError when the connection ends or fails first. */
  read(count: number): Promise<Buffer> {
    assert(this.waiter === null, 'SocketReader.read while a read is waiting');
    return new Promise((resolve, reject) => {
      this.wanted = count;
      this.waiter = { resolve, reject };
      this.settle();
    });
  }

  /** Fails the waiting read (and every later one) with `error`: a timeout, a protocol violation. */
  fail(error: Error): void {
    this.failure ??= error;
    this.settle();
  }

  /** Stops listening; returns the bytes received and not read. */
  detach(): ByteQueue {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    return this.queue;
  }

  private settle(): void {
    const waiter = this.waiter;
    if (waiter === null) return;
    if (this.queue.length >= this.wanted) {
      this.waiter = null;
      waiter.resolve(this.queue.take(this.wanted));
    } else if (this.failure !== null) {
      this.waiter = null;
      waiter.reject(this.failure);
    }
  }
}
