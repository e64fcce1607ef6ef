// The NBD export (impl/nbd/server.ts): the protocol with a raw client, then end to
// end with real clients (qemu-io, mke2fs + nbdcopy, e2fsck, nbdkit, nbdfuse) where
// they are installed; a test whose tool is missing is skipped and says which.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import * as nbd from './protocol.ts';
import { NbdServer, type CycleReport } from './server.ts';
import { atLevel } from '../../harness/testLevel.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-nbd-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
function freshDir(): string {
  return join(root, `v${dirs++}`);
}

function createVolume(regions: number, regionSize: number): ReplicatedVolume {
  return ReplicatedVolume.create(new NodeStorage(), freshDir(), { regions, regionSize });
}

function which(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** undefined when every tool is there, else the reason to skip. */
function missing(...tools: string[]): string | undefined {
  const absent = tools.filter((tool) => !which(tool));
  if (absent.length === 0) return undefined;
  const reason = `not installed: ${absent.join(', ')} (apt-get install nbdkit libnbd-bin qemu-utils e2fsprogs)`;
  process.stderr.write(`# skipped an NBD end-to-end test: ${reason}\n`);
  return reason;
}

/** Runs a command without blocking the event loop (an in-process server must keep serving). */
function run(
  cmd: string,
  args: string[],
  options: { allowFail?: boolean } = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => {
      const result = { status: status ?? -1, stdout, stderr };
      if (status !== 0 && options.allowFail !== true)
        reject(new Error(`${cmd} ${args.join(' ')} exited ${status}\n${stdout}\n${stderr}`));
      else resolve(result);
    });
  });
}

// ----------------------------------------------------------------- a raw client

class RawClient {
  readonly socket: Socket;
  private buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  closed = false;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  async read(count: number): Promise<Buffer> {
    while (this.buffer.length < count) {
      if (this.closed) throw new Error(`connection closed with ${this.buffer.length} of ${count} bytes`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = null;
    }
    const bytes = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count);
    return bytes;
  }

