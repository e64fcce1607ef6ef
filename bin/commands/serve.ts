// cowmap serve DIR [--port P | --socket PATH] [--cycle-every SECONDS] [--export-name NAME]
//                  [--batch-regions N] [--snapshot-dir DIR2] and the limits (docs/nbd.md, "Limits"):
//                  [--max-request-bytes N] [--buffer-bytes N] [--max-connections N]
//                  [--handshake-timeout SECONDS] [--request-timeout SECONDS]
//                  [--batch-requests N] [--chunk-bytes N] [--summary-every SECONDS]
//
// Serves the volume in DIR over NBD (docs/nbd.md) on 127.0.0.1 or a Unix socket,
// and runs replication cycles while clients write: every --cycle-every seconds,
// and on SIGUSR1. A cycle that a crash interrupted is resumed first. SIGINT or
// SIGTERM stops the server, closes the volume and exits 0 (a running cycle is
// left as it is and resumed by the next open). --snapshot-dir is for tests: at
// every swap the primary image is copied to DIR2/cycle-N.primary, and at every
// completion the secondary image to DIR2/cycle-N.secondary; only with a directory
// secondary (a remote one's image is a file of another process, maybe on another
// machine, and a consistent one is not a plain image: a usage error says so).
//
// A remote secondary (docs/remote.md): the volume is opened with a link retry
// budget of 0, one attempt per call (`serveLink`), so that a cycle slice never holds
// the event loop for longer than the link's connect or request timeout; the cycle
// runner retries a slice that a link fault stopped, from a timer (impl/nbd/cycles.ts).

import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CowmapError } from '../../impl/errors.ts';
import { fileNames, secondaryPath } from '../../impl/layout.ts';
import { requestShareBytes } from '../../impl/nbd/bufferBudget.ts';
import { serveDefaults } from '../../impl/nbd/serveDefaults.ts';
import { NbdServer, type NbdServerOptions } from '../../impl/nbd/server.ts';
import { removeStaleSocket } from '../../impl/nbd/staleSocket.ts';
import { linkReport, linkSummary, volumeLink } from '../../impl/nbd/volumeLink.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import type { LinkOptions } from '../../impl/remote/linkOptions.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { defineCommand, type Values } from '../command.ts';
import { description } from '../descriptions/serve.ts';
import { integerMax, optionalIntegerOption } from '../integerOption.ts';
import { UsageError } from '../usageError.ts';
import { volumeDirArgument } from '../volume.ts';

/**
 * The link of a remote secondary under serve: one attempt per call (the cycle runner
 * waits between attempts, on a timer), a connect bounded at 2 s and a request at 10 s:
 * the longest a slice can hold the event loop, and so stall every client, when the far
 * side hangs (the defaults, 5 s and 30 s, suit `cowmap cycle`, which serves no one).
 */
export const serveLink: Partial<LinkOptions> = { retryBudgetMs: 0, connectTimeoutMs: 2_000, requestTimeoutMs: 10_000 };

export const command = defineCommand(description, async ({ values, positionals }) => {
  const dir = volumeDirArgument(positionals);
  const port = optionalIntegerOption('port', values.port, { min: 0, max: 65535 });
  const socketPath = values.socket;
  if (port !== undefined && socketPath !== undefined) throw new UsageError('give --port or --socket, not both');
  const everyText = values['cycle-every'];
  const cycleEverySeconds = everyText === undefined ? 0 : Number(everyText);
  if (!Number.isFinite(cycleEverySeconds) || cycleEverySeconds < 0 || everyText === '') {
    throw new UsageError(`--cycle-every must be a non-negative number of seconds, got '${everyText}'`);
  }
  const batchRegions = optionalIntegerOption('batch-regions', values['batch-regions'], { min: 0, max: integerMax });
  const limits = limitOptions(values);
  const snapshotDir = values['snapshot-dir'];

  const volume = ReplicatedVolume.open(new NodeStorage(), dir, { link: serveLink });
  if (snapshotDir !== undefined) refuseSnapshotsOfRemote(volume);
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  probeAtStart(volume, log);
  const server = new NbdServer(volume, {
    cycleEverySeconds,
    log,
    ...(values['export-name'] === undefined ? {} : { exportName: values['export-name'] }),
    ...(batchRegions === undefined ? {} : { batchRegions }),
    ...limits,
    ...(snapshotDir === undefined ? {} : snapshotHooks(volume, dir, snapshotDir)),
  });
  let where: number | string;
  try {
    if (socketPath !== undefined && (await removeStaleSocket(socketPath))) {
      log(`serve: removed ${socketPath}: a socket file nobody listens on (left by a killed server)`);
    }
    where = await server.listen(socketPath === undefined ? { port: port ?? 10809 } : { socketPath });
  } catch (error) {
    volume.close();
    // The address is taken or not ours: the environment, not the usage (exit 1).
    const code = (error as { code?: unknown }).code;
    const place = socketPath ?? `127.0.0.1:${port ?? 10809}`;
    throw new CowmapError(
      'E_IO',
      `serve: listen: ${typeof code === 'string' ? code : (error as Error).message}: ${place}`,
      { cause: error },
    );
  }
  // The signals are ours before the line that says we serve: whoever reads that line
  // and stops us at once must find SIGTERM handled (the volume closed), not fatal.
  process.on('SIGUSR1', () => server.requestCycle());
  const stopSignal = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log(
    `serving ${dir} (${volume.sizeBytes} bytes, ${volume.regions} regions of ${volume.regionSize}) on ` +
      `${typeof where === 'number' ? `nbd://127.0.0.1:${where}` : `nbd+unix:///?socket=${where}`}` +
      (cycleEverySeconds > 0 ? `, a cycle every ${cycleEverySeconds} s` : '') +
      `; SIGUSR1 runs a cycle (pid ${process.pid})`,
  );
  server.resumeInterruptedCycle();
  const stopped = await stopSignal;
  await server.close({ leaveCycle: true });
  volume.close();
  log(`stopped (${stopped}) after ${server.cyclesCompleted} cycle(s)`);
  if (server.failure === null) return 0;
  // The failure went to the log (stdout) when it happened; stderr says it in the one format.
  process.stderr.write(
    /^E_[A-Z_]+: /.test(server.failure) ? `${server.failure}\n` : `E_IO: serve: cycle: ${server.failure}\n`,
  );
  return 1;
});

