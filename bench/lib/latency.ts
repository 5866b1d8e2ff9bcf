/**
 * Latency recording and the two load drivers shared by the benchmarks, over any
 * `submit(request) => Promise<unknown>`.
 *
 * - `Histogram`: log-linear buckets over nanoseconds (exact below 256 ns, then 128 buckets per power of two),
 *   so a recorded value is off by at most 1/256 of itself (< 0.4%); min, max and mean are exact. Recording is
 *   a few integer operations and one array increment; memory is fixed (~47 KiB) however long the run.
 * - `saturate`: closed loop. `concurrency` requests always in flight, for `durationMs` (after `warmupMs`) or
 *   `requests` measured requests: the maximum throughput, and the latency at that throughput.
 * - `offer`: open loop at a fixed offered rate. Request i is *intended* to start at start + i/rate whatever
 *   happened before it; its latency is measured from that intended time, so a stall of the system (or of the
 *   event loop, e.g. a synchronous commit) counts against every request that should have been sent meanwhile
 *   (no coordinated omission). Requests due are sent together once per timer tick (~1 ms), so the generator
 *   costs one timer per millisecond, not one per request; how late it sent them (its own share of the measured
 *   latency, up to a tick) is reported as `sendLag*`, and the latency from the actual send as `service*`.
 *
 * Throughput counts completions inside the measured window only. Latencies are those of requests started
 * (closed loop) or intended (open loop) inside the window; the drivers wait for all of them, so slow
 * stragglers at the end are counted, not dropped.
 */

