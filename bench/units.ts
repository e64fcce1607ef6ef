// How the bench writes sizes in its figures, logs and notes.

const mebibyte = 1 << 20;
const gibibyte = 1 << 30;

/** Bytes as MiB with `fractionDigits` decimals: `mib(1572864)` is "1.5 MiB". */
export function mib(bytes: number, fractionDigits = 1): string {
  return `${(bytes / mebibyte).toFixed(fractionDigits)} MiB`;
}

/** A volume's size in whole GiB from 1 GiB up, else in whole MiB. */
export function volumeSizeLabel(sizeBytes: number): string {
  return sizeBytes >= gibibyte
    ? `${(sizeBytes / gibibyte).toFixed(0)} GiB`
    : `${(sizeBytes / mebibyte).toFixed(0)} MiB`;
}
