// Moved to harness/adapter/ (adapterServer.ts, serveAdapter.ts); this re-export stays until its importers move.
export { failpointExitCode } from './adapter/adapterServer.ts';
export { serveAdapter } from './adapter/serveAdapter.ts';
