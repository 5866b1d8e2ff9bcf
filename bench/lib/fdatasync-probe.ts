/**
 * The physical floor of a durable acknowledgement on a disk: the latency of appending a block (4 KiB) to a
 * file and fdatasync'ing it, one after the other, in a given directory (use the directory the systems under
 * test write to: /tmp here is the real disk; /dev/shm is tmpfs, where fdatasync costs ~1 µs and proves
 * nothing). The file grows with every append, as a write-ahead log without preallocation does, so each
 * fdatasync also makes the new size durable; with `preallocated`, the file is zero-filled first and the
 * blocks overwrite it (wrapping around), as Engram's preallocated segments are written (decision 006).
 *
 * By default the write and fdatasync are synchronous system calls timed on the calling thread (the raw cost,
 * no event loop in it; the probe blocks the event loop while it runs). `async: true` goes through Node's
 * thread pool (`FileHandle.write` + `datasync`), as an async log writer does, to show what that path adds.
 *
 * The usual percentiles count syncs; a request's latency is charged by time. A sync that stalls 60 ms
 * holds up every request that arrives meanwhile (6,000 at 100,000/s), and it counts once among the syncs.
 * So the probe also reports the time-weighted p99: the length d such that syncs no longer than d fill 99% of
 * the probe's sync time, i.e. a request arriving at a random instant finds the disk busy with a sync of at
 * most d with probability 0.99. No log on that disk can acknowledge a durable write at a request-weighted
 * p99 below it; its share of time in syncs over 2 ms says how far above 2 ms that floor sits.
 */
