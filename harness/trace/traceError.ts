// A trace that is not valid: E_BAD_REQUEST with the file and line, before anything runs.

export class TraceError extends Error {
  readonly code = 'E_BAD_REQUEST';

  constructor(
    readonly file: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${file}:${line}: E_BAD_REQUEST: ${detail}`);
    this.name = 'TraceError';
  }
}
