/**
 * The CPU floor of an acknowledgement's latency on this machine: a thread that never blocks still loses the
 * CPU now and then (the hypervisor, the host, other processes). The probe spins on the clock for a while
 * and records every gap between two consecutive readings longer than `gapMs`: time this thread could not
 * run. No p99 of a process on this machine can be below such gaps where they fall often enough; with
 * `loadOtherCores`, a second thread spins meanwhile, as a load generator or the log's threads do.
 *
 * Seen on these 2-core VMs: 12 gaps over 0.5 ms in 5 s, the longest 6.5 ms, with the other core idle; 44,
 * up to 7.4 ms, with it busy.
 */
import { Worker } from 'node:worker_threads';

export interface CpuGapProbeOptions {
  /** How long to spin (default 2,000 ms). */
  durationMs?: number;
  /** The shortest gap counted (default 0.5 ms). */
  gapMs?: number;
  /** Spin a worker thread meanwhile, so the other core is busy too (default false). */
  loadOtherCores?: boolean;
}

export interface CpuGapProbeResult {
  durationMs: number;
  /** Gaps over `gapMs` per second. */
  gapsPerS: number;
  /** The longest gap. */
  maxGapMs: number;
  /** Time lost in counted gaps, per second of spinning. */
  lostMsPerS: number;
}

export async function probeCpuGaps(options: CpuGapProbeOptions = {}): Promise<CpuGapProbeResult> {
  const durationMs = options.durationMs ?? 2000;
  const gapMs = options.gapMs ?? 0.5;
  const loader = options.loadOtherCores
    ? new Worker(`const end = Date.now() + ${durationMs + 500}; while (Date.now() < end);`, { eval: true })
    : undefined;
  if (loader) await new Promise((resolve) => loader.once('online', resolve));
  try {
    let gaps = 0;
    let maxGapMs = 0;
    let lostMs = 0;
    const startMs = performance.now();
    const endMs = startMs + durationMs;
    let last = startMs;
    while (last < endMs) {
      const now = performance.now();
      const gap = now - last;
      if (gap > gapMs) {
        gaps++;
        lostMs += gap;
        if (gap > maxGapMs) maxGapMs = gap;
      }
      last = now;
    }
    const seconds = (last - startMs) / 1000;
    return { durationMs: last - startMs, gapsPerS: gaps / seconds, maxGapMs, lostMsPerS: lostMs / seconds };
  } finally {
    await loader?.terminate();
  }
}
