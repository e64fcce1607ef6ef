// NbdClient against real servers: nbdkit (memory and file plugins, over a Unix socket
// and over TCP, with filters that name only one export or refuse requests past an
// advertised maximum payload) and `cowmap serve`. Each server runs in a process group
// of its own, killed after its test; the tests skip, naming the tool, without nbdkit.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { atLevel } from '../../../harness/testLevel.ts';
import { missing, root } from '../nbdTestTools.ts';
import { NodeStorage } from '../../nodeStorage.ts';
import { ReplicatedVolume } from '../../replicatedVolume.ts';
import { NbdServer } from '../server.ts';
import { testClientOptions } from './clientTestKit.ts';
import { NbdClient, type NbdClientOptions } from './nbdClient.ts';
import { NbdHandshakeError } from './nbdErrors.ts';
import { type NbdAddress, parseNbdUrl } from './nbdUrl.ts';

const mib = 1024 * 1024;
const options: NbdClientOptions = { ...testClientOptions, requestTimeoutMs: 30_000, inFlightMax: 64 };
let servers = 0;

/** Random bytes from a seeded generator (xorshift32; the caller prints the seed). */
function randomBytes(length: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(length / 4));
  let state = seed >>> 0 || 1;
  for (let index = 0; index < words.length; index++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    words[index] = state;
  }
  return Buffer.from(words.buffer, 0, length);
}

