/**
 * Output helpers for the benchmarks: an aligned table for people (stdout or stderr) and the final
 * single-line JSON object for machines (the last line of stdout).
 */

export type Cell = string | number | undefined | null;

export interface Column<R> {
  header: string;
  value: (row: R) => Cell;
  /** Decimals for numbers (default: 0 for |n| >= 1,000, else 3). */
  digits?: number;
  /** Default: left for the first column, right for the others. */
  align?: 'left' | 'right';
}

/** A number for a table: '-' when missing or not finite. */
export function fmt(value: Cell, digits?: number): string {
  if (value === undefined || value === null) return '-';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return '-';
  const d = digits ?? (Math.abs(value) >= 1000 ? 0 : 3);
  return value.toFixed(d);
}

/** The rows as an aligned text table with a header line and a rule under it. */
export function formatTable<R>(columns: readonly Column<R>[], rows: readonly R[]): string {
  const cells = rows.map((row) => columns.map((c) => fmt(c.value(row), c.digits)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i].length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) =>
        (columns[i].align ?? (i === 0 ? 'left' : 'right')) === 'left'
          ? v.padEnd(widths[i])
          : v.padStart(widths[i]),
      )
      .join('  ')
      .trimEnd();
  return [
    line(columns.map((c) => c.header)),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map((r) => line(r)),
  ].join('\n');
}

export function printTable<R>(
  columns: readonly Column<R>[],
  rows: readonly R[],
  out: (text: string) => void = (text) => console.log(text),
): void {
  out(formatTable(columns, rows));
}

/**
 * One line of JSON: non-finite numbers become null (JSON has no NaN), other numbers keep at most `digits`
 * decimals (default 4), nested objects and arrays are kept.
 */
export function jsonLine(figures: Record<string, unknown>, digits = 4): string {
  const scale = 10 ** digits;
  return JSON.stringify(figures, (_key, value) => {
    if (typeof value !== 'number') return value;
    if (!Number.isFinite(value)) return null;
    return Number.isInteger(value) ? value : Math.round(value * scale) / scale;
  });
}

/** Prints the final JSON line on stdout. */
export function printJsonLine(figures: Record<string, unknown>, digits = 4): void {
  console.log(jsonLine(figures, digits));
}

/** Latency columns for rows that hold a summary with p50/p99/p999/max in ms. */
export function latencyColumns<R>(
  pick: (row: R) => { p50Ms: number; p99Ms: number; p999Ms: number; maxMs: number } | undefined,
  prefix = '',
): Column<R>[] {
  return [
    { header: `${prefix}p50 ms`, value: (r) => pick(r)?.p50Ms, digits: 3 },
    { header: `${prefix}p99 ms`, value: (r) => pick(r)?.p99Ms, digits: 3 },
    { header: `${prefix}p999 ms`, value: (r) => pick(r)?.p999Ms, digits: 3 },
    { header: `${prefix}max ms`, value: (r) => pick(r)?.maxMs, digits: 3 },
  ];
}
