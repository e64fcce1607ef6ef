// The client's requests (docs/adapter.md): one line out with a fresh id, one
// answer line back within the timeout, each in the transcript. What comes
// instead of an answer (nothing in time, an exit, a line answering nothing) is a
// protocol failure, but for an exit inside a failpoint, which is the crash the
// caller asked for.

import type { SutOp } from '../sut/systemUnderTest.ts';
import type { AdapterProcess } from './adapterProcess.ts';
import type { Transcript } from './adapterSutOptions.ts';
import { type Answer, parseAnswer } from './answers.ts';
import { encodeBase64 } from './lines.ts';
import type { JsonObject } from './protocol.ts';

/** How an exit without an answer is read: at start (before hello's answer), inside a failpoint, or neither. */
export interface RequestMode {
  readonly starting?: boolean;
  readonly crashing?: boolean;
}

export interface RequestSettings {
  readonly requestTimeoutMs: number;
  readonly exitTimeoutMs: number;
  readonly transcript: Transcript | undefined;
  /** Whether answers must carry io (the implementation offers failpoint). */
  readonly ioRequired: () => boolean;
  /** Ends `process` and reports what it did wrong; never returns. */
  readonly fail: (message: string, process: AdapterProcess) => never;
}

/** The fields of `op`'s request (docs/adapter.md), its id and op name aside. */
export function opFields(op: SutOp): JsonObject {
  switch (op.type) {
    case 'write':
      return { region: op.region, data: encodeBase64(op.data) };
    case 'read':
      return { region: op.region, volume: op.volume };
    case 'transfer':
      return { region: op.region };
    case 'startCycle':
    case 'completeCycle':
      return {};
  }
}

export class Requests {
  private nextId = 1;
  /** The exit of the last process that ended, for diagnostics (a failpoint exit, for one). */
  lastExit: string | null = null;

  constructor(private readonly settings: RequestSettings) {}

  note(direction: 'request' | 'response' | 'note', line: string): void {
    this.settings.transcript?.(direction, line);
  }

  /** Records how `process` ended. */
  ended(process: AdapterProcess): void {
    this.lastExit = process.describeExit();
  }

  /**
   * One request and its answer on `process`. Null only in crashing mode, when
   * the process exited without answering (its whole group gone by then).
   */
  async exchange(process: AdapterProcess, op: string, fields: JsonObject, mode: RequestMode): Promise<Answer | null> {
    const fail = (message: string): never => this.settings.fail(message, process);
    if (process.violation !== null) fail(process.violation);
    if (process.closed) fail(`${process.describeExit()} between requests, before request ${op}`);
    const id = this.nextId++;
    const what = `request ${id} (${op})`;
    const line = JSON.stringify({ id, op, ...fields });
    this.note('request', line);
    process.send(`${line}\n`);
    const next = await process.nextLine(this.settings.requestTimeoutMs);
    switch (next.kind) {
      case 'line':
        this.note('response', next.bytes.toString('utf8'));
        return parseAnswer(next.bytes, id, op, this.settings.ioRequired(), fail);
      case 'violation':
        this.note('note', next.message);
        return fail(`${next.message} (while waiting for the answer to ${what})`);
      case 'timeout':
        this.note('note', `no answer within ${this.settings.requestTimeoutMs} ms`);
        return fail(`no answer to ${what} within ${this.settings.requestTimeoutMs} ms`);
      case 'closed':
        this.note('note', `pid ${process.pid} ${process.describeExit()}`);
        return this.exited(process, what, mode);
    }
  }

  /** The process exited instead of answering: the crash asked for, or a failure. */
  private async exited(process: AdapterProcess, what: string, mode: RequestMode): Promise<null> {
    this.ended(process);
    if (mode.crashing !== true) {
      const when =
        mode.starting === true ? 'at start, before answering hello' : `without answering ${what}, outside a failpoint`;
      return this.settings.fail(`${process.describeExit()} ${when}`, process);
    }
    process.killGroup();
    await process.waitGroupGone(this.settings.exitTimeoutMs);
    return null;
  }
}