/** --snapshot-dir: the primary image copied at each swap, the secondary image at each completion. */
function snapshotHooks(volume: ReplicatedVolume, dir: string, snapshotDir: string): NbdServerOptions {
  const secondaryImage = join(secondaryPath(dir, readRecordedSecondary(volume)), fileNames.replicaImage);
  mkdirSync(snapshotDir, { recursive: true });
  return {
    onSwap: (cycle) => copyFileSync(join(dir, fileNames.primary), join(snapshotDir, `cycle-${cycle}.primary`)),
    onCycle: (report) => copyFileSync(secondaryImage, join(snapshotDir, `cycle-${report.cycle}.secondary`)),
  };
}

/**
 * A remote secondary is probed once before serving (a connect and a read of its
 * control block, nothing written; one attempt): its state goes to the log, and the
 * link's worker thread starts now, not in the first cycle slice, where its start
 * would hold the event loop while clients wait. A far side that is down is only
 * logged: the cycles retry it.
 */
function probeAtStart(volume: ReplicatedVolume, log: (line: string) => void): void {
  const link = volumeLink(volume);
  if (link.probeLink === undefined) return;
  log(`secondary ${linkSummary(linkReport(link.probeLink(), Date.now()))}`);
}

/** --snapshot-dir copies a directory secondary's image file: a usage error for any other kind (the volume is closed first). */
function refuseSnapshotsOfRemote(volume: ReplicatedVolume): void {
  const recorded = readRecordedSecondary(volume);
  const remote = volumeLink(volume).linkStatus !== undefined;
  if (!remote && !recorded.startsWith('consistent:')) return;
  volume.close();
  throw new UsageError(
    `--snapshot-dir copies a secondary directory's image, and this volume's secondary is ${remote ? 'an NBD export' : 'a consistent secondary'}` +
      ` (${recorded}): not supported; read the far side's image there instead (cowmap read DIR2 --consistent for cowmap receive)`,
  );
}

/** The limits of the options table (docs/nbd.md, "Limits"): integers in bounds, the buffer cap above one request. */
function limitOptions(values: Values<typeof description.options>): NbdServerOptions {
  const read = (name: keyof typeof values, min: number, max = integerMax): number | undefined =>
    optionalIntegerOption(name, values[name] as string | undefined, { min, max });
  // The NBD length field is 32 bits; the block size maximum of NBD_INFO_BLOCK_SIZE too.
  const payloadMax = read('max-request-bytes', 512, 2 ** 32 - 1);
  const bufferBytesMax = read('buffer-bytes', 1);
  const options: NbdServerOptions = {
    payloadMax,
    bufferBytesMax,
    connectionsMax: read('max-connections', 1),
    handshakeTimeoutSeconds: read('handshake-timeout', 1, 86_400),
    requestTimeoutSeconds: read('request-timeout', 1, 86_400),
    batchRequestsMax: read('batch-requests', 1, 65_536),
    chunkBytes: read('chunk-bytes', 512, 2 ** 31),
    summaryEverySeconds: read('summary-every', 0, 86_400),
  };
  const payload = payloadMax ?? serveDefaults.payloadMax;
  const buffer = bufferBytesMax ?? serveDefaults.bufferBytesMax;
  if (buffer < payload + requestShareBytes) {
    throw new UsageError(
      `--buffer-bytes (${buffer}) must hold one largest request: --max-request-bytes (${payload}) + ${requestShareBytes}`,
    );
  }
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

/** The secondary's recorded location: ReplicatedVolume keeps it in its metadata. */
function readRecordedSecondary(volume: ReplicatedVolume): string {
  const metadata = (volume as unknown as { metadata: { record: { secondary?: string } } }).metadata;
  return metadata.record.secondary ?? '';
}