function canConnect(address: NbdAddress): Promise<boolean> {
  return new Promise((resolve) => {
    const socket =
      address.kind === 'tcp'
        ? connect({ host: address.host, port: address.port })
        : connect({ path: address.socketPath });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A free TCP port on 127.0.0.1 (nbdkit is told to listen on it). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** nbdkit in the foreground in a group of its own, killed after the test; resolves once it accepts connections. */
async function startNbdkit(t: TestContext, address: NbdAddress, args: readonly string[]): Promise<ChildProcess> {
  const listen = address.kind === 'tcp' ? ['-p', String(address.port), '-i', address.host] : ['-U', address.socketPath];
  const child = spawn('nbdkit', ['-f', '--exit-with-parent', ...listen, ...args], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // Its complaints about the probes below (a connection closed in the handshake) are noise: shown only if it fails to start.
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  let exited = false;
  child.on('exit', () => (exited = true));
  t.after(() => {
    if (!exited) process.kill(-child.pid!, 'SIGKILL');
  });
  for (let waitedMs = 0; !(await canConnect(address)); waitedMs += 20) {
    if (exited || waitedMs > 10_000) throw new Error(`nbdkit ${args.join(' ')} did not start listening:\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return child;
}

const unixAddress = (exportName = ''): NbdAddress => ({
  kind: 'unix',
  socketPath: join(root, `nbdkit${servers++}.sock`),
  exportName,
});

describe('nbdkit', { skip: missing('nbdkit') }, () => {
  // make test moves 64 requests of 256 KiB and one 33 MiB write to a server with a 4 MiB maximum; make verify
  // 64 of 1 MiB, and the 33 MiB write to a plain server too (32 MiB pieces).
  const requestBytes = atLevel(256 * 1024, mib);

  test('memory over a Unix socket: 64 writes in flight, flush, read back, WRITE_ZEROES', async (t) => {
    const address = unixAddress();
    await startNbdkit(t, address, ['memory', '64M']);
    const client = await NbdClient.connect(address, options);
    try {
      assert.deepEqual([client.exportSize, client.canFlush, client.canWriteZeroes], [64 * mib, true, true]);
      const seed = Date.now() % 100_000;
      process.stdout.write(`# nbdkit round trip seed ${seed}\n`);
      const data = randomBytes(64 * requestBytes, seed);
      const pieces = Array.from({ length: 64 }, (_, index) => index * requestBytes);
      await Promise.all(pieces.map((offset) => client.write(offset, data.subarray(offset, offset + requestBytes))));
      await client.flush();
      const back = await Promise.all(pieces.map((offset) => client.read(offset, requestBytes)));
      assert.equal(
        Buffer.compare(Buffer.concat(back), data),
        0,
        `seed ${seed}: what was read differs from what was written`,
      );
      await client.writeZeroes(requestBytes, 3 * requestBytes);
      const zeroed = Buffer.from(await client.read(0, 5 * requestBytes));
      const expected = Buffer.concat([
        data.subarray(0, requestBytes),
        Buffer.alloc(3 * requestBytes),
        data.subarray(4 * requestBytes, 5 * requestBytes),
      ]);
      assert.equal(Buffer.compare(zeroed, expected), 0, `seed ${seed}: WRITE_ZEROES`);
    } finally {
      await client.close();
    }
  });

  test('a 33 MiB write is split to the maximum payload (4 MiB where the server refuses more; 32 MiB at the full level)', async (t) => {
    const servers: [NbdAddress, number, string[]][] = [
      [
        unixAddress(),
        4 * mib,
        ['--filter=blocksize-policy', 'memory', '64M', 'blocksize-error-policy=error', 'blocksize-maximum=4M'],
      ],
      ...atLevel<[NbdAddress, number, string[]][]>([], [[unixAddress(), 32 * mib, ['memory', '64M']]]),
    ];
    const seed = Date.now() % 100_000;
    process.stdout.write(`# nbdkit 33 MiB write seed ${seed}\n`);
    const data = randomBytes(33 * mib, seed);
    for (const [address, payloadMax, args] of servers) {
      await startNbdkit(t, address, args);
      const client = await NbdClient.connect(address, options);
      try {
        assert.equal(client.payloadMax, payloadMax);
        await client.write(mib, data);
        await client.flush();
        assert.equal(Buffer.compare(Buffer.from(await client.read(mib, data.length)), data), 0, `seed ${seed}`);
      } finally {
        await client.close();
      }
    }
  });

  test('file over TCP: the bytes reach the file', async (t) => {
    const file = join(root, `disk${servers++}.img`);
    writeFileSync(file, Buffer.alloc(4 * mib));
    const address = parseNbdUrl(`nbd://127.0.0.1:${await freePort()}/`);
    await startNbdkit(t, address, ['file', file]);
    const client = await NbdClient.connect(address, options);
    const data = randomBytes(mib, 11); // fixed seed
    await client.write(2 * mib, data, { fua: true });
    await client.flush();
    await client.close();
    assert.equal(Buffer.compare(readFileSync(file).subarray(2 * mib, 3 * mib), data), 0);
  });

  test('a wrong export name is refused with NBD_REP_ERR_UNKNOWN, naming the export', async (t) => {
    const address = unixAddress('vol');
    await startNbdkit(t, address, ['--filter=exportname', 'memory', '1M', 'exportname=vol', 'exportname-strict=true']);
    const client = await NbdClient.connect(address, options);
    await client.close();
    await assert.rejects(NbdClient.connect({ ...address, exportName: 'other' }, options), (error: unknown) => {
      assert.ok(error instanceof NbdHandshakeError, String(error));
      assert.match(
        error.message,
        /^nbd\+unix:\/\/\/other\?socket=.*refused the export 'other' with NBD_REP_ERR_UNKNOWN/,
      );
      return true;
    });
  });
});

// The server of `cowmap serve` in this process (a child process would cost a start of tsx for the same code).
test('cowmap serve: writes split to its maximum payload, read back, flush; a wrong export name refused', async () => {
  const volume = ReplicatedVolume.create(new NodeStorage(), join(root, `volume${servers++}`), {
    regions: 64,
    regionSize: 65536,
  });
  const server = new NbdServer(volume, { exportName: 'vol', payloadMax: 65536, statusFile: false, log: () => {} });
  const address = unixAddress('vol');
  await server.listen({ socketPath: (address as { socketPath: string }).socketPath });
  try {
    const client = await NbdClient.connect(address, options);
    try {
      assert.deepEqual([client.exportSize, client.payloadMax], [4 * mib, 65536]);
      const data = randomBytes(mib, 3); // fixed seed
      await client.write(mib, data);
      await client.flush();
      assert.equal(Buffer.compare(Buffer.from(await client.read(mib, mib)), data), 0);
      assert.equal(Buffer.compare(Buffer.from(volume.read(mib, mib)), data), 0, 'the volume holds what was written');
    } finally {
      await client.close();
    }
    await assert.rejects(NbdClient.connect({ ...address, exportName: 'other' }, options), NbdHandshakeError);
  } finally {
    await server.close();
    volume.close();
  }
});
