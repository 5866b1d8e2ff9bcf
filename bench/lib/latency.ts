/**
 * Load drivers and latency statistics shared by the benchmarks.
 * - `saturate`: closed loop, `concurrency` requests always in flight: the maximum throughput.
 * - `offer`: open loop at a fixed rate; each latency is measured from the request's *intended* start, so a
 *   stall delays the clock of every request behind it (no coordinated omission).
 */
export interface LatencySummary {
  count: number;
  opsPerS: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export function summarize(latenciesMs: number[], elapsedMs: number): LatencySummary {
  const sorted = Float64Array.from(latenciesMs).sort();
  const at = (q: number) =>
    sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
  return {
    count: sorted.length,
    opsPerS: (sorted.length / elapsedMs) * 1000,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    p999Ms: at(0.999),
    maxMs: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
  };
}

export async function saturate<T>(
  submit: (request: T) => Promise<unknown>,
  next: () => T,
  options: { concurrency: number; durationMs: number; warmupMs?: number },
): Promise<LatencySummary> {
  const latencies: number[] = [];
  const warmupEndMs = performance.now() + (options.warmupMs ?? 0);
  const endMs = warmupEndMs + options.durationMs;
  const worker = async () => {
    let completed = 0;
    while (performance.now() < endMs) {
      const startMs = performance.now();
      await submit(next());
      if (startMs >= warmupEndMs) latencies.push(performance.now() - startMs);
      // A target that answers without real I/O (synchronous, or memory-acked) would otherwise keep this loop
      // in microtasks forever and starve the event loop, as no real client could.
      if ((++completed & 255) === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return summarize(latencies, options.durationMs);
}

export async function offer<T>(
  submit: (request: T) => Promise<unknown>,
  next: () => T,
  options: { ratePerS: number; durationMs: number; warmupMs?: number },
): Promise<LatencySummary & { offeredPerS: number }> {
  const latencies: number[] = [];
  const startMs = performance.now();
  const warmupEndMs = startMs + (options.warmupMs ?? 0);
  const endMs = warmupEndMs + options.durationMs;
  let sent = 0;
  let outstanding = 0;
  const done = (intendedMs: number, measured: boolean) => () => {
    outstanding--;
    if (measured) latencies.push(performance.now() - intendedMs);
  };
  while (performance.now() < endMs) {
    const due = Math.floor(((performance.now() - startMs) * options.ratePerS) / 1000);
    for (; sent < due; sent++) {
      const intendedMs = startMs + (sent * 1000) / options.ratePerS;
      outstanding++;
      submit(next()).then(done(intendedMs, intendedMs >= warmupEndMs));
    }
    // Sleep to the next millisecond rather than spin: on a 2-core machine a spinning generator takes the
    // CPU the system under test needs. Requests due meanwhile go out together, each timed from its due time.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  while (outstanding > 0) await new Promise((resolve) => setImmediate(resolve));
  return { ...summarize(latencies, options.durationMs), offeredPerS: options.ratePerS };
}
