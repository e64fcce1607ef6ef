#!/usr/bin/env node
// The `cowmap` command. The sources are TypeScript, run through tsx's loader
// so that users and CI need no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
