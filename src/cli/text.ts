/** Plain-text helpers for human output: aligned tables, byte sizes, timestamps. */

/** Left-aligns text columns and right-aligns numeric ones (a column is numeric if every cell is). */
export function table(header: string[], rows: (string | number)[][], indent = '  '): string {
  const cells = rows.map((row) => row.map((cell) => String(cell)));
  const numeric = header.map((_, c) => rows.length > 0 && rows.every((row) => typeof row[c] === 'number'));
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c].length)));
  const line = (row: string[]) =>
    indent +
    row
      .map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...cells.map(line)].join('\n')}\n`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Latest record time we accept as a plausible timestamp (year ~5138); beyond it the f64 is not one. */
const TIMESTAMP_MS_MAX = 1e14;

/** ISO form of a record time, or undefined when the value cannot be one (not a command record). */
export function isoTime(ms: number): string | undefined {
  if (!Number.isFinite(ms) || ms <= 0 || ms > TIMESTAMP_MS_MAX) return undefined;
  return new Date(ms).toISOString();
}

export function lsnRange(first: number, last: number): string {
  return last < first ? '(none)' : first === last ? `${first}` : `${first}..${last}`;
}
