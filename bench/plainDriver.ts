// The baseline of the conform speed bench (conformSpeed.ts): the plainest client
// there is. It spawns the adapter, says hello, then loops "one operation, then
// state" with the op mix of the fast-check sequences without crashes, in sequences
// of their lengths on fresh volumes, reading each answer before it sends the next
// request and checking nothing.

import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { Prng } from '../harness/prng.ts';
import {
  commandsMax,
  type ConformSpeedConfig,
  contentsPerRegion,
  loadAverageNow,
  type RunFigures,
} from './conformSpeedSettings.ts';
import { PlainClient } from './plainClient.ts';
import { secondsSince } from './stats.ts';

/**
 * The fast-check sequences' op mix without crashes, by weight: write 8, transfer
 * 6, startCycle 3, completeCycle 3, read 2 (a quarter of them out of range),
 * an argument out of range 1 (write or transfer past the last region, short data).
 */
function nextRequest(
  prng: Prng,
  regions: number,
  contents: readonly (readonly string[])[],
  shortData: string,
): [string, Record<string, unknown>] {
  const pick = (count: number) => prng.nextUint32() % count;
  const region = pick(regions);
  const roll = pick(23);
  if (roll < 8) return ['write', { region, data: contents[region]![pick(contentsPerRegion)]! }];
  if (roll < 14) return ['transfer', { region }];
  if (roll < 17) return ['startCycle', {}];
  if (roll < 20) return ['completeCycle', {}];
  if (roll < 22)
    return ['read', { region: pick(4) === 0 ? regions : region, volume: pick(2) === 0 ? 'primary' : 'secondary' }];
  const bad = pick(3);
  if (bad === 0) return ['write', { region: regions, data: contents[0]![0]! }];
  if (bad === 1) return ['transfer', { region: regions }];
  return ['write', { region, data: shortData }];
}

/**
 * The plain driver of one adapter process, run in slices of time. Its sequences
 * are shaped as the fast-check ones are: a fresh volume each (open with create,
 * state), a length uniform in 0..commandsMax, then close; so that both sides do
 * the same work (a long history on one volume would mostly be cheap rejections,
 * E_NOT_DRAINED and E_PHASE, with few cycles).
 */
export class PlainDriver {
  private readonly client: PlainClient;
  private readonly volumesDir: string;
  /** Seeded full-region bytes, base64 as they go on the wire (a write is as long as with labels). */
  private readonly contents: string[][];
  private readonly shortData = Buffer.alloc(8).toString('base64');
  private volumeCount = 0;
  readonly errors: string[] = [];

  constructor(
    command: readonly string[],
    private readonly config: ConformSpeedConfig,
  ) {
    const prng = new Prng(config.seed);
    this.contents = Array.from({ length: config.regions }, () =>
      Array.from({ length: contentsPerRegion }, () => {
        const bytes = Buffer.alloc(config.regionSize);
        for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(prng.nextUint32(), i);
        return bytes.toString('base64');
      }),
    );
    this.volumesDir = mkdtempSync(join(config.root, 'driver-'));
    this.client = new PlainClient(command, config.repoRoot);
  }

  private expectOk(what: string, answer: Record<string, unknown>): void {
    if (answer.ok !== true && this.errors.length < 3)
      this.errors.push(`${what}: ${JSON.stringify(answer).slice(0, 200)}`);
  }

  async start(): Promise<void> {
    this.expectOk('hello', await this.client.request('hello'));
  }

  /** Sequences for `seconds` (the last one cut at the deadline): the steps done. */
  async slice(seed: number, seconds: number): Promise<RunFigures & { readonly runs: number }> {
    const loadAverage = loadAverageNow();
    const prng = new Prng(seed);
    const config = this.config;
    let steps = 0;
    let runs = 0;
    const started = process.hrtime.bigint();
    const deadline = started + BigInt(Math.round(seconds * 1e9));
    const timeLeft = () => process.hrtime.bigint() < deadline;
    while (timeLeft()) {
      const dir = join(this.volumesDir, `volume-${this.volumeCount++}`);
      this.expectOk(
        'open',
        await this.client.request('open', {
          dir,
          create: true,
          regions: config.regions,
          regionSize: config.regionSize,
        }),
      );
      this.expectOk('state', await this.client.request('state'));
      const length = prng.nextUint32() % (commandsMax + 1);
      for (let index = 0; index < length && timeLeft(); index++) {
        const [op, fields] = nextRequest(prng, config.regions, this.contents, this.shortData);
        await this.client.request(op, fields);
        this.expectOk('state', await this.client.request('state'));
        steps++;
      }
      this.expectOk('close', await this.client.request('close'));
      runs++;
    }
    return { steps, seconds: secondsSince(started), loadAverage, runs };
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
