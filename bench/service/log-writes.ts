/**
 * How long balance-gate's log spent in its own group-commit writes during a run, read from the service's
 * `/metrics` (the `engram_wal_flush_duration_seconds` histogram: issue of a group's write to the event loop
 * seeing it durable) before and after the run. bench:engine reports the same for the embedded store.
 *
 * Why: a request acknowledged at `disk` waits out the write in progress when it arrives, then its own. If
 * the log spends 1% of a run's time in writes over 2 ms, about 1% of the requests arrive during one, and the
 * run's p99 cannot be under 2 ms whatever the service does on the CPU. The share printed beside the p99
 * says whether the disk or the service set it.
 */

const METRIC = 'engram_wal_flush_duration_seconds';

/** Cumulative counts by upper bound (seconds), as Prometheus histograms expose them, plus count and sum. */
export interface FlushHistogram {
  buckets: { le: number; count: number }[];
  count: number;
  sumS: number;
}

/** Parses the flush-duration histogram out of a Prometheus text exposition; throws if it is absent. */
export function parseFlushHistogram(text: string): FlushHistogram {
  const buckets: { le: number; count: number }[] = [];
  let count = Number.NaN;
  let sumS = Number.NaN;
  for (const line of text.split('\n')) {
    if (!line.startsWith(METRIC)) continue;
    const bucket = /^engram_wal_flush_duration_seconds_bucket\{le="([^"]+)"\} (\S+)$/.exec(line);
    if (bucket) {
      buckets.push({
        le: bucket[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(bucket[1]),
        count: Number(bucket[2]),
      });
      continue;
    }
    const total = /^engram_wal_flush_duration_seconds_(count|sum) (\S+)$/.exec(line);
    if (total?.[1] === 'count') count = Number(total[2]);
    else if (total?.[1] === 'sum') sumS = Number(total[2]);
  }
  if (buckets.length === 0 || Number.isNaN(count) || Number.isNaN(sumS)) {
    throw new Error(`the metrics text has no ${METRIC} histogram`);
  }
  buckets.sort((a, b) => a.le - b.le);
  return { buckets, count, sumS };
}

export interface LogWrites {
  writes: number;
  /** Writes longer than `thresholdMs` (to the histogram's resolution: the bucket bound at or above it). */
  writesOver: number;
  meanMs: number;
  /**
   * Share of the window spent in writes longer than `thresholdMs`, counting each such write at its bucket's
   * lower bound: a lower bound of the true share.
   */
  timeShareOver: number;
}

/**
 * What the log wrote between two scrapes `elapsedMs` apart. `thresholdMs` must be one of the histogram's
 * bucket bounds (2 ms is), so that "over it" is exact in count.
 */
export function logWritesBetween(
  before: FlushHistogram,
  after: FlushHistogram,
  elapsedMs: number,
  thresholdMs = 2,
): LogWrites {
  const thresholdS = thresholdMs / 1000;
  const bounds = after.buckets.map((b) => b.le);
  if (!bounds.some((le) => Math.abs(le - thresholdS) < 1e-12)) {
    throw new RangeError(`${thresholdMs} ms is not a bucket bound of ${METRIC} (${bounds.join(', ')} s)`);
  }
  const countAt = (h: FlushHistogram, le: number) => h.buckets.find((b) => b.le === le)?.count ?? 0;
  // Cumulative counts of the window, then each bucket's own: (previous bound, this bound].
  const cumulative = bounds.map((le) => countAt(after, le) - countAt(before, le));
  let overMs = 0;
  let writesOver = 0;
  for (let i = 1; i < bounds.length; i++) {
    const lowerS = bounds[i - 1];
    if (lowerS < thresholdS - 1e-12) continue;
    const inBucket = cumulative[i] - cumulative[i - 1];
    writesOver += inBucket;
    overMs += inBucket * lowerS * 1000;
  }
  const writes = after.count - before.count;
  return {
    writes,
    writesOver,
    meanMs: writes > 0 ? ((after.sumS - before.sumS) * 1000) / writes : Number.NaN,
    timeShareOver: elapsedMs > 0 ? overMs / elapsedMs : Number.NaN,
  };
}

/** Scrapes a balance-gate's flush histogram. */
export async function scrapeFlushHistogram(port: number): Promise<FlushHistogram> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await response.text();
  if (response.status !== 200)
    throw new Error(`GET /metrics answered ${response.status}: ${text.slice(0, 200)}`);
  return parseFlushHistogram(text);
}