  async waitClosed(): Promise<void> {
    while (!this.closed) {
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = null;
    }
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  async greeting(clientFlags = nbd.FLAG_C_FIXED_NEWSTYLE | nbd.FLAG_C_NO_ZEROES): Promise<void> {
    const greeting = await this.read(18);
    assert.equal(greeting.readBigUInt64BE(0), nbd.NBDMAGIC);
    assert.equal(greeting.readBigUInt64BE(8), nbd.IHAVEOPT);
    assert.equal(greeting.readUInt16BE(16), nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES);
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(clientFlags);
    this.write(flags);
  }

  option(option: number, data: Buffer = Buffer.alloc(0)): void {
    const header = Buffer.alloc(16);
    header.writeBigUInt64BE(nbd.IHAVEOPT, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(data.length, 12);
    this.write(Buffer.concat([header, data]));
  }

  async optionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const header = await this.read(20);
    assert.equal(header.readBigUInt64BE(0), nbd.OPTION_REPLY_MAGIC);
    const data = Buffer.from(await this.read(header.readUInt32BE(16)));
    return { option: header.readUInt32BE(8), type: header.readUInt32BE(12), data };
  }

  goData(name: string, infos: number[] = []): Buffer {
    const nameBytes = Buffer.from(name);
    const data = Buffer.alloc(4 + nameBytes.length + 2 + 2 * infos.length);
    data.writeUInt32BE(nameBytes.length, 0);
    nameBytes.copy(data, 4);
    data.writeUInt16BE(infos.length, 4 + nameBytes.length);
    infos.forEach((info, index) => {
      data.writeUInt16BE(info, 4 + nameBytes.length + 2 + 2 * index);
    });
    return data;
  }

  /** Handshake to transmission with NBD_OPT_GO; returns the export size. */
  async go(): Promise<bigint> {
    await this.greeting();
    this.option(nbd.OPT_GO, this.goData(''));
    const info = await this.optionReply();
    assert.equal(info.type, nbd.REP_INFO);
    assert.equal(info.data.readUInt16BE(0), nbd.INFO_EXPORT);
    const ack = await this.optionReply();
    assert.equal(ack.type, nbd.REP_ACK);
    return info.data.readBigUInt64BE(2);
  }

  request(
    type: number,
    offset: number,
    length: number,
    payload?: Buffer,
    cookie = 7n,
    flags = 0,
    magic = nbd.REQUEST_MAGIC,
  ): void {
    const header = Buffer.alloc(28);
    header.writeUInt32BE(magic, 0);
    header.writeUInt16BE(flags, 4);
    header.writeUInt16BE(type, 6);
    header.writeBigUInt64BE(cookie, 8);
    header.writeBigUInt64BE(BigInt(offset), 16);
    header.writeUInt32BE(length, 24);
    this.write(payload === undefined ? header : Buffer.concat([header, payload]));
  }

  async reply(dataLength = 0): Promise<{ error: number; cookie: bigint; data: Buffer }> {
    const header = await this.read(16);
    assert.equal(header.readUInt32BE(0), nbd.SIMPLE_REPLY_MAGIC);
    const error = header.readUInt32BE(4);
    const data = error === 0 && dataLength > 0 ? Buffer.from(await this.read(dataLength)) : Buffer.alloc(0);
    return { error, cookie: header.readBigUInt64BE(8), data };
  }
}

async function withServer(
  body: (server: NbdServer, port: number, volume: ReplicatedVolume, lines: string[]) => Promise<void>,
  options: { regions?: number; regionSize?: number; payloadMax?: number } = {},
): Promise<void> {
  const volume = createVolume(options.regions ?? 8, options.regionSize ?? 4096);
  const lines: string[] = [];
  const server = new NbdServer(volume, {
    log: (line) => lines.push(line),
    exportName: 'vol',
    batchRegions: 2,
    ...(options.payloadMax === undefined ? {} : { payloadMax: options.payloadMax }),
  });
  const port = (await server.listen({ port: 0 })) as number;
  try {
    await body(server, port, volume, lines);
  } finally {
    await server.close();
    volume.close();
  }
}

describe('NBD protocol (raw client)', () => {
  test('GO, WRITE at odd offsets, READ, FLUSH with FUA, WRITE_ZEROES, TRIM, DISC', async () => {
    await withServer(async (_server, port, volume) => {
      const client = await RawClient.open(port);
      assert.equal(await client.go(), BigInt(8 * 4096));
      const data = Buffer.alloc(5000, 0x5a);
      client.request(nbd.CMD_WRITE, 1000, data.length, data, 1n, nbd.CMD_FLAG_FUA);
      client.request(nbd.CMD_READ, 999, 5002, undefined, 2n);
      client.request(nbd.CMD_FLUSH, 0, 0, undefined, 3n);
      const write = await client.reply();
      assert.deepEqual([write.error, write.cookie], [0, 1n]);
      const read = await client.reply(5002);
      assert.deepEqual([read.error, read.cookie], [0, 2n]);
      assert.equal(read.data[0], 0);
      assert.ok(read.data.subarray(1, 5001).equals(data));
      assert.equal(read.data[5001], 0);
      assert.deepEqual((await client.reply()).cookie, 3n);
      assert.ok(Buffer.from(volume.read(1000, 5000)).equals(data));
      client.request(nbd.CMD_WRITE_ZEROES, 1500, 100, undefined, 4n);
      client.request(nbd.CMD_TRIM, 2000, 100, undefined, 5n);
      assert.equal((await client.reply()).error, 0);
      assert.equal((await client.reply()).error, 0);
      assert.ok(Buffer.from(volume.read(1500, 100)).equals(Buffer.alloc(100)));
      assert.ok(Buffer.from(volume.read(2000, 100)).equals(Buffer.alloc(100)));
      client.request(nbd.CMD_DISC, 0, 0);
      await client.waitClosed();
    });
  });

  test('errors: past the end, unknown command and flag, too large; the connection lives on', async () => {
    await withServer(
      async (_server, port) => {
        const client = await RawClient.open(port);
        await client.go();
        client.request(nbd.CMD_WRITE, 8 * 4096 - 10, 20, Buffer.alloc(20, 1), 1n);
        assert.equal((await client.reply()).error, nbd.ENOSPC);
        client.request(nbd.CMD_WRITE_ZEROES, 8 * 4096, 1, undefined, 2n);
        assert.equal((await client.reply()).error, nbd.ENOSPC);
        client.request(nbd.CMD_READ, 8 * 4096, 1, undefined, 3n);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(nbd.CMD_TRIM, 2 ** 60, 1, undefined, 4n);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(99, 0, 0, undefined, 5n);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(nbd.CMD_READ, 0, 10, undefined, 6n, 0x80);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(nbd.CMD_WRITE, 0, 9000, Buffer.alloc(9000, 2), 7n);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(nbd.CMD_READ, 0, 9000, undefined, 8n);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(nbd.CMD_READ, 0, 4, undefined, 9n);
        const read = await client.reply(4);
        assert.deepEqual([read.error, read.cookie, [...read.data]], [0, 9n, [0, 0, 0, 0]]);
        client.request(nbd.CMD_READ, 0, 4, undefined, 10n, 0, 0x12345678);
        await client.waitClosed();
      },
      { payloadMax: 8192 },
    );
  });

  test('options: LIST, INFO with block sizes, unknown option, malformed GO, unknown export, ABORT', async () => {
    await withServer(async (_server, port) => {
      const client = await RawClient.open(port);
      await client.greeting(nbd.FLAG_C_FIXED_NEWSTYLE);
      client.option(nbd.OPT_LIST);
      const server = await client.optionReply();
      assert.equal(server.type, nbd.REP_SERVER);
      assert.equal(server.data.subarray(4).toString(), 'vol');
      assert.equal((await client.optionReply()).type, nbd.REP_ACK);
      client.option(nbd.OPT_LIST, Buffer.alloc(1));
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_INVALID);
      client.option(nbd.OPT_INFO, client.goData('vol', [nbd.INFO_BLOCK_SIZE]));
      const info = await client.optionReply();
      assert.equal(info.type, nbd.REP_INFO);
      const blockSize = await client.optionReply();
      assert.equal(blockSize.data.readUInt16BE(0), nbd.INFO_BLOCK_SIZE);
      assert.equal((await client.optionReply()).type, nbd.REP_ACK);
      client.option(99); // no such option (8, STRUCTURED_REPLY, is served now)
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_UNSUP);
      client.option(nbd.OPT_GO, Buffer.from([0, 0, 0, 9, 1]));
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_INVALID);
      client.option(nbd.OPT_GO, Buffer.from([0, 0, 0, 9, 1, 2]));
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_INVALID);
      client.option(nbd.OPT_GO, Buffer.concat([client.goData('vol'), Buffer.alloc(1)]));
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_INVALID);
      client.option(nbd.OPT_GO, client.goData('other'));
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_UNKNOWN);
      client.option(nbd.OPT_ABORT);
      assert.equal((await client.optionReply()).type, nbd.REP_ACK);
      await client.waitClosed();
    });
  });

  test('EXPORT_NAME with and without zeroes; bad handshakes close only their connection', async () => {
    await withServer(async (_server, port, volume, lines) => {
      for (const [flags, replyLength] of [
        [nbd.FLAG_C_FIXED_NEWSTYLE | nbd.FLAG_C_NO_ZEROES, 10],
        [nbd.FLAG_C_FIXED_NEWSTYLE, 134],
      ] as const) {
        const client = await RawClient.open(port);
        await client.greeting(flags);
        client.option(nbd.OPT_EXPORT_NAME, Buffer.from('vol'));
        const reply = await client.read(replyLength);
        assert.equal(reply.readBigUInt64BE(0), BigInt(volume.sizeBytes));
        client.request(nbd.CMD_FLUSH, 0, 0, undefined, 1n);
        assert.equal((await client.reply()).error, 0);
        client.socket.destroy();
      }
      const bad: ((client: RawClient) => void)[] = [
        (client) => client.option(nbd.OPT_EXPORT_NAME, Buffer.from('nope')),
        (client) => client.write(Buffer.alloc(16, 0x41)),
        (client) => client.option(nbd.OPT_GO, Buffer.alloc(70000)),
      ];
      for (const send of bad) {
        const client = await RawClient.open(port);
        await client.greeting();
        send(client);
        await client.waitClosed();
      }
      const unknownFlags = await RawClient.open(port);
      await unknownFlags.greeting(0x80);
      await unknownFlags.waitClosed();
      // Dropped in the middle of a write: nothing is written, the server serves on.
      const dropper = await RawClient.open(port);
      await dropper.go();
      dropper.request(nbd.CMD_WRITE, 0, 4096, Buffer.alloc(100, 9));
      dropper.socket.destroy();
      const client = await RawClient.open(port);
      await client.go();
      client.request(nbd.CMD_READ, 0, 4096, undefined, 1n);
      assert.ok((await client.reply(4096)).data.equals(Buffer.alloc(4096)));
      client.socket.destroy();
      assert.ok(lines.some((line) => line.includes('closing a connection')));
    });
  });

  test('cycles between requests: batches, on demand, a request during a cycle, resume, a failed cycle', async () => {
    await withServer(
      async (server, port, volume) => {
        const client = await RawClient.open(port);
        await client.go();
        for (let region = 0; region < 8; region++) {
          client.request(nbd.CMD_WRITE, region * 512, 512, Buffer.alloc(512, region + 1), BigInt(region));
          assert.equal((await client.reply()).error, 0);
        }
        server.requestCycle();
        server.requestCycle(); // during the first: one more right after
        assert.ok(server.cycleRunning);
        client.request(nbd.CMD_WRITE, 0, 512, Buffer.alloc(512, 0xee), 99n); // COW during the cycle
        assert.equal((await client.reply()).error, 0);
        await server.whenIdle();
        assert.equal(server.cyclesCompleted, 2);
        assert.ok(Buffer.from(volume.read(0, 512, 'secondary')).equals(Buffer.alloc(512, 0xee)));
        assert.ok(Buffer.from(volume.read(7 * 512, 512, 'secondary')).equals(Buffer.alloc(512, 8)));
        assert.equal(server.resumeInterruptedCycle(), false);
        client.socket.destroy();
      },
      { regions: 8, regionSize: 512 },
    );
    // An interrupted cycle: the volume reopened while replicating resumes it.
    const dir = freshDir();
    const volume = ReplicatedVolume.create(new NodeStorage(), dir, { regions: 4, regionSize: 512 });
    volume.write(0, new Uint8Array(2048).fill(3));
    volume.startCycle();
    volume.transfer(0);
    volume.close();
    const reopened = ReplicatedVolume.open(new NodeStorage(), dir);
    const reports: CycleReport[] = [];
    const lines: string[] = [];
    const server = new NbdServer(reopened, {
      log: (line) => lines.push(line),
      onCycle: (report) => reports.push(report),
    });
    assert.equal(server.resumeInterruptedCycle(), true);
    await server.whenIdle();
    assert.deepEqual([reports[0]!.resumed, reports[0]!.regions], [true, 4]);
    assert.ok(Buffer.from(reopened.read(0, 2048, 'secondary')).equals(Buffer.alloc(2048, 3)));
    // A cycle that fails (the volume closed under it) stops cycles and says why.
    reopened.close();
    server.requestCycle();
    await server.whenIdle();
    assert.notEqual(server.failure, null);
    server.requestCycle();
    assert.ok(lines.some((line) => line.startsWith('cycle: stopped')));
  });

  test('a Unix socket, and a failed volume call answers EIO', async () => {
    const volume = createVolume(4, 512);
    const server = new NbdServer(volume, { log: () => {} });
    const path = join(root, 'nbd.sock');
    assert.equal(await server.listen({ socketPath: path }), path);
    const socket = await new Promise<Socket>((resolve) => {
      const s = connect(path, () => resolve(s));
    });
    const client = new RawClient(socket);
    await client.go();
    volume.close();
    client.request(nbd.CMD_WRITE, 0, 4, Buffer.alloc(4, 1), 1n);
    assert.notEqual((await client.reply()).error, 0);
    socket.destroy();
    await server.close();
  });
});

