// Moved to harness/adapter/ (adapterSut.ts and its pieces); this re-export stays until its importers move.
export { AdapterSut } from './adapter/adapterSut.ts';
export type { AdapterSutOptions } from './adapter/adapterSutOptions.ts';
export type { RawAnswer } from './adapter/answers.ts';
export { ProtocolError } from './adapter/protocolError.ts';
export { makeTrackedTemporaryDir, removeTemporaryDir, removeTemporaryDirs } from './adapter/temporaryDirs.ts';
