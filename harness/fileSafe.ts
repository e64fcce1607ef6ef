// A name made safe for a file name: runs of anything but letters and digits
// become one dash, lower case (failure traces are named after what failed).

export function fileSafe(text: string): string {
  return text
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
}
