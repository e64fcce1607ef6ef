// The NBD section's tools: fio with its nbd engine and nbdkit are needed (the
// section is skipped, saying which is missing, without them); qemu-nbd and nbdcopy
// are optional (their figures read "–" without them).

import { spawnSync } from 'node:child_process';

export interface NbdTools {
  /** fio's version when it is installed and lists the nbd engine. */
  readonly fio: string | null;
  readonly nbdkit: string | null;
  readonly qemuNbd: string | null;
  readonly nbdcopy: string | null;
}

function firstLineOf(command: string, args: readonly string[]): string | null {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000 });
  if (result.error !== undefined || result.status !== 0) return null;
  return result.stdout.trim().split('\n')[0]?.trim() ?? null;
}

function fioWithNbd(): string | null {
  const version = firstLineOf('fio', ['--version']);
  if (version === null) return null;
  const engines = spawnSync('fio', ['--enghelp'], { encoding: 'utf8', timeout: 30_000 });
  const listed = (engines.stdout ?? '').split('\n').some((line) => line.trim() === 'nbd');
  return listed ? version : null;
}

export function findNbdTools(): NbdTools {
  return {
    fio: fioWithNbd(),
    nbdkit: firstLineOf('nbdkit', ['--version']),
    qemuNbd: firstLineOf('qemu-nbd', ['--version']),
    nbdcopy: firstLineOf('nbdcopy', ['--version']),
  };
}

/** Why the section cannot run (the missing tools, in one line), or null when it can. */
export function missingNbdTools(tools: NbdTools): string | null {
  const missing = [
    ...(tools.fio === null ? ["fio with its nbd engine (fio --enghelp lists 'nbd'; Debian's fio 3.33 has it)"] : []),
    ...(tools.nbdkit === null ? ['nbdkit'] : []),
  ];
  return missing.length === 0 ? null : `needs ${missing.join(' and ')}`;
}

/** The tools' versions in one line, for the section's notes. */
export function describeNbdTools(tools: NbdTools): string {
  return (
    `${tools.fio ?? 'no fio'}; ${tools.nbdkit ?? 'no nbdkit'}; ${tools.qemuNbd ?? 'no qemu-nbd'}; ` +
    `${tools.nbdcopy ?? 'no nbdcopy'}`
  );
}
