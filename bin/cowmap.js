#!/usr/bin/env node
// The `cowmap` command. The sources are TypeScript, run through tsx's loader
// so that users and CI need no build step. bin/main.ts turns every failure into
// one coded line on stderr; this file only guards the loading itself.
import { register } from 'tsx/esm/api';

try {
  register();
  const { runProcess } = await import('./main.ts');
  await runProcess(process.argv.slice(2));
} catch (error) {
  // Only a broken installation gets here (tsx or a source file that does not load).
  process.stderr.write(`E_INTERNAL: cowmap could not start: ${String(error instanceof Error ? error.message : error).split('\n', 1)[0]}\n`);
  if (process.env.COWMAP_DEBUG === '1' && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exitCode = 1;
}
