// What an implementation did wrong at the level of the adapter protocol
// (docs/adapter.md): not a verdict on its volume, but a reason no verdict can be
// reached. The message says what, and ends with the tail of its standard error.

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    message: string,
    /** The tail of the implementation's standard error. */
    readonly stderr: string = '',
  ) {
    super(
      stderr.length > 0
        ? `${message}\n--- its standard error (the last ${Buffer.byteLength(stderr)} bytes) ---\n${stderr.trimEnd()}`
        : `${message} (its standard error was empty)`,
    );
  }
}
