// `cowmap serve` as a script, for impl/nbd/nbd.test.ts (serveScript) until it runs
// bin/cowmap.js serve itself: node --import tsx impl/nbd/runServe.ts DIR ...
import { main } from '../../bin/main.ts';

process.exitCode = await main(['serve', ...process.argv.slice(2)]);
