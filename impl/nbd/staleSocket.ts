// A Unix socket file that a killed server left behind. A clean stop removes the
// file (libuv unlinks a listening pipe when it closes), but a kill -9 does not, and
// the next listen on the path fails with EADDRINUSE. The file is taken over only
// when nothing listens on it: a connect that is refused (ECONNREFUSED) proves the
// listener is gone; a connect that succeeds means another server owns it.

import { lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';

/** How long a connect to the old socket may take before it counts as alive. */
const probeTimeoutMs = 2000;

/**
 * Removes `path` when it is a socket that no process listens on; returns whether it
 * did. A path that is missing, not a socket, or answered is left alone (the listen
 * that follows then reports the conflict).
 */
export async function removeStaleSocket(path: string): Promise<boolean> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return false;
  }
  if (!isSocket) return false;
  const refused = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    const timer = setTimeout(() => {
      probe.destroy();
      resolve(false);
    }, probeTimeoutMs);
    probe.once('connect', () => {
      clearTimeout(timer);
      probe.destroy();
      resolve(false);
    });
    probe.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code === 'ECONNREFUSED');
    });
  });
  if (!refused) return false;
  unlinkSync(path);
  return true;
}
