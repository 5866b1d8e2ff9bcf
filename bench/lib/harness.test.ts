/**
 * The shared benchmark harness: the workload is deterministic and has the promised shape, the histogram's
 * percentiles are within 1% of the exact ones, and the drivers count what they claim (the open loop charges a
 * stall to every request that was due during it).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Prng } from '../../src/util/prng.ts';
import { probeCpuGaps } from './cpu-gap-probe.ts';
import { probeFdatasync, timeShareOver, timeWeightedQuantile } from './fdatasync-probe.ts';
import { Histogram, offer, saturate } from './latency.ts';
import { fmt, formatTable, jsonLine } from './report.ts';
import {
  generateMerchants,
  MAX_AMOUNT_CENTS,
  MERCHANT_BALANCE_CENTS,
  MIN_AMOUNT_CENTS,
  ReferenceLedger,
  type Reservation,
  Workload,
} from './workload.ts';

test('workload: deterministic, unique ids, ~5% retries of an earlier request, ~10% rejected', () => {
  const merchants = generateMerchants(10_000);
  assert.deepEqual(generateMerchants(10_000), merchants);
  assert.equal(merchants.filter((m) => m.balanceCents < MERCHANT_BALANCE_CENTS).length, 1000);
  const a = new Workload(merchants, 3, 'a');
  const b = new Workload(merchants, 3, 'b');
  const reference = new ReferenceLedger(merchants);
  const seen = new Set<string>();
  const issued = new Map<string, Reservation>();
  let retries = 0;
  let rejected = 0;
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const r = a.next();
    const s = b.next();
    assert.equal(s.merchantId, r.merchantId);
    assert.equal(s.amountCents, r.amountCents);
    assert.ok(r.amountCents >= MIN_AMOUNT_CENTS && r.amountCents <= MAX_AMOUNT_CENTS);
    if (seen.has(r.reservationId)) {
      retries++;
      assert.deepEqual(issued.get(r.reservationId), r, 'a retry is the same request');
    } else {
      seen.add(r.reservationId);
      issued.set(r.reservationId, r);
      if (reference.reserve(r).status === 'rejected') rejected++;
    }
  }
  assert.equal(a.retries, retries);
  assert.ok(Math.abs(retries / n - 0.05) < 0.005, `retry share ${retries / n}`);
  const share = rejected / (n - retries);
  assert.ok(share > 0.085 && share < 0.105, `rejected share ${share}`);
});

test('histogram: percentiles within 1% of the exact ones, exact min/max/mean', () => {
  const prng = new Prng(7);
  const h = new Histogram();
  const values: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    const ms = Math.exp(prng.nextFloat() * 16 - 9); // 0.1 µs .. 1 min
    values.push(ms);
    h.recordMs(ms);
  }
  values.sort((x, y) => x - y);
  for (const q of [0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999]) {
    const exact = values[Math.ceil(q * values.length) - 1];
    const got = h.quantileMs(q);
    // 1% relative, or the 1 ns resolution for the smallest values.
    assert.ok(Math.abs(got - exact) <= Math.max(exact * 0.01, 1e-6), `q${q}: ${got} vs ${exact}`);
  }
  assert.ok(Math.abs(h.maxMs - values[values.length - 1]) < 1e-6);
  assert.ok(Math.abs(h.minMs - values[0]) < 1e-6);
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  assert.ok(Math.abs(h.meanMs - mean) / mean < 1e-6);
  const other = new Histogram();
  other.recordMs(1e5);
  h.merge(other);
  assert.equal(h.count, 200_001);
  assert.equal(h.maxMs, 1e5);
  assert.ok(Number.isNaN(new Histogram().quantileMs(0.5)));
});

test('saturate: exactly the requested count, with the given concurrency', async () => {
  let inFlight = 0;
  let peak = 0;
  let calls = 0;
  const submit = async () => {
    calls++;
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 1));
    inFlight--;
  };
  const result = await saturate(submit, () => 0, { concurrency: 8, requests: 400 });
  assert.equal(result.count, 400);
  assert.equal(calls, 400);
  assert.equal(peak, 8);
  assert.ok(result.p50Ms >= 0.9, `p50 ${result.p50Ms}`);
  assert.ok(result.opsPerS > 0);
  const failing = await saturate(
    () => Promise.reject(new Error('no')),
    () => 0,
    { concurrency: 2, requests: 10 },
  );
  assert.equal(failing.errors, 10);
  assert.equal(failing.firstError, 'no');
});

test('offer: the offered rate is achieved, and a stall is charged to every request due during it', async () => {
  const start = performance.now();
  let stalled = false;
  const submit = () => {
    // One 150 ms stall of the event loop, as a synchronous commit or a GC pause would cause.
    if (!stalled && performance.now() - start > 300) {
      stalled = true;
      const until = performance.now() + 150;
      while (performance.now() < until) {}
    }
    return Promise.resolve();
  };
  const result = await offer(submit, () => 0, { ratePerS: 1000, durationMs: 800, warmupMs: 100 });
  assert.ok(stalled);
  assert.ok(Math.abs(result.achievedPerS - 1000) < 100, `achieved ${result.achievedPerS}`);
  assert.ok(Math.abs(result.count - 800) <= 2, `count ${result.count}`);
  // ~150 requests were due during the stall: from their intended start they waited up to 150 ms; from their
  // actual send (what a closed loop or a naive generator sees) almost nothing.
  assert.ok(result.p90Ms > 20, `p90 from intended start ${result.p90Ms}`);
  assert.ok(result.maxMs >= 140, `max ${result.maxMs}`);
  assert.ok(result.service.p90Ms < 20, `p90 from actual send ${result.service.p90Ms}`);
});

test('report: aligned table and a JSON line without NaN', () => {
  const table = formatTable(
    [
      { header: 'system', value: (r: { n: string; v: number }) => r.n },
      { header: 'ops/s', value: (r) => r.v, digits: 0 },
    ],
    [
      { n: 'a', v: 12345.6 },
      { n: 'longer', v: Number.NaN },
    ],
  );
  assert.equal(table, 'system  ops/s\n------  -----\na       12346\nlonger      -');
  assert.equal(jsonLine({ a: Number.NaN, b: 1.234567, c: 3 }), '{"a":null,"b":1.2346,"c":3}');
  assert.equal(fmt(undefined), '-');
});

test('fdatasync probe: appends or overwrites of a zero-filled file, counted, and leaves no file behind', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'engram-probe-'));
  try {
    for (const preallocated of [false, true]) {
      // 40 blocks of 4 KiB in a 64 KiB file: the overwrites wrap around, as they do in a long probe.
      const result = await probeFdatasync(dir, {
        ops: 40,
        warmupOps: 2,
        preallocated,
        preallocatedBytes: 65_536,
      });
      assert.equal(result.count, 40);
      assert.equal(result.preallocated, preallocated);
      assert.ok(result.p50Ms > 0 && result.p99Ms >= result.p50Ms);
      // Exact durations against the histogram's figures: its quantiles are within 0.4%, its max rounded to 1 ns.
      assert.ok(
        result.timeWeightedP99Ms >= result.p50Ms * 0.99,
        'a time-weighted p99 is at least the median',
      );
      assert.ok(result.timeWeightedP99Ms <= result.maxMs + 1e-6, 'and at most the longest sync');
      assert.ok(result.timeShareOver2Ms >= 0 && result.timeShareOver2Ms < 1);
      assert.deepEqual(await readdir(dir), []);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('time-weighted quantile: one long stall among many short syncs sets the p99 that the per-sync p99 hides', () => {
  // 990 syncs of 1 ms and 10 of 100 ms: the per-sync p99 is 1 ms, but half the time goes to the long ones.
  const durations = [...Array.from({ length: 990 }, () => 1), ...Array.from({ length: 10 }, () => 100)];
  assert.equal(timeWeightedQuantile(durations, 0.99), 100);
  assert.equal(timeWeightedQuantile(durations, 0.4), 1);
  assert.equal(timeWeightedQuantile([2, 2, 2, 2], 0.99), 2);
  assert.ok(Number.isNaN(timeWeightedQuantile([], 0.99)));
  // Of 2,000 ms, the ten 100 ms stalls are half; syncs of exactly the threshold do not count as over it.
  assert.equal(timeShareOver(durations, 2, 2000), 0.5);
  assert.equal(timeShareOver([2, 2], 2, 10), 0);
});

test('CPU gap probe: spins for the time asked, alone or beside a busy worker, and counts only gaps over the threshold', async () => {
  for (const loadOtherCores of [false, true]) {
    const result = await probeCpuGaps({ durationMs: 200, gapMs: 0.5, loadOtherCores });
    assert.ok(result.durationMs >= 200 && result.durationMs < 400, `${result.durationMs}`);
    assert.ok(result.gapsPerS >= 0 && result.lostMsPerS >= 0);
    assert.ok(result.gapsPerS === 0 ? result.maxGapMs === 0 : result.maxGapMs > 0.5);
    assert.ok(result.lostMsPerS <= 1000);
  }
  // Every reading apart counts when the threshold is below the clock's step: the counts are real.
  const all = await probeCpuGaps({ durationMs: 50, gapMs: -1 });
  assert.ok(all.gapsPerS > 1000, `${all.gapsPerS}`);
});

test('offer: `until` ends the run when it settles, awaits what is in flight, and measures the shorter window', async () => {
  let inFlight = 0;
  let sent = 0;
  const submit = () => {
    sent++;
    inFlight++;
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        inFlight--;
        resolve();
      }, 5),
    );
  };
  const until = new Promise((resolve) => setTimeout(resolve, 300));
  const startMs = performance.now();
  const result = await offer(submit, () => 0, { ratePerS: 1000, durationMs: 60_000, until });
  const tookMs = performance.now() - startMs;
  assert.ok(tookMs < 1000, `stopped after ${tookMs} ms, not the 60 s asked for`);
  assert.equal(inFlight, 0, 'every request sent was awaited');
  assert.equal(result.count, sent, 'every request sent was measured');
  assert.ok(Math.abs(result.elapsedMs - 300) < 60, `window ${result.elapsedMs} ms`);
  assert.ok(Math.abs(result.achievedPerS - 1000) < 150, `achieved ${result.achievedPerS}`);
});
