// What the client's tests share (no tests here): a client connected to a fake server
// for the length of a test, a bounded wait for what the server has seen, test data,
// and a matcher of link errors. Test-only: nothing outside *.test.ts imports this file.

import { FakeNbdServer, type FakeServerOptions } from './fakeNbdServer.ts';
import { NbdClient, type NbdClientOptions } from './nbdClient.ts';
import { NbdLinkError } from './nbdErrors.ts';
import type { NbdAddress } from './nbdUrl.ts';

export const testClientOptions: NbdClientOptions = { connectTimeoutMs: 5000, requestTimeoutMs: 5000, inFlightMax: 8 };

export const tcpAddress = (port: number, exportName = ''): NbdAddress => ({
  kind: 'tcp',
  host: '127.0.0.1',
  port,
  exportName,
});

/** A fake server and a client connected to its first export, both ended after `body`. */
export async function withFake(
  settings: FakeServerOptions,
  body: (server: FakeNbdServer, client: NbdClient) => Promise<void>,
  clientOptions: Partial<NbdClientOptions> = {},
): Promise<void> {
  const server = new FakeNbdServer(settings);
  const port = (await server.listen()) as number;
  try {
    const client = await NbdClient.connect(tcpAddress(port, settings.exportNames?.[0] ?? ''), {
      ...testClientOptions,
      ...clientOptions,
    });
    try {
      await body(server, client);
    } finally {
      client.destroy();
    }
  } finally {
    await server.close();
  }
}

/** Waits (bounded) until `condition` holds: for the server to have seen what the client sent. */
export async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waitedMs = 0; !condition(); waitedMs += 5) {
    if (waitedMs > 10_000) throw new Error(`still not ${what} after 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** `length` bytes of a pattern that differs with `seed`. */
export function testBytes(length: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, index) => (index * 7 + seed) & 0xff));
}

export function isLinkError(pattern: RegExp): (error: unknown) => boolean {
  return (error) => error instanceof NbdLinkError && pattern.test(error.message);
}
