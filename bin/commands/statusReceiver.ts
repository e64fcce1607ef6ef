// cowmap status DIR2 on a receiver's directory (docs/receive.md, "Status"): the store
// opened read-only (its recovery in memory, nothing written), or, while `cowmap
// receive` holds it (E_LOCKED), what the receiver wrote in DIR2/receive.status; a
// file whose pid is dead is stale (a killed receiver's) and the E_LOCKED error stands,
// as for serve.status. A store locked by the volume whose `consistent:` secondary it
// is has no status file: E_LOCKED too.

import { CowmapError, isCowmapError } from '../../impl/errors.ts';
import { processIsAlive } from '../../impl/nbd/serveStatus.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import { type ReceiveStatus, readReceiveStatus } from '../../impl/receive/receiveServerStatus.ts';
import { receiverReportLines, reportOfStatusFile, reportOfStore } from '../../impl/receive/receiverReport.ts';
import { ReceiverStore } from '../../impl/receive/receiverStore.ts';
import { writeStdout } from '../stdout.ts';

/** Shows the receiver in `dir`; E_NOT_FOUND (naming both) when it holds no store either. */
export async function showReceiverStatus(dir: string, json: boolean): Promise<void> {
  let text: string;
  try {
    text = storeText(dir, json);
  } catch (error) {
    if (isCowmapError(error, 'E_NOT_FOUND'))
      throw new CowmapError('E_NOT_FOUND', `open: no volume and no receiver's store in ${dir}`, { cause: error });
    const status = isCowmapError(error, 'E_LOCKED') ? liveReceiveStatus(dir) : null;
    if (status === null) throw error;
    text = heldText(dir, status, json);
  }
  await writeStdout(`${text}\n`);
}

function storeText(dir: string, json: boolean): string {
  const store = ReceiverStore.open(new NodeStorage(), dir, { readOnly: true });
  try {
    const report = reportOfStore(store.status(), Date.now());
    if (json) return JSON.stringify({ receiver: dir, heldBy: null, ...report, server: null });
    return [`receiver   ${dir}`, ...receiverReportLines(report)].join('\n');
  } finally {
    store.close();
  }
}

function heldText(dir: string, status: ReceiveStatus, json: boolean): string {
  const report = reportOfStatusFile(status, Date.now());
  if (json) return JSON.stringify({ receiver: dir, heldBy: 'cowmap receive', ...report, server: status });
  const lastTook = status.lastCycleSeconds === null ? '' : ` (the last took ${status.lastCycleSeconds.toFixed(3)} s)`;
  return [
    `receiver   ${dir}: held by cowmap receive (pid ${status.pid}); from its status file, updated ${status.updatedAt}`,
    `listening  ${status.listening}, ${status.connections} connection(s)`,
    ...receiverReportLines(report),
    `cycles     ${status.cyclesCompleted} completed since the receiver started${lastTook}; ` +
      `${status.bytesReceived} bytes received`,
    `failure    ${status.failure ?? 'none'}`,
  ].join('\n');
}

/** The receiver's status when a live receiver wrote it, else null (the E_LOCKED error stands). */
function liveReceiveStatus(dir: string): ReceiveStatus | null {
  const status = readReceiveStatus(dir);
  return status !== null && processIsAlive(status.pid) ? status : null;
}
