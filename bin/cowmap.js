#!/usr/bin/env node
// The `cowmap` command. The sources are TypeScript, run through tsx's loader
// so that users and CI need no build step. bin/main.ts turns every failure into
// one coded line on stderr; this file only guards the start: the working
// directory (tsx's esbuild asks for it as it loads) and the loading itself.

try {
  try {
    process.cwd();
  } catch (error) {
    process.stderr.write(`E_IO: getcwd: ${error?.code ?? 'ENOENT'}: the working directory no longer exists\n`);
    process.exit(1);
  }
  const { register } = await import('tsx/esm/api');
  register();
  const { runProcess } = await import('./main.ts');
  await runProcess(process.argv.slice(2));
} catch (error) {
  // Only a broken installation gets here (tsx or a source file that does not load):
  // runProcess reports every failure of a command itself.
  process.stderr.write(
    `E_INTERNAL: cowmap could not start: ${String(error instanceof Error ? error.message : error).split('\n', 1)[0]}\n`,
  );
  if (process.env.COWMAP_DEBUG === '1' && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exitCode = 1;
}
