// cowmap receive DIR2 (--port P [--host H] | --socket PATH) [--regions N --region-size BYTES] [--export-name NAME]
//
// Serves the receiver store of DIR2 as one NBD export (docs/receive.md) for a primary
// whose secondary is this server's URL. The first run creates DIR2 from the geometry
// (export size: the image, then the control block); later runs open it (recovery) and
// check a geometry given against it (usage error, exit 2, when it disagrees). The
// store holds DIR2's lock while it is open: a second receive, or a `read --consistent`
// of DIR2, is E_LOCKED. SIGINT or SIGTERM stops it: connections dropped, the store
// flushed and closed, the lock released, exit 0 (1 when a storage error stopped it).

import { CowmapError, isCowmapError } from '../../impl/errors.ts';
import { checkGeometry, type Geometry } from '../../impl/geometry.ts';
import { removeStaleSocket } from '../../impl/nbd/staleSocket.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import { ReceiveServer } from '../../impl/receive/receiveServer.ts';
import { keepReceiveStatus, type StatusFileKeeper } from '../../impl/receive/receiveServerStatus.ts';
import { ReceiverStore } from '../../impl/receive/receiverStore.ts';
import { exportSizeOf } from '../../impl/remote/controlBlock.ts';
import { defineCommand, type Values } from '../command.ts';
import { description } from '../descriptions/receive.ts';
import { integerMax, integerOption, optionalIntegerOption } from '../integerOption.ts';
import { UsageError } from '../usageError.ts';
import { volumeDirArgument } from '../volume.ts';

type Where = { host: string; port: number } | { socketPath: string };

export const command = defineCommand(description, async ({ values, positionals }) => {
  const dir = volumeDirArgument(positionals);
  const where = listenOptions(values);
  const geometry = geometryOptions(values);
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const store = openOrCreate(dir, geometry);
  let keeper: StatusFileKeeper | null = null;
  let server: ReceiveServer;
  let listened: number | string;
  try {
    server = new ReceiveServer(store, {
      log,
      onEvent: () => keeper?.write(),
      ...(values['export-name'] === undefined ? {} : { exportName: values['export-name'] }),
    });
    listened = await listen(server, where, log);
  } catch (error) {
    store.close();
    throw error;
  }
  // The signals are ours before the line that says we listen (whoever reads it may stop us at once).
  const stopSignal = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  // An IPv6 address goes in brackets in a URL and before a port.
  const host = 'host' in where ? (where.host.includes(':') ? `[${where.host}]` : where.host) : '';
  const listening = typeof listened === 'number' ? `${host}:${listened}` : listened;
  const url = typeof listened === 'number' ? `nbd://${listening}` : `nbd+unix:///?socket=${listened}`;
  keeper = keepReceiveStatus(dir, server, listening, log);
  const status = store.status();
  log(
    `receiving into ${dir} (an export of ${store.exportSize} bytes; the last completed cycle: ` +
      `${status.completedCycle ?? 'none'}) on ${url} (pid ${process.pid})`,
  );
  const stopped = await stopSignal;
  let flushError: unknown = null;
  try {
    await server.close();
  } catch (error) {
    flushError = error;
  }
  keeper.stop();
  store.close();
  log(`stopped (${stopped}) after ${server.cyclesCompleted} completed cycle(s)`);
  const failure = server.target.failure ?? flushError;
  if (failure === null) return 0;
  const detail = failure instanceof Error ? failure.message : String(failure);
  process.stderr.write(`E_IO: receive: a storage error stopped the receiver: ${detail}\n`);
  return 1;
});

function listenOptions(values: Values<typeof description.options>): Where {
  const port = optionalIntegerOption('port', values.port, { min: 0, max: 65535 });
  const socketPath = values.socket;
  if (port !== undefined && socketPath !== undefined) throw new UsageError('give --port or --socket, not both');
  if (port === undefined && socketPath === undefined) throw new UsageError('give --port P or --socket PATH');
  if (socketPath !== undefined) {
    if (values.host !== undefined) throw new UsageError('--host goes with --port, not with --socket');
    return { socketPath };
  }
  if (values.host === '') throw new UsageError('--host is an empty string');
  return { host: values.host ?? '127.0.0.1', port: port! };
}

/** --regions and --region-size, both or neither; checked (E_SIZE) before anything is created. */
function geometryOptions(values: Values<typeof description.options>): Geometry | null {
  const bounds = { min: 0, max: integerMax };
  const regionsText = values.regions;
  const regionSizeText = values['region-size'];
  if (regionsText === undefined && regionSizeText === undefined) return null;
  if (regionsText === undefined || regionSizeText === undefined)
    throw new UsageError('give --regions and --region-size together');
  const geometry = {
    regions: integerOption('regions', regionsText, bounds),
    regionSize: integerOption('region-size', regionSizeText, bounds),
  };
  checkGeometry(geometry);
  return geometry;
}

/**
 * The store of DIR2: opened (and checked against `geometry`), or created from it when
 * the open finds none (E_NOT_FOUND: the store's own test of whether DIR2 holds one).
 */
function openOrCreate(dir: string, geometry: Geometry | null): ReceiverStore {
  const storage = new NodeStorage();
  let store: ReceiverStore;
  try {
    store = ReceiverStore.open(storage, dir);
  } catch (error) {
    if (!isCowmapError(error, 'E_NOT_FOUND')) throw error;
    if (geometry === null)
      throw new UsageError(`${dir} holds no receiver yet: give --regions and --region-size to create it`);
    return ReceiverStore.create(storage, dir, exportSizeOf(geometry));
  }
  const problem = geometry === null ? null : geometryMismatch(store, geometry);
  if (problem !== null) {
    store.close();
    throw new UsageError(`${dir}: ${problem}`);
  }
  return store;
}

function geometryMismatch(store: ReceiverStore, geometry: Geometry): string | null {
  const expected = exportSizeOf(geometry);
  const { identity } = store.status();
  if (store.exportSize !== expected)
    return `its export is ${store.exportSize} bytes; --regions ${geometry.regions} --region-size ${geometry.regionSize} make ${expected}`;
  if (identity !== null && (identity.regions !== geometry.regions || identity.regionSize !== geometry.regionSize))
    return `it receives a volume of ${identity.regions} regions of ${identity.regionSize} bytes, not ${geometry.regions} of ${geometry.regionSize}`;
  return null;
}

/** Listens; a taken address is the environment's fault (E_IO, exit 1), not the usage's. */
async function listen(server: ReceiveServer, where: Where, log: (line: string) => void): Promise<number | string> {
  const place = 'socketPath' in where ? where.socketPath : `${where.host}:${where.port}`;
  try {
    if ('socketPath' in where && (await removeStaleSocket(where.socketPath)))
      log(`receive: removed ${where.socketPath}: a socket file nobody listens on (left by a killed receiver)`);
    return await server.listen(where);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason = typeof code === 'string' ? code : (error as Error).message;
    throw new CowmapError('E_IO', `receive: listen: ${reason}: ${place}`, { cause: error });
  }
}
