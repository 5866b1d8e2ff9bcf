/**
 * The human side of bench:service's output: one row per run (saturation by a C tool or our generator, or an
 * open-loop fixed rate), with a note saying how it was measured and who was busy, then a table.
 */
import type { LoadResult } from './loadgen.ts';
import type { CpuShare } from './machine.ts';
import type { ToolResult } from './tools.ts';

/** A generator result plus who used the CPU during it. */
export type Measured = LoadResult & { cpu: CpuShare };

/** Who used the CPU, in % of one core. */
export const cpuNote = (cpu: CpuShare, load: string) =>
  `cpu (% of a core): target ${Math.round(cpu.targetPct)}, ${load} ${Math.round(cpu.loadPct)}, ` +
  `other processes ${Math.round(cpu.othersPct)}`;

export interface Row {
  target: string;
  run: string;
  offeredPerS: number;
  achievedPerS: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  note: string;
}

export const ms = (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '-');
export const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
export const rateLabel = (rate: number) => (rate % 1000 === 0 ? `${rate / 1000}k` : String(rate));

/**
 * The target fell behind the offered rate: more than 3% short of it, requests left unanswered, or more than
 * 10% of requests finding all connections busy (a backlog building up in the generator's queue).
 */
export const isOverloaded = (r: LoadResult) =>
  r.unfinished > 0 || r.achievedPerS < 0.97 * r.offeredPerS || r.queuedPct > 10;

export function openRow(target: string, r: Measured): Row {
  const notes = [
    isOverloaded(r)
      ? `OVERLOADED: the target fell behind the offered rate (${Math.round(r.queuedPct)}% of requests found all connections busy)` +
        (r.unfinished > 0 ? ` and left ${int(r.unfinished)} unanswered (percentiles are lower bounds)` : '')
      : '',
    r.errors > 0 ? `${int(r.errors)} errors, e.g. ${r.errorSample}` : '',
    r.connectionsLost > 0 ? `${r.connectionsLost} connections lost: ${r.errorSample}` : '',
    `from the actual send p99 ${ms(r.serviceTime.p99Ms)} ms`,
    `sent after due time p99 ${ms(r.sendLag.p99Ms)} ms, of it the generator's own lateness p99 ${ms(r.generatorLag.p99Ms)} ms`,
    cpuNote(r.cpu, 'generator'),
  ];
  return measuredRow(
    target,
    `open loop ${rateLabel(r.offeredPerS)}/s, ${r.connections} conns`,
    r.offeredPerS,
    r,
    notes,
  );
}

export function closedRow(target: string, run: string, r: Measured): Row {
  const notes = [
    'closed loop, latency from send',
    r.errors > 0 ? `${int(r.errors)} errors, e.g. ${r.errorSample}` : '',
    r.connectionsLost > 0 ? `${r.connectionsLost} connections lost: ${r.errorSample}` : '',
    cpuNote(r.cpu, 'generator'),
  ];
  return measuredRow(target, run, Number.NaN, r, notes);
}

/** A row of one of our generator's runs: its throughput and latency percentiles, and the notes that apply. */
function measuredRow(target: string, run: string, offeredPerS: number, r: Measured, notes: string[]): Row {
  return {
    target,
    run,
    offeredPerS,
    achievedPerS: r.achievedPerS,
    p50Ms: r.latency.p50Ms,
    p99Ms: r.latency.p99Ms,
    p999Ms: r.latency.p999Ms,
    maxMs: r.latency.maxMs,
    note: notes.filter(Boolean).join('; '),
  };
}

export function toolRow(target: string, r: ToolResult, cpu: CpuShare, note = ''): Row {
  const notes = [
    Number.isFinite(r.p99Ms)
      ? 'closed loop, p99 from send (coordinated omission not corrected)'
      : 'closed loop',
    r.errors > 0 ? `${int(r.errors)} errors` : '',
    note,
    cpuNote(cpu, 'tool'),
  ];
  return {
    target,
    run: r.tool,
    offeredPerS: Number.NaN,
    achievedPerS: r.opsPerS,
    p50Ms: Number.NaN,
    p99Ms: r.p99Ms,
    p999Ms: Number.NaN,
    maxMs: Number.NaN,
    note: notes.filter(Boolean).join('; '),
  };
}

export function printTable(rows: readonly Row[], preamble: string): void {
  const header = ['target', 'run', 'offered/s', 'achieved/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms'];
  const cells = rows.map((r) => [
    r.target,
    r.run,
    Number.isFinite(r.offeredPerS) ? int(r.offeredPerS) : '',
    int(r.achievedPerS),
    ms(r.p50Ms),
    ms(r.p99Ms),
    ms(r.p999Ms),
    ms(r.maxMs),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c.map((v, i) => (i < 2 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  console.log(`\n${preamble}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  rows.forEach((r, i) => {
    console.log(line(cells[i]));
    if (r.note) console.log(`${' '.repeat(widths[0] + 4)}${r.note}`);
  });
}
