// Output that must reach standard output before the command reports its status.

/** Writes bytes to stdout and waits until the stream has taken them. */
export function writeStdout(bytes: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(bytes, (error) => (error ? reject(error) : resolve()));
  });
}
