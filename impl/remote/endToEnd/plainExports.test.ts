// End to end, scenario a: cycles to plain NBD servers that know nothing of cowmap
// (nbdkit's file plugin, qemu-nbd), over 127.0.0.1 TCP and a Unix socket. The
// primary is driven with the commands users type (init --secondary URL, write,
// cycle, status); after each cycle the export's file holds the primary's image
// (cmp -n SIZE: no write came between the swap and the check, so P now = P@swap)
// and its control block says the cycle completed. Skipped, naming the tool, where
// nbdkit or qemu-nbd is missing. make test runs nbdkit over TCP and qemu-nbd over a
// Unix socket, a cycle each (every command that talks to the far side starts the NBD
// client's worker thread, about a second on a loaded machine); make verify the four
// pairs, two cycles each.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { atLevel } from '../../../harness/testLevel.ts';
import { freshDir, missing, root } from '../../nbd/nbdTestTools.ts';
import { seedFrom, testRandom } from '../../nbd/testRandom.ts';
import {
  controlBlockOf,
  cowmap,
  cowmapMayFail,
  makeExportFile,
  samePrefix,
  seededWrites,
  initRemote,
} from './remoteCli.ts';
import { freePort, type Listen, type SecondaryServer, startNbdkitFile, startQemuNbd } from './secondaryServers.ts';

const geometry = { regions: 64, regionSize: 65536 }; // 4 MiB
const sizeBytes = geometry.regions * geometry.regionSize;
const seed = seedFrom('COWMAP_E2E_SEED');
process.stderr.write(`# remote end-to-end a: seed ${seed} (COWMAP_E2E_SEED=${seed} repeats it)\n`);

type Kind = 'nbdkit' | 'qemu-nbd';

async function startKind(kind: Kind, file: string, listen: Listen): Promise<SecondaryServer> {
  return kind === 'nbdkit' ? startNbdkitFile(file, listen) : startQemuNbd(file, listen);
}

async function listenFor(transport: 'tcp' | 'unix', name: string): Promise<Listen> {
  return transport === 'tcp'
    ? { kind: 'tcp', port: await freePort() }
    : { kind: 'unix', socketPath: join(root, `${name}.sock`) };
}

describe('cycles to plain NBD exports', () => {
  const cases: [Kind, 'tcp' | 'unix'][] = [
    ['nbdkit', 'tcp'],
    ['qemu-nbd', 'unix'],
    ...atLevel<[Kind, 'tcp' | 'unix'][]>(
      [],
      [
        ['nbdkit', 'unix'],
        ['qemu-nbd', 'tcp'],
      ],
    ),
  ];
  const rounds = atLevel(1, 2);
  for (const [kind, transport] of cases) {
    test(`${kind} over ${transport}: init claims the export, each cycle leaves it equal to the primary`, {
      skip: missing(kind, 'cmp'),
    }, async () => {
      const name = `${kind}-${transport}`;
      const exportFile = makeExportFile(join(root, `${name}.img`), geometry);
      const server = await startKind(kind, exportFile, await listenFor(transport, name));
      const dir = freshDir();
      const random = testRandom(seed ^ cases.findIndex(([k, t]) => k === kind && t === transport));
      try {
        await initRemote(dir, geometry, server.url);
        assert.deepEqual(
          [controlBlockOf(exportFile, geometry)?.cycle, controlBlockOf(exportFile, geometry)?.state],
          [0, 'complete'],
          'init claimed the export: (0, complete)',
        );
        assert.ok(await samePrefix(exportFile, join(dir, 'primary'), sizeBytes), `seed ${seed}: zeros at create`);
        for (let round = 1; round <= rounds; round++) {
          const touched = await seededWrites(dir, root, random, geometry, 4);
          const output = await cowmap('cycle', dir);
          assert.match(output, new RegExp(`^ran cycle ${round}: sent ${touched.size} region\\(s\\)`), output);
          assert.ok(
            await samePrefix(exportFile, join(dir, 'primary'), sizeBytes),
            `seed ${seed}: round ${round}: S = P@swap`,
          );
          const block = controlBlockOf(exportFile, geometry);
          assert.deepEqual([block?.cycle, block?.state], [round, 'complete'], `round ${round}: the control block`);
        }
        if (kind === 'nbdkit' && transport === 'tcp') {
          // cowmap status of a volume nobody serves asks the far side (the other cases skip it: a second apiece).
          const status = await cowmap('status', dir);
          assert.match(status, new RegExp(`^secondary +${server.url.replace(/[.?/+]/g, '\\$&')}`, 'm'));
          assert.match(
            status,
            new RegExp(`^far side +cycle ${rounds} completed; its point in time is \\d+\\.\\d s old$`, 'm'),
          );
          // A volume nobody serves whose far side is down: status still answers, and says so.
          await server.kill();
          const down = await cowmapMayFail('status', dir, '--json');
          assert.equal(down.status, 0, down.stderr);
          const link = JSON.parse(down.stdout).link;
          assert.equal(link.state, 'down', down.stdout);
          assert.notEqual(link.lastError, null);
          // --snapshot-dir copies a directory secondary's image: refused for an NBD export.
          const serve = await cowmapMayFail('serve', dir, '--port', '0', '--snapshot-dir', join(root, 'snaps'));
          assert.equal(serve.status, 2, serve.stderr);
          assert.match(serve.stderr, /--snapshot-dir .* an NBD export .* not supported/);
        }
      } finally {
        await server.kill();
      }
    });
  }
});
