import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fioArgs, parseFioOutput } from './nbdFio.ts';

// The shape of fio 3.33's --output-format=json through the nbd engine, which prints a line of its own first.
const output = `fio: connected to NBD server
{
  "fio version" : "fio-3.33",
  "jobs" : [
    {
      "jobname" : "randwrite",
      "error" : 0,
      "read" : { "io_bytes" : 0, "bw_bytes" : 0, "iops" : 0.0 },
      "write" : { "io_bytes" : 34619392, "bw_bytes" : 17312863, "iops" : 4226.773227 }
    }
  ]
}
`;

test('parseFioOutput reads the side of the job that ran, after the engine line', () => {
  assert.deepEqual(parseFioOutput(output, 'randwrite'), {
    iops: 4226.773227,
    bytesPerSecond: 17312863,
    ioBytes: 34619392,
    error: 0,
  });
  assert.equal(parseFioOutput(output, 'randread').ioBytes, 0);
  assert.throws(() => parseFioOutput('fio: connection refused\n', 'randwrite'), /printed no JSON/);
});

test('fioArgs: the nbd engine and URI, fsync, area and time only when asked', () => {
  const uri = 'nbd://127.0.0.1:10809';
  const timed = fioArgs(
    {
      name: 'steady',
      rw: 'randwrite',
      blockBytes: 4096,
      iodepth: 8,
      fsync: true,
      areaBytes: 8 << 20,
      runtimeSeconds: 2.5,
    },
    uri,
  );
  for (const arg of [
    '--ioengine=nbd',
    `--uri=${uri}`,
    '--fsync=1',
    `--size=${8 << 20}`,
    '--time_based',
    '--runtime=2500ms',
  ])
    assert.ok(timed.includes(arg), arg);
  const pass = fioArgs({ name: 'fill', rw: 'write', blockBytes: 1 << 20, iodepth: 8, fsync: false }, uri);
  assert.ok(pass.includes('--bs=1048576') && pass.includes('--output-format=json'));
  assert.ok(!pass.some((arg) => arg.startsWith('--fsync') || arg.startsWith('--size') || arg === '--time_based'));
});
