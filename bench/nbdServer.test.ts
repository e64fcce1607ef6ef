import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startServer } from './nbdServer.ts';

// A stand-in server: a shell that leaves a child of its own (the `sleep`, as npx would leave the real server)
// and runs a node listener that prints the sleep's pid.
const listener =
  "const s=require('net').createServer(c=>c.end());" +
  "s.listen(Number(process.argv[1]),'127.0.0.1',()=>console.log('sleep pid '+process.argv[2]));" +
  "process.on('SIGTERM',()=>{console.log('stopping');process.exit(0)})";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('startServer waits for the port; stop ends the whole process group, children left behind included', async () => {
  const clock = process.hrtime.bigint();
  const script = `sleep 60 & exec "${process.execPath}" -e "${listener}" "$0" "$!"`;
  const server = await startServer('stand-in', 'sh', (port) => ['-c', script, String(port)], process.cwd(), clock);
  // Ready means listening; the line that says so may follow a moment later.
  for (let tries = 0; server.lines.length === 0 && tries < 100; tries++) await new Promise((r) => setTimeout(r, 20));
  const match = /^sleep pid (\d+)$/.exec(server.lines[0]?.text ?? '');
  assert.ok(match !== null, `the stand-in printed ${JSON.stringify(server.lines)}`);
  const sleepPid = Number(match[1]);
  assert.ok(alive(sleepPid), 'the sleep runs while the server does');
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null, killed: false });
  for (let tries = 0; alive(sleepPid) && tries < 100; tries++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(!alive(sleepPid), 'the TERM to the group reached the sleep too');
  assert.ok(server.lines[0]!.atSeconds >= 0);
});

test('startServer fails, saying so, when the server exits before it listens', async () => {
  const clock = process.hrtime.bigint();
  await assert.rejects(
    startServer('quitter', 'sh', () => ['-c', 'echo no such export >&2; exit 3'], process.cwd(), clock),
    /quitter exited before it listened .*"code":3.*no such export/,
  );
});
