// Small helpers shared by the commands: integer options and usage errors.

export function integerOption(name: string, text: string | undefined, min: number, max: number): number | null {
  if (text === undefined || !/^-?\d+$/.test(text)) {
    process.stderr.write(`E_BAD_REQUEST: ${name} needs an integer, got '${text ?? ''}'\n`);
    return null;
  }
  const value = Number(text);
  if (value < min || value > max) {
    process.stderr.write(`E_BAD_REQUEST: ${name} must be in ${min}..${max}, got ${value}\n`);
    return null;
  }
  return value;
}

export function usageError(command: string, detail?: string): number {
  if (detail !== undefined) process.stderr.write(`E_BAD_REQUEST: ${detail}\n`);
  process.stderr.write(`see: cowmap --help (${command})\n`);
  return 2;
}
