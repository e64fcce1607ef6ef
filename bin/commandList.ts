// Every `cowmap` command's description, in the order `cowmap --help` lists them.
// Descriptions are light (bin/command.ts): the implementations load when they run.

import type { CommandDescription } from './command.ts';
import { description as adapter } from './descriptions/adapter.ts';
import { description as conform } from './descriptions/conform.ts';
import { description as crashes } from './descriptions/crashes.ts';
import { description as cycle } from './descriptions/cycle.ts';
import { description as diagram } from './descriptions/diagram.ts';
import { description as explore } from './descriptions/explore.ts';
import { description as fuzz } from './descriptions/fuzz.ts';
import { description as init } from './descriptions/init.ts';
import { description as mutants } from './descriptions/mutants.ts';
import { description as read } from './descriptions/read.ts';
import { description as receive } from './descriptions/receive.ts';
import { description as record } from './descriptions/record.ts';
import { description as replay } from './descriptions/replay.ts';
import { description as scrub } from './descriptions/scrub.ts';
import { description as serve } from './descriptions/serve.ts';
import { description as status } from './descriptions/status.ts';
import { description as verify } from './descriptions/verify.ts';
import { description as write } from './descriptions/write.ts';

export const commandList: readonly CommandDescription[] = [
  init,
  write,
  read,
  cycle,
  status,
  scrub,
  replay,
  explore,
  fuzz,
  crashes,
  mutants,
  adapter,
  record,
  conform,
  verify,
  serve,
  receive,
  diagram,
];

/** The command named `name`, or undefined (own names only: `constructor` is no command). */
export function commandNamed(name: string): CommandDescription | undefined {
  return commandList.find((description) => description.name === name);
}
