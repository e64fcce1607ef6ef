// Commands printed for a user to paste into a POSIX shell (replay and conform
// commands in failures and saved traces): a word is quoted only when it must be.

export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

export function shellLine(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}