// ------------------------------------------------------------ real clients

/** The `cowmap` command itself, as users run it. */
const cowmapScript = join(import.meta.dirname, '../../bin/cowmap.js');

describe('NBD end to end', () => {
  test('a. qemu-io writes patterns at many offsets and sizes; the primary matches', {
    skip: missing('qemu-io'),
  }, async () => {
    const volume = createVolume(64, 65536); // 4 MiB
    const server = new NbdServer(volume, { log: () => {}, cycleEverySeconds: 0.05 });
    const port = (await server.listen({ port: 0 })) as number;
    const expected = Buffer.alloc(volume.sizeBytes);
    const writes: [number, number, number][] = [
      [0, 1048576, 0xab],
      [512, 512, 0x01],
      [3, 7, 0x02],
      [65535, 2, 0x03],
      [1048576 + 4096, 200000, 0x04],
      [2 * 1048576 - 1, 65537, 0x05],
      [4 * 1048576 - 4096, 4096, 0x06],
      [3000000, 131072, 0x07],
    ];
    const args = ['-f', 'raw'];
    for (const [offset, length, pattern] of writes) {
      args.push('-c', `write -P 0x${pattern.toString(16)} ${offset} ${length}`);
      expected.fill(pattern, offset, offset + length);
    }
    args.push('-c', 'flush');
    for (const [offset, length, pattern] of writes.slice(1))
      args.push('-c', `read -P 0x${pattern.toString(16)} ${offset} ${length}`);
    args.push(`nbd://127.0.0.1:${port}`);
    const result = await run('qemu-io', args);
    assert.doesNotMatch(result.stdout + result.stderr, /Pattern verification failed|error/i);
    await server.close();
    await server.whenIdle();
    assert.ok(readFileSync(join(volume.dir, 'primary')).equals(expected), 'the primary image is what qemu-io wrote');
    volume.close();
  });

  test('b. mke2fs -d, nbdcopy onto the export while cycles run; each secondary = primary@swap and passes e2fsck', {
    skip: missing('mke2fs', 'e2fsck', 'nbdcopy', 'nbdkit'),
  }, async (t) => {
    const work = join(root, 'b');
    mkdirSync(join(work, 'tree/sub/deeper'), { recursive: true });
    // make test copies an 8 MiB file system of 12 files; make verify (COWMAP_TEST_LEVEL=full) 32 MiB of 48.
    const files = atLevel(12, 48);
    for (let index = 0; index < files; index++) {
      const bytes = Buffer.alloc(1000 + index * 14000);
      for (let at = 0; at < bytes.length; at++) bytes[at] = (at * 31 + index) & 0xff;
      writeFileSync(
        join(work, index % 3 === 0 ? 'tree' : index % 3 === 1 ? 'tree/sub' : 'tree/sub/deeper', `file${index}.bin`),
        bytes,
      );
    }
    const size = atLevel(8, 32) * 1024 * 1024;
    const image = join(work, 'fs.img');
    await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', join(work, 'tree'), image, `${size >> 20}M`]);
    const volume = createVolume(size / 262144, 262144);
    const snaps = join(work, 'snaps');
    mkdirSync(snaps);
    const reports: CycleReport[] = [];
    const server = new NbdServer(volume, {
      log: () => {},
      onSwap: (cycle) => copyFileSync(join(volume.dir, 'primary'), join(snaps, `${cycle}.primary`)),
      onCycle: (report) => {
        copyFileSync(join(volume.dir, 'secondary/image'), join(snaps, `${report.cycle}.secondary`));
        reports.push(report);
      },
    });
    const port = (await server.listen({ port: 0 })) as number;
    // The copy streams from nbdcopy's standard input, fed in eight pieces with a
    // cycle run (and waited for) after each: swaps land in the middle of the copy
    // however fast the server is (a timed copy once spanned 10 cycles and, with
    // group commit, spans 3), while nbdcopy's writes race with each cycle.
    const copyOptions = ['--flush', '--connections=1', '--requests=1', '--request-size=32768'];
    const started = process.hrtime.bigint();
    const copier = spawn('nbdcopy', [...copyOptions, '-', `nbd://127.0.0.1:${port}`], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let copierErr = '';
    copier.stderr!.on('data', (chunk) => (copierErr += chunk));
    const copied = new Promise<number | null>((resolve) => copier.on('close', resolve));
    const imageBytes = readFileSync(image);
    const pieces = 8;
    for (let piece = 0; piece < pieces; piece++) {
      const part = imageBytes.subarray((piece * size) / pieces, ((piece + 1) * size) / pieces);
      await new Promise<void>((resolve, reject) =>
        copier.stdin!.write(part, (error) => (error ? reject(error) : resolve())),
      );
      if (piece < pieces - 1) {
        server.requestCycle();
        await server.whenIdle();
      }
    }
    copier.stdin!.end();
    assert.equal(await copied, 0, `nbdcopy: ${copierErr}`);
    const cowmapSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const during = reports.length;
    server.requestCycle();
    await server.whenIdle();
    server.requestCycle();
    await server.whenIdle();
    await server.close();
    assert.ok(readFileSync(join(volume.dir, 'primary')).equals(readFileSync(image)), 'the primary is the image');
    assert.ok(during >= pieces - 1, `a cycle after each piece but the last, during the copy (${during})`);
    let checked = 0;
    let clean = 0;
    for (const report of reports) {
      const secondary = readFileSync(join(snaps, `${report.cycle}.secondary`));
      assert.ok(
        secondary.equals(readFileSync(join(snaps, `${report.cycle}.primary`))),
        `cycle ${report.cycle}: S = P@swap`,
      );
    }
    // e2fsck on the last secondary (the whole file system) and on a few taken mid-copy
    // whose superblock is there already (a copy cut at any point is not a file system).
    const last = reports[reports.length - 1]!;
    assert.ok(readFileSync(join(snaps, `${last.cycle}.secondary`)).equals(readFileSync(image)));
    for (const report of reports) {
      const file = join(snaps, `${report.cycle}.secondary`);
      if (report !== last && report.cycle % 4 !== 0) continue;
      const result = await run('e2fsck', ['-fn', file], { allowFail: true });
      if (report === last) assert.equal(result.status, 0, result.stdout + result.stderr);
      checked++;
      if (result.status === 0) clean++;
    }
    // The same copy through nbdkit's file plugin, for the throughput ratio.
    const plain = join(work, 'plain.img');
    writeFileSync(plain, Buffer.alloc(0));
    spawnSync('truncate', ['-s', String(size), plain]);
    const nbdkitPort = 20000 + (process.pid % 20000);
    const kit = spawn('nbdkit', ['-f', '-i', '127.0.0.1', '-p', String(nbdkitPort), 'file', plain], {
      stdio: 'ignore',
    });
    try {
      for (let attempt = 0; attempt < 50; attempt++) {
        if ((await run('nbdinfo', ['--size', `nbd://127.0.0.1:${nbdkitPort}`], { allowFail: true })).status === 0)
          break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const kitStarted = process.hrtime.bigint();
      await run('nbdcopy', [image, `nbd://127.0.0.1:${nbdkitPort}`]);
      const kitSeconds = Number(process.hrtime.bigint() - kitStarted) / 1e9;
      // The same default nbdcopy through `cowmap serve` code, cycles every 0.2 s, no test hooks.
      const fresh = createVolume(size / 262144, 262144);
      const plainServer = new NbdServer(fresh, { log: () => {}, cycleEverySeconds: 0.2 });
      const freshPort = (await plainServer.listen({ port: 0 })) as number;
      const servedStarted = process.hrtime.bigint();
      await run('nbdcopy', [image, `nbd://127.0.0.1:${freshPort}`]);
      const servedSeconds = Number(process.hrtime.bigint() - servedStarted) / 1e9;
      await plainServer.close();
      await plainServer.whenIdle();
      fresh.close();
      const regionsPerCycle = reports.slice(0, during).map((report) => report.regions);
      const note =
        `b: ${during} cycles during the copy (${reports.length} in all), regions per cycle ${regionsPerCycle.join(',')}; ` +
        `streamed 32 KiB copy with a cycle after each of ${pieces} pieces ${cowmapSeconds.toFixed(2)} s; ` +
        `default nbdcopy of the ${size >> 20} MiB image: cowmap ${servedSeconds.toFixed(2)} s (${(size / 1048576 / servedSeconds).toFixed(1)} MiB/s), ` +
        `nbdkit file ${kitSeconds.toFixed(2)} s (${(size / 1048576 / kitSeconds).toFixed(1)} MiB/s), ` +
        `cowmap/nbdkit time ratio ${(servedSeconds / kitSeconds).toFixed(1)}x; e2fsck -fn clean on ${clean} ` +
        `of ${checked} secondaries (mid-copy ones are a block copy cut short, not a file system state)`;
      t.diagnostic(note);
      process.stderr.write(`# ${note}\n`);
    } finally {
      kit.kill();
    }
    volume.close();
  });

  // c. A file system through FUSE. Everything that touches the FUSE file runs in a child
  // process (nbdfuse, mke2fs, debugfs): the server runs in this process, and a synchronous
  // read or write of the FUSE file from here would block the event loop that has to answer
  // it (a deadlock that leaves the mount and this process stuck in the kernel).
  const fuseSkip =
    missing('nbdfuse', 'fusermount3', 'mke2fs', 'debugfs', 'e2fsck') ??
    (existsSync('/dev/fuse') ? undefined : 'FUSE does not work here: no /dev/fuse in this container');
  test('c. nbdfuse + mke2fs + debugfs writes and removes files between cycles; each secondary = primary@swap and passes e2fsck', {
    skip: fuseSkip,
    timeout: 60000,
  }, async (t) => {
    const work = join(root, 'c');
    const mount = join(work, 'mnt');
    const snaps = join(work, 'snaps');
    mkdirSync(mount, { recursive: true });
    mkdirSync(snaps);
    const sources: string[] = [];
    for (let index = 0; index < 4; index++) {
      const bytes = Buffer.alloc(3000 + index * 70000);
      for (let at = 0; at < bytes.length; at++) bytes[at] = (at * 7 + index * 13) & 0xff;
      sources.push(join(work, `src${index}`));
      writeFileSync(sources[index]!, bytes);
    }
    const volume = createVolume(256, 65536); // 16 MiB
    const reports: CycleReport[] = [];
    const server = new NbdServer(volume, {
      log: () => {},
      onSwap: (cycle) => copyFileSync(join(volume.dir, 'primary'), join(snaps, `${cycle}.primary`)),
      onCycle: (report) => {
        copyFileSync(join(volume.dir, 'secondary/image'), join(snaps, `${report.cycle}.secondary`));
        reports.push(report);
      },
    });
    const port = (await server.listen({ port: 0 })) as number;
    const disk = join(mount, 'disk');
    const fuse = spawn('nbdfuse', [disk, `nbd://127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let fuseErr = '';
    fuse.stderr!.on('data', (chunk) => (fuseErr += chunk));
    const fuseExited = new Promise<void>((resolve) => fuse.on('exit', () => resolve()));
    const mounted = (): boolean =>
      readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .some((line) => line.split(' ')[1] === mount);
    // One cycle, waited for: at this point every debugfs/mke2fs run has exited, so all of its
    // writes went through FUSE -> NBD and were acknowledged (the server acknowledges a write
    // once its bytes are in P, and the swap syncs P first), and the swap sees a consistent
    // file system. A swap in the middle of a debugfs run would snapshot a half-updated file
    // system, which e2fsck may rightly reject; that is why the cycles are triggered between
    // the debugfs runs.
    const cycle = async (): Promise<void> => {
      server.requestCycle();
      await server.whenIdle();
    };
    // Each step: debugfs -w on the FUSE file (under `timeout`, so a hang fails the test).
    const debugfs = async (commands: string[]): Promise<void> => {
      const file = join(work, 'cmds');
      writeFileSync(file, `${commands.join('\n')}\n`);
      const result = await run('timeout', ['20', 'debugfs', '-w', '-f', file, disk]);
      assert.doesNotMatch(result.stderr.replace(/^debugfs [^\n]*\n/, ''), /\S/, `debugfs: ${result.stderr}`);
    };
    const steps = 6;
    try {
      for (let attempt = 0; attempt < 200 && !mounted(); attempt++)
        await new Promise((resolve) => setTimeout(resolve, 25));
      assert.ok(mounted(), `nbdfuse mounted ${mount}: ${fuseErr}`);
      await run('timeout', ['20', 'mke2fs', '-q', '-F', '-t', 'ext4', disk]);
      await cycle();
      for (let step = 1; step <= steps; step++) {
        const commands = [
          `write ${sources[step % 4]} f${step}`,
          `mkdir d${step}`,
          `cd d${step}`,
          `write ${sources[(step + 1) % 4]} g`,
          `write ${sources[(step + 2) % 4]} h`,
          'cd /',
        ];
        if (step >= 3) commands.push(`rm f${step - 2}`, `rm d${step - 2}/h`);
        await debugfs(commands);
        await cycle();
      }
    } finally {
      // Unmount first (the server is still up to answer any last flush), under a timeout;
      // lazily if busy; and nbdfuse is killed if it does not exit by itself.
      if ((await run('timeout', ['10', 'fusermount3', '-u', mount], { allowFail: true })).status !== 0) {
        await run('timeout', ['10', 'fusermount3', '-u', '-z', mount], { allowFail: true });
      }
      const exited = await Promise.race([
        fuseExited.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
      ]);
      if (!exited) fuse.kill('SIGKILL');
      await server.close();
      await server.whenIdle();
      volume.close();
    }
    assert.ok(reports.length >= 5, `at least five cycles (${reports.length})`);
    assert.equal(reports.length, steps + 1);
    for (const report of reports) {
      const secondary = join(snaps, `${report.cycle}.secondary`);
      assert.ok(
        readFileSync(secondary).equals(readFileSync(join(snaps, `${report.cycle}.primary`))),
        `cycle ${report.cycle}: S = P@swap`,
      );
      // e2fsck -n on the scratch copy taken at completion, never on the volume's own file.
      const fsck = await run('e2fsck', ['-fn', secondary], { allowFail: true });
      assert.equal(fsck.status, 0, `cycle ${report.cycle}: e2fsck -fn\n${fsck.stdout}${fsck.stderr}`);
    }
    // The last secondary holds what debugfs left: f(steps-1), f(steps), d1..d(steps), and the
    // files' bytes are the sources'.
    const last = join(snaps, `${reports[reports.length - 1]!.cycle}.secondary`);
    const listing = (await run('debugfs', ['-R', 'ls -p /', last])).stdout;
    const names = new Set([...listing.matchAll(/^\/\d+\/\d+\/\d+\/\d+\/([^/]+)\//gm)].map((match) => match[1]));
    for (let step = 1; step <= steps; step++) {
      assert.equal(names.has(`f${step}`), step > steps - 2, `f${step} in ${[...names].join(' ')}`);
      assert.ok(names.has(`d${step}`), `d${step}`);
    }
    const dumped = join(work, 'dumped');
    await run('debugfs', ['-R', `dump /f${steps} ${dumped}`, last]);
    assert.ok(readFileSync(dumped).equals(readFileSync(sources[steps % 4]!)), `f${steps} reads back`);
    const note =
      `c: ${reports.length} cycles (regions per cycle ` +
      `${reports.map((report) => report.regions).join(',')}), each secondary = P@swap and e2fsck -fn clean`;
    t.diagnostic(note);
    process.stderr.write(`# ${note}\n`);
  });
});

/** A `cowmap serve` child and its stdout lines. */
function serveChild(args: string[]): {
  child: ChildProcess;
  lines: string[];
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<string>;
} {
  const child = spawn(process.execPath, [cowmapScript, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let partial = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (chunk) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const listener of listeners) listener();
  });
  const waitFor = (pattern: RegExp, timeoutMs = 20000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const line = lines.find((candidate) => pattern.test(candidate));
        if (line === undefined) return false;
        listeners.delete(listener);
        clearTimeout(timer);
        resolve(line);
        return true;
      };
      const listener = (): void => void check();
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`no line ${pattern} from cowmap serve:\n${lines.join('\n')}`));
      }, timeoutMs);
      listeners.add(listener);
      check();
    });
  return { child, lines, waitFor };
}

