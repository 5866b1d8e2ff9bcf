/**
 * The conditions a bench:service run happens in, printed with its figures: how busy the cores already are
 * (other work on a shared machine makes every figure pessimistic) and what a durable append costs on the
 * disk the targets write to (the floor under every durable acknowledgement).
 */
import { closeSync, fdatasyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sleep } from './processes.ts';

/** Cumulative busy and total jiffies over all cores (/proc/stat). */
export function cpuTimes(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3] + (fields[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

export function busyPctSince(before: { busy: number; total: number }): number {
  const after = cpuTimes();
  return after.total === before.total ? 0 : (100 * (after.busy - before.busy)) / (after.total - before.total);
}

/** Share of all cores busy while this process sleeps: the load others put on the machine. */
export async function backgroundBusyPct(windowMs: number): Promise<number> {
  const before = cpuTimes();
  await sleep(windowMs);
  return busyPctSince(before);
}

/**
 * 4 KiB appends, each followed by fdatasync, to a growing file in `dir` (as an unpreallocated log does),
 * for `durationMs`; synchronous calls, so nothing but the system calls is timed.
 */
export function probeFdatasync(
  dir: string,
  durationMs: number,
): { p50Ms: number; p99Ms: number; count: number } {
  const file = path.join(dir, `fdatasync-probe-${process.pid}.bin`);
  const block = Buffer.alloc(4096, 0x5a);
  const samples: number[] = [];
  const fd = openSync(file, 'wx');
  try {
    const endMs = performance.now() + durationMs;
    for (let position = 0; performance.now() < endMs; position += block.length) {
      const t = performance.now();
      writeSync(fd, block, 0, block.length, position);
      fdatasyncSync(fd);
      samples.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.ceil(samples.length * q) - 1)];
  return { p50Ms: at(0.5), p99Ms: at(0.99), count: samples.length };
}
