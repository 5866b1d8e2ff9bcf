/**
 * File names that carry an LSN (`wal-<lsn>.log`, `snap-<lsn>.snap`): 20 zero-padded decimal digits, so a
 * plain name sort is LSN order.
 */
const LSN_DIGITS = 20;

export function lsnFileName(prefix: string, lsn: number, suffix: string): string {
  return `${prefix}${String(lsn).padStart(LSN_DIGITS, '0')}${suffix}`;
}

/** The LSN in a name of that shape, or undefined if the name is not one. */
export function parseLsnFileName(name: string, prefix: string, suffix: string): number | undefined {
  if (!name.startsWith(prefix) || !name.endsWith(suffix)) return undefined;
  const digits = name.slice(prefix.length, name.length - suffix.length);
  return digits.length === LSN_DIGITS && /^\d+$/.test(digits) ? Number(digits) : undefined;
}
