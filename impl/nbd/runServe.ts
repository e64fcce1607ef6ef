// `cowmap serve` without the command registry (bin/main.ts), for the tests and for
// use before the command is registered: node --import tsx impl/nbd/runServe.ts DIR ...
import { command } from '../../bin/commands/serve.ts';

process.exitCode = await command.run(process.argv.slice(2));