import { closeSync, constants, fdatasyncSync, promises as fsp, openSync, rmSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { Histogram, type LatencySummary } from './latency.ts';

export interface FdatasyncProbeOptions {
  /** Stop after this many appends; with `durationMs`, whichever comes first. */
  ops?: number;
  /** Stop after this long (default 2,000 ms when `ops` is not given). */
  durationMs?: number;
  /** Bytes per append (default 4,096). */
  blockBytes?: number;
  /** Through the thread pool instead of synchronous calls (default false). */
  async?: boolean;
  /** Unmeasured appends first (default 20). */
  warmupOps?: number;
  /**
   * Sleep this long (a timer, so the thread really idles) after each append (default 0: back to back). On this
   * VM an fdatasync issued after an idle gap is several times slower than one issued back to back, so the
   * floor for an open-loop (spaced) load is the probe with a gap, not without.
   */
  gapMs?: number;
  /** Overwrite a zero-filled file instead of appending (default false). */
  preallocated?: boolean;
  /** Size of that file; the blocks wrap around inside it (default 64 MiB, a segment's size). */
  preallocatedBytes?: number;
}

export interface FdatasyncProbeResult extends LatencySummary {
  dir: string;
  blockBytes: number;
  async: boolean;
  gapMs: number;
  preallocated: boolean;
  minMs: number;
  meanMs: number;
  p90Ms: number;
  elapsedMs: number;
  /** See the module comment: the p99 of the sync a random instant falls in. */
  timeWeightedP99Ms: number;
  /** Share of the measured time spent in syncs longer than 2 ms. */
  timeShareOver2Ms: number;
}

/**
 * The q-quantile of `durationsMs` weighted by their length: the smallest d such that the durations <= d sum
 * to at least q of the total. NaN when empty.
 */
export function timeWeightedQuantile(durationsMs: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(durationsMs).sort();
  let total = 0;
  for (const d of sorted) total += d;
  if (sorted.length === 0 || !(total > 0)) return Number.NaN;
  let covered = 0;
  for (const d of sorted) {
    covered += d;
    if (covered >= q * total) return d;
  }
  return sorted[sorted.length - 1];
}

/** The share of `elapsedMs` spent in durations longer than `thresholdMs`. */
export function timeShareOver(
  durationsMs: ArrayLike<number>,
  thresholdMs: number,
  elapsedMs: number,
): number {
  let overMs = 0;
  for (let i = 0; i < durationsMs.length; i++) if (durationsMs[i] > thresholdMs) overMs += durationsMs[i];
  return overMs / elapsedMs;
}

/** Latency of `blockBytes` appends + fdatasync in `dir`; a number is the old `durationMs` argument. */
export async function probeFdatasync(
  dir: string,
  options: FdatasyncProbeOptions | number = {},
): Promise<FdatasyncProbeResult> {
  const o = typeof options === 'number' ? { durationMs: options } : options;
  const ops = o.ops ?? Number.POSITIVE_INFINITY;
  const durationMs = o.durationMs ?? (o.ops === undefined ? 2000 : Number.POSITIVE_INFINITY);
  const blockBytes = o.blockBytes ?? 4096;
  const warmupOps = o.warmupOps ?? 20;
  const useAsync = o.async ?? false;
  const gapMs = o.gapMs ?? 0;
  const idle = () => new Promise((resolve) => setTimeout(resolve, gapMs));
  const file = path.join(dir, `fdatasync-probe-${process.pid}-${Date.now()}.bin`);
  const block = Buffer.alloc(blockBytes, 0x5a);
  const histogram = new Histogram();
  const durationsMs: number[] = [];
  const measure = (ms: number) => {
    histogram.recordMs(ms);
    durationsMs.push(ms);
  };
  let position = 0;
  let startMs = performance.now();
  const preallocated = o.preallocated ?? false;
  // The zero-filled file exists already; an append probe creates its own.
  const flags = constants.O_WRONLY | (preallocated ? 0 : constants.O_CREAT | constants.O_EXCL);
  const preallocatedBytes = Math.max(blockBytes, o.preallocatedBytes ?? 64 * 1024 * 1024);
  // Appends grow the file without end; overwrites wrap around inside the zero-filled file.
  const advance = () => {
    position += blockBytes;
    if (preallocated && position + blockBytes > preallocatedBytes) position = 0;
  };
  if (preallocated) await zeroFill(file, preallocatedBytes);
  try {
    if (useAsync) {
      const handle = await fsp.open(file, flags, 0o644);
      try {
        for (let i = 0; ; i++) {
          if (i === warmupOps) startMs = performance.now();
          const measured = i >= warmupOps;
          if (measured && (histogram.count >= ops || performance.now() - startMs >= durationMs)) break;
          const t = performance.now();
          await handle.write(block, 0, blockBytes, position);
          await handle.datasync();
          if (measured) measure(performance.now() - t);
          advance();
          if (gapMs > 0) await idle();
        }
      } finally {
        await handle.close();
      }
    } else {
      const fd = openSync(file, flags, 0o644);
      try {
        for (let i = 0; ; i++) {
          if (i === warmupOps) startMs = performance.now();
          const measured = i >= warmupOps;
          if (measured && (histogram.count >= ops || performance.now() - startMs >= durationMs)) break;
          const t = performance.now();
          writeSync(fd, block, 0, blockBytes, position);
          fdatasyncSync(fd);
          if (measured) measure(performance.now() - t);
          advance();
          if (gapMs > 0) await idle();
        }
      } finally {
        closeSync(fd);
      }
    }
  } finally {
    rmSync(file, { force: true });
  }
  const elapsedMs = performance.now() - startMs;
  const s = histogram.summary();
  return {
    ...s,
    opsPerS: (s.count / elapsedMs) * 1000,
    dir,
    blockBytes,
    async: useAsync,
    gapMs,
    preallocated,
    elapsedMs,
    timeWeightedP99Ms: timeWeightedQuantile(durationsMs, 0.99),
    timeShareOver2Ms: timeShareOver(durationsMs, 2, elapsedMs),
  };
}

/** Creates `file` as `bytes` of zeros, written and fdatasync'd (its blocks allocated). */
async function zeroFill(file: string, bytes: number): Promise<void> {
  const handle = await fsp.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
  try {
    const zeros = Buffer.alloc(1024 * 1024);
    for (let at = 0; at < bytes; at += zeros.length)
      await handle.write(zeros, 0, Math.min(zeros.length, bytes - at), at);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