/** The figures every benchmark prints; `opsPerS` is the throughput achieved in the measured window. */
export interface LatencySummary {
  count: number;
  opsPerS: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export interface HistogramSummary {
  count: number;
  minMs: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128 buckets per power of two
const LINEAR = SUB * 2; // values below 256 ns have a bucket each
const MAX_EXPONENT = 52;
const BUCKETS = LINEAR + (MAX_EXPONENT - SUB_BITS) * SUB;
const TWO_32 = 2 ** 32;
const MAX_NS = 2 ** 53 - 1;

function bucketOf(ns: number): number {
  if (ns < LINEAR) return ns;
  const e = ns < TWO_32 ? 31 - Math.clz32(ns) : 63 - Math.clz32(Math.floor(ns / TWO_32));
  const shift = e - SUB_BITS;
  // In [128, 256). An integer shift below 2^32 ns (4.3 s), where nearly every recorded latency falls.
  const sub = ns < TWO_32 ? ns >>> shift : Math.floor(ns / 2 ** shift);
  return LINEAR + (e - SUB_BITS - 1) * SUB + (sub - SUB);
}

/** The midpoint of a bucket, in ns. */
function midpointOf(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const k = bucket - LINEAR;
  const shift = Math.floor(k / SUB) + 1;
  const sub = (k % SUB) + SUB;
  return (sub + 0.5) * 2 ** shift;
}

/** A latency histogram with bounded relative error; record in milliseconds (or nanoseconds). */
export class Histogram {
  count = 0;
  private readonly counts = new Float64Array(BUCKETS);
  private minNs = Number.POSITIVE_INFINITY;
  private maxNs = 0;
  private sumNs = 0;

  recordMs(ms: number): void {
    this.recordNs(ms * 1e6);
  }

  recordNs(value: number): void {
    let ns = Math.round(value);
    if (!(ns >= 0)) ns = 0; // negative or NaN: clock went backwards, count as 0
    if (ns > MAX_NS) ns = MAX_NS;
    this.counts[bucketOf(ns)]++;
    this.count++;
    this.sumNs += ns;
    if (ns < this.minNs) this.minNs = ns;
    if (ns > this.maxNs) this.maxNs = ns;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sumNs += other.sumNs;
    this.minNs = Math.min(this.minNs, other.minNs);
    this.maxNs = Math.max(this.maxNs, other.maxNs);
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sumNs = 0;
    this.minNs = Number.POSITIVE_INFINITY;
    this.maxNs = 0;
  }

  /** The q-quantile (0 < q <= 1) in ms: the value of rank ceil(q * count); NaN when empty. */
  quantileMs(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(this.maxNs, Math.max(this.minNs, midpointOf(i))) / 1e6;
    }
    return this.maxNs / 1e6;
  }

  get minMs(): number {
    return this.count === 0 ? Number.NaN : this.minNs / 1e6;
  }

  get maxMs(): number {
    return this.count === 0 ? Number.NaN : this.maxNs / 1e6;
  }

  get meanMs(): number {
    return this.count === 0 ? Number.NaN : this.sumNs / this.count / 1e6;
  }

  summary(): HistogramSummary {
    return {
      count: this.count,
      minMs: this.minMs,
      meanMs: this.meanMs,
      p50Ms: this.quantileMs(0.5),
      p90Ms: this.quantileMs(0.9),
      p99Ms: this.quantileMs(0.99),
      p999Ms: this.quantileMs(0.999),
      maxMs: this.maxMs,
    };
  }
}

/** Exact percentiles of a list of latencies (ms) over `elapsedMs`; for small samples. */
export function summarize(latenciesMs: readonly number[], elapsedMs: number): LatencySummary {
  const sorted = Float64Array.from(latenciesMs).sort();
  const at = (q: number) =>
    sorted.length === 0 ? Number.NaN : sorted[Math.max(0, Math.ceil(sorted.length * q) - 1)];
  return {
    count: sorted.length,
    opsPerS: (sorted.length / elapsedMs) * 1000,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    p999Ms: at(0.999),
    maxMs: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
  };
}

export type Submit<T> = (request: T) => Promise<unknown>;

/** What both drivers report. */
export interface RunSummary extends LatencySummary, HistogramSummary {
  /** Length of the measured window (ms). */
  elapsedMs: number;
  /** Requests whose promise rejected (not in the latencies). */
  errors: number;
  firstError?: string;
  histogram: Histogram;
}

export interface SaturationOptions {
  /** Requests in flight at all times (each of `concurrency` loops awaits one, then sends the next). */
  concurrency: number;
  /** Measured window after the warm-up; with `requests`, whichever ends first. */
  durationMs?: number;
  /** Measured requests after the warm-up. */
  requests?: number;
  /** Requests sent during the warm-up are not measured (default 0). */
  warmupMs?: number;
  /**
   * Each loop yields to the event loop (setImmediate) after this many requests (default 256): a system that
   * answers without real I/O (synchronous, or acked from memory) would otherwise keep the loops in
   * microtasks and starve timers and I/O callbacks, as no real client could.
   */
  yieldEvery?: number;
}

export interface SaturationResult extends RunSummary {
  concurrency: number;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Closed-loop saturation: `concurrency` requests in flight for `durationMs` or `requests`. */
export async function saturate<T>(
  submit: Submit<T>,
  next: () => T,
  options: SaturationOptions,
): Promise<SaturationResult> {
  const { concurrency } = options;
  if (!(concurrency >= 1)) throw new RangeError('concurrency must be >= 1');
  if (options.durationMs === undefined && options.requests === undefined)
    throw new RangeError('give durationMs or requests');
  const limit = options.requests ?? Number.POSITIVE_INFINITY;
  const yieldEvery = Math.max(1, options.yieldEvery ?? 256);
  const histogram = new Histogram();
  const startMs = performance.now();
  const measureStartMs = startMs + (options.warmupMs ?? 0);
  const measureEndMs =
    options.durationMs === undefined ? Number.POSITIVE_INFINITY : measureStartMs + options.durationMs;
  let started = 0;
  let completedInWindow = 0;
  let lastEndMs = measureStartMs;
  let errors = 0;
  let firstError: string | undefined;

  const loop = async () => {
    let sinceYield = 0;
    // A request starts when the one before it ended (closed loop): one clock read per request, not two.
    let t = performance.now();
    for (;;) {
      if (t >= measureEndMs) return;
      const measured = t >= measureStartMs;
      if (measured) {
        if (started >= limit) return;
        started++;
      }
      let ok = true;
      try {
        await submit(next());
      } catch (error) {
        ok = false;
        errors++;
        firstError ??= message(error);
      }
      const end = performance.now();
      if (measured) {
        if (ok) histogram.recordMs(end - t);
        if (end > lastEndMs) lastEndMs = end;
      }
      if (ok && end >= measureStartMs && end < measureEndMs) completedInWindow++;
      t = end;
      if (++sinceYield >= yieldEvery) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
        t = performance.now();
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));

  // Duration mode: completions inside the window over the window. Request-count mode (or a count reached
  // before the window ended): the measured requests over the time from the window's start to the last one.
  const byCount = started >= limit;
  const elapsedMs = byCount ? lastEndMs - measureStartMs : (options.durationMs as number);
  const completed = byCount ? histogram.count : completedInWindow;
  return {
    ...histogram.summary(),
    opsPerS: elapsedMs > 0 ? (completed / elapsedMs) * 1000 : Number.NaN,
    elapsedMs,
    errors,
    firstError,
    histogram,
    concurrency,
  };
}

export interface OpenLoopOptions {
  /** Offered requests per second. */
  ratePerS: number;
  /** Measured window after the warm-up. */
  durationMs: number;
  /** Sent at the same rate but not measured (default 0). */
  warmupMs?: number;
  /** The generator's timer period (default 1 ms, Node's finest). */
  tickMs?: number;
  /**
   * When the next request is due within this many ms, poll with setImmediate instead of sleeping on a timer
   * (default 0: never). Cuts the generator's send lag below a timer tick at the price of a busy event loop
   * (a core of CPU), so use it only with a core to spare.
   */
  spinBelowMs?: number;
  /** Longest stretch (ms) one tick keeps sending before yielding to the event loop (default 5). */
  maxBurstMs?: number;
  /**
   * Safety valve: past this many requests in flight, sending pauses (default 100,000). Paused requests keep
   * their intended start, so their latency still counts the wait.
   */
  maxOutstanding?: number;
  /**
   * Ends the run early when it settles (e.g. a snapshot finishing): nothing more is sent, the measured window
   * ends there, and the requests in flight are awaited and counted.
   */
  until?: Promise<unknown>;
}

export interface OpenLoopResult extends RunSummary {
  offeredPerS: number;
  /** Requests completed in the measured window, per second (= opsPerS). */
  achievedPerS: number;
  /** Requests sent in the measured window, per second. */
  sentPerS: number;
  /** Latency from the actual send rather than the intended one (what a coordinated-omission-prone tool shows). */
  service: HistogramSummary;
  /** How late the generator sent requests after their intended time (its own share of the latency). */
  sendLagP50Ms: number;
  sendLagP99Ms: number;
  sendLagMaxMs: number;
  /** Most requests in flight at once. */
  peakOutstanding: number;
  /** How long after the window's end the last intended request was sent (0 unless the system fell behind). */
  overrunMs: number;
}

/** Open loop at a fixed offered rate; latency from each request's intended start. */
export async function offer<T>(
  submit: Submit<T>,
  next: () => T,
  options: OpenLoopOptions,
): Promise<OpenLoopResult> {
  const rate = options.ratePerS;
  if (!(rate > 0)) throw new RangeError('ratePerS must be > 0');
  const tickMs = Math.max(1, options.tickMs ?? 1);
  const maxOutstanding = Math.max(1, options.maxOutstanding ?? 100_000);
  const maxBurstMs = options.maxBurstMs ?? 5;
  const spinBelowMs = options.spinBelowMs ?? 0;
  const intervalMs = 1000 / rate;
  const histogram = new Histogram();
  const service = new Histogram();
  const lag = new Histogram();
  const startMs = performance.now();
  const measureStartMs = startMs + (options.warmupMs ?? 0);
  let measureEndMs = measureStartMs + options.durationMs;
  let total = Math.ceil((measureEndMs - startMs) / intervalMs); // intended start < measureEndMs
  let sent = 0;
  let sentInWindow = 0;
  let outstanding = 0;
  let peakOutstanding = 0;
  let completedInWindow = 0;
  let errors = 0;
  let firstError: string | undefined;
  let lastSendMs = startMs;
  let drained: () => void = () => {};
  const allDone = new Promise<void>((resolve) => {
    drained = resolve;
  });

  const stop = () => {
    const now = performance.now();
    if (now >= measureEndMs) return;
    measureEndMs = Math.max(now, measureStartMs);
    total = sent;
    if (outstanding === 0) drained();
  };
  options.until?.then(stop, stop);

  const finish = (intendedMs: number, sendMs: number, ok: boolean, error?: unknown) => {
    outstanding--;
    const end = performance.now();
    if (ok) {
      if (intendedMs >= measureStartMs) {
        histogram.recordMs(end - intendedMs);
        service.recordMs(end - sendMs);
      }
      if (end >= measureStartMs && end < measureEndMs) completedInWindow++;
    } else {
      errors++;
      firstError ??= message(error);
    }
    if (sent === total && outstanding === 0) drained();
  };

  const send = (intendedMs: number) => {
    const sendMs = performance.now();
    if (intendedMs >= measureStartMs) {
      lag.recordMs(sendMs - intendedMs);
      if (sendMs < measureEndMs) sentInWindow++;
    }
    outstanding++;
    if (outstanding > peakOutstanding) peakOutstanding = outstanding;
    lastSendMs = sendMs;
    let promise: Promise<unknown>;
    try {
      promise = submit(next());
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      () => finish(intendedMs, sendMs, true),
      (error) => finish(intendedMs, sendMs, false, error),
    );
  };

  await new Promise<void>((resolve) => {
    const tick = () => {
      const tickStartMs = performance.now();
      const due = Math.min(total, Math.floor((tickStartMs - startMs) / intervalMs) + 1);
      while (sent < due && outstanding < maxOutstanding) {
        send(startMs + sent++ * intervalMs);
        // A synchronous system does its work inside submit: past the burst budget, let the event loop run
        // (completions get their timestamps, timers fire) and carry on at once.
        if ((sent & 15) === 0 && performance.now() - tickStartMs > maxBurstMs && sent < due) {
          setImmediate(tick);
          return;
        }
      }
      if (sent >= total) {
        resolve();
        return;
      }
      const wait = startMs + sent * intervalMs - performance.now();
      if (wait < spinBelowMs) setImmediate(tick);
      else setTimeout(tick, Math.max(tickMs, wait));
    };
    tick();
  });
  if (outstanding > 0) await allDone;

  const elapsedMs = measureEndMs - measureStartMs;
  const perS = (n: number) => (elapsedMs > 0 ? (n / elapsedMs) * 1000 : Number.NaN);
  return {
    ...histogram.summary(),
    opsPerS: perS(completedInWindow),
    elapsedMs,
    errors,
    firstError,
    histogram,
    offeredPerS: rate,
    achievedPerS: perS(completedInWindow),
    sentPerS: perS(sentInWindow),
    service: service.summary(),
    sendLagP50Ms: lag.quantileMs(0.5),
    sendLagP99Ms: lag.quantileMs(0.99),
    sendLagMaxMs: lag.maxMs,
    peakOutstanding,
    overrunMs: Math.max(0, lastSendMs - measureEndMs),
  };
}