test('d. cowmap serve killed during writes: acknowledged writes survive, the cycle resumes, e2fsck passes on the secondary', {
  skip: missing('qemu-io', 'mke2fs', 'e2fsck', 'nbdcopy'),
}, async (t) => {
  const dir = freshDir();
  ReplicatedVolume.create(new NodeStorage(), dir, { regions: 256, regionSize: 65536 }).close(); // 16 MiB
  const socket = join(root, 'd.sock');
  const uri = `nbd+unix:///?socket=${socket}`;
  const first = serveChild([dir, '--socket', socket, '--cycle-every', '0.05', '--batch-regions', '1']);
  await first.waitFor(/^serving /);
  // 64 writes of 128 KiB, each followed by a flush; killed part way.
  const args = ['-f', 'raw'];
  for (let index = 0; index < 64; index++)
    args.push('-c', `write -P ${index + 1} ${index * 131072 * 2} 131072`, '-c', 'flush');
  const writer = spawn('qemu-io', [...args, uri], { stdio: ['ignore', 'pipe', 'pipe'] });
  let written = '';
  writer.stdout.on('data', (chunk) => (written += chunk));
  const writerDone = new Promise((resolve) => writer.on('close', resolve));
  // Kill right after a swap with regions to send, once some writes were acknowledged.
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const acknowledged = (written.match(/^wrote /gm) ?? []).length;
      const swapped = first.lines.some((line) => /swap, ([1-9]\d*) region/.test(line));
      if ((acknowledged >= 16 && swapped) || acknowledged >= 60) {
        const lastSwap = first.lines.findLastIndex((line) => /swap, [1-9]\d* region/.test(line));
        const completedAfter = first.lines.slice(lastSwap).some((line) => line.includes('completed'));
        if (!completedAfter || acknowledged >= 60) {
          clearInterval(timer);
          first.child.kill('SIGKILL');
          resolve();
        }
      }
    }, 1);
  });
  await writerDone;
  await new Promise((resolve) =>
    first.child.exitCode !== null || first.child.signalCode !== null ? resolve(null) : first.child.on('exit', resolve),
  );
  const acknowledged = [...written.matchAll(/^wrote 131072\/131072 bytes at offset (\d+)/gm)].map((match) =>
    Number(match[1]),
  );
  assert.ok(acknowledged.length > 0);
  const reopened = ReplicatedVolume.open(new NodeStorage(), dir);
  const interrupted = reopened.phase === 'replicating';
  reopened.close();
  t.diagnostic(
    `d: ${acknowledged.length} writes acknowledged before the kill; killed ${interrupted ? 'inside a cycle' : 'between cycles'}`,
  );
  if (existsSync(socket)) rmSync(socket);

  const second = serveChild([dir, '--socket', socket]);
  await second.waitFor(/^serving /);
  if (interrupted) await second.waitFor(/resumed and completed/);
  // The client reconnects: every acknowledged write is there (a process kill: the OS keeps
  // what the server wrote into P; a power loss would keep only the flushed writes).
  const check = ['-f', 'raw'];
  for (const offset of acknowledged) check.push('-c', `read -P ${offset / (131072 * 2) + 1} ${offset} 131072`);
  const verified = await run('qemu-io', [...check, uri]);
  assert.doesNotMatch(verified.stdout + verified.stderr, /Pattern verification failed/);
  // Then a file system over it, a cycle on demand (SIGUSR1), and e2fsck on the secondary.
  const work = join(root, 'd');
  mkdirSync(join(work, 'tree'), { recursive: true });
  for (let index = 0; index < 10; index++)
    writeFileSync(join(work, 'tree', `f${index}`), Buffer.alloc(50000 * (index + 1), index));
  const image = join(work, 'fs.img');
  await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', join(work, 'tree'), image, '16M']);
  await run('nbdcopy', ['--flush', image, uri]);
  const cyclesBefore = second.lines.filter((line) => line.includes('completed')).length;
  second.child.kill('SIGUSR1');
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (second.lines.filter((line) => line.includes('completed')).length > cyclesBefore) {
        clearInterval(timer);
        clearTimeout(limit);
        resolve();
      }
    }, 10);
    const limit = setTimeout(() => {
      clearInterval(timer);
      reject(new Error(second.lines.join('\n')));
    }, 20000);
  });
  second.child.kill('SIGTERM');
  await second.waitFor(/^stopped \(SIGTERM\)/);
  const secondary = join(dir, 'secondary', 'image');
  assert.ok(readFileSync(secondary).equals(readFileSync(image)), 'the secondary is the file system image');
  const fsck = await run('e2fsck', ['-fn', secondary], { allowFail: true });
  assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
});
