/**
 * npm run bench:engine [-- --quick]
 *
 * The embedded funds-reservation workload (merchant balances, holds, idempotency keys) on Engram at the
 * `memory` and `disk` ack points, side by side in one run with SQLite (WAL, synchronous=FULL, a transaction
 * per reservation, and batched) and lmdb-js (durable async transactions): same workload, same data, same
 * disk. Throughput and ack latency at saturation (and Engram's through its batched API, as a figure of its
 * own), Engram's latency at a fixed offered load of half its
 * maximum, fsyncs/s and mean group size, the raw fdatasync latency of the disk, how long the log's own
 * group-commit writes took during the half-load run (weighted by time too: a request waits out the write
 * its arrival falls in), and the CPU gaps a never-blocking thread suffers (the floor under any p99 on
 * this machine). A full run then measures every system's saturation once more, in reverse order, on a fresh
 * instance, and counts the better round (the machine's speed drifts over a run). Last line: JSON.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { groupSealKind } from '../src/log/group-seal.ts';
import { openEngramTarget } from './engram-target.ts';
import { probeCpuGaps } from './lib/cpu-gap-probe.ts';
import { probeFdatasync, timeShareOver, timeWeightedQuantile } from './lib/fdatasync-probe.ts';
import { type LatencySummary, offer, type RunSummary, saturate, summarize } from './lib/latency.ts';
import { MERCHANT_BALANCE_CENTS, merchantIds, type Target, Workload } from './lib/workload.ts';
import { openLmdb } from './peers/lmdb.ts';
import { openSqlite } from './peers/sqlite.ts';

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, seconds: { type: 'string' } },
});
const SECONDS = Number(values.seconds ?? (values.quick ? 3 : 8));
const WARMUP_MS = values.quick ? 700 : 1500;
const CONCURRENCY = 1024;
/** Engram's batched run: the SQLite peer's transaction size, and enough batches that one fills while one commits. */
const BATCH_ITEMS = 1000;
const BATCHES_IN_FLIGHT = 4;
const merchants = merchantIds(10_000);
/** Every Engram instance starts with these merchants credited, as the peers do. */
const seeds = merchants.map((merchantId) => ({ merchantId, amountCents: MERCHANT_BALANCE_CENTS }));
const log = (line: string) => process.stderr.write(`${line}\n`);
const root = await mkdtemp(path.join(tmpdir(), 'engram-bench-engine-'));
/** Instances opened so far: each gets a directory of its own. */
let opened = 0;
/** Runs in which requests failed (their promise rejected): not counted as throughput, and said out loud. */
const failedRuns: { run: string; errors: number; firstError?: string }[] = [];
function checked<T extends RunSummary>(run: string, result: T): T {
  if (result.errors > 0) {
    failedRuns.push({ run, errors: result.errors, firstError: result.firstError });
    log(`${run}: ${result.errors} requests failed, e.g. ${result.firstError}`);
  }
  return result;
}

interface Row {
  name: string;
  saturation: LatencySummary;
  /** The full run's second saturation round, in reverse order (see below); the better round counts. */
  secondRound?: LatencySummary;
  /** Opens a fresh instance of the same target, for that second round. */
  reopen: () => Promise<Target>;
  concurrency: number;
  half?: LatencySummary & { offeredPerS: number; sendLagP99Ms: number };
  /**
   * At half load, the log's own group-commit writes as the writer timed them (from issuing the write to the
   * event loop seeing it durable): their p99, and weighted by time (see timeWeightedQuantile), since a
   * request waits out the write its arrival falls in and the next one. Unlike the probe's, these include
   * the log's real write sizes, the segment zero-fill beside them and the event loop's delay in noticing.
   */
  halfLogWrite?: { p99Ms: number; timeWeightedP99Ms: number; timeShareOver2Ms: number };
  fsyncsPerS?: number;
  meanGroup?: number;
}

async function fresh(name: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

async function measure(target: Target, workload: Workload, concurrency: number): Promise<LatencySummary> {
  return checked(
    `${target.name}, saturation`,
    await saturate(
      (r) => target.submit(r),
      () => workload.take(),
      { concurrency, durationMs: SECONDS * 1000, warmupMs: WARMUP_MS },
    ),
  );
}

try {
  log(
    `bench:engine ${values.quick ? '(quick) ' : ''}${SECONDS}s per run, ${merchants.length} merchants, data in ${root}; ` +
      `Engram's log checksums: ${groupSealKind()}`,
  );
  const fdatasync = await probeFdatasync(root, values.quick ? 1500 : 4000);
  log(
    `raw fdatasync (4 KiB appends): p50 ${fdatasync.p50Ms.toFixed(3)} ms, p99 ${fdatasync.p99Ms.toFixed(3)} ms`,
  );
  // Engram's segments are preallocated (decision 006): its floor is the overwrite of written blocks.
  const overwrite = await probeFdatasync(root, {
    durationMs: values.quick ? 1500 : 4000,
    preallocated: true,
  });
  log(
    `raw fdatasync (4 KiB overwrites of a zero-filled file): p50 ${overwrite.p50Ms.toFixed(3)} ms, p99 ${overwrite.p99Ms.toFixed(3)} ms; ` +
      `weighted by time p99 ${overwrite.timeWeightedP99Ms.toFixed(3)} ms, ${(overwrite.timeShareOver2Ms * 100).toFixed(1)}% of the time in syncs over 2 ms`,
  );
  // The CPU's floor beside the disk's: how long a never-blocking thread loses the CPU (hypervisor, host).
  const cpuIdle = await probeCpuGaps({ durationMs: values.quick ? 1000 : 2000 });
  const cpuBusy = await probeCpuGaps({ durationMs: values.quick ? 1000 : 2000, loadOtherCores: true });
  log(
    `CPU gaps over 0.5 ms: ${cpuIdle.gapsPerS.toFixed(1)}/s, longest ${cpuIdle.maxGapMs.toFixed(2)} ms (other core idle); ` +
      `${cpuBusy.gapsPerS.toFixed(1)}/s, longest ${cpuBusy.maxGapMs.toFixed(2)} ms (other core busy)`,
  );
  const rows: Row[] = [];

  for (const ackPoint of ['disk', 'memory'] as const) {
    const open = async () => openEngramTarget(await fresh(`engram-${ackPoint}-${opened++}`), ackPoint, seeds);
    const target = await open();
    const workload = new Workload(merchants, 1, `engram-${ackPoint}`);
    target.takeFlushStats();
    // A memory-acked command resolves without I/O: many concurrent producers would spin in microtasks and
    // starve the event loop (and so the background flush); one producer that yields every 256 does not.
    const concurrency = ackPoint === 'memory' ? 1 : CONCURRENCY;
    const saturation = await measure(target, workload, concurrency);
    const flushes = target.takeFlushStats();
    rows.push({
      name: target.name,
      saturation,
      reopen: open,
      concurrency,
      fsyncsPerS: (flushes.flushes / flushes.elapsedMs) * 1000,
      meanGroup: flushes.records / Math.max(1, flushes.flushes),
    });
    log(
      `${target.name}: ${Math.round(saturation.opsPerS)} reservations/s, p99 ${saturation.p99Ms.toFixed(3)} ms`,
    );
    await target.close();
  }
  const engramDiskMax = rows[0].saturation.opsPerS;
  const halfRate = Math.round(engramDiskMax / 2);
  for (const [i, ackPoint] of (['disk', 'memory'] as const).entries()) {
    const target = await openEngramTarget(await fresh(`engram-${ackPoint}-half`), ackPoint, seeds);
    const workload = new Workload(merchants, 2, `engram-${ackPoint}-half`);
    target.takeFlushStats();
    rows[i].half = checked(
      `${target.name}, half load`,
      await offer(
        (r) => target.submit(r),
        () => workload.take(),
        // The generator polls (setImmediate) instead of sleeping on 1 ms timers: with timers it sent each
        // millisecond's requests together, up to a tick late, and that lag alone was a p50 of 0.6-0.9 ms and a
        // p99 of 1.2-6.5 ms against a no-op target (5 µs and 0.15-0.33 ms polling). Polling busies this
        // thread only while it would otherwise sleep; the log's fsyncs run on the other core.
        { ratePerS: halfRate, durationMs: SECONDS * 1000, warmupMs: WARMUP_MS, spinBelowMs: 1 },
      ),
    );
    const half = rows[i].half!;
    log(
      `${target.name} at ${halfRate}/s offered: p50 ${half.p50Ms.toFixed(3)} p99 ${half.p99Ms.toFixed(3)} p999 ${half.p999Ms.toFixed(3)} ms (generator's send lag p99 ${half.sendLagP99Ms.toFixed(3)} ms)`,
    );
    // Warm-up included: the log's writes are not told apart by when the request they carry was sent.
    const { writeMs: writes, elapsedMs } = target.takeFlushStats();
    const write = {
      p99Ms: summarize(writes, elapsedMs).p99Ms,
      timeWeightedP99Ms: timeWeightedQuantile(writes, 0.99),
      timeShareOver2Ms: timeShareOver(writes, 2, elapsedMs),
    };
    rows[i].halfLogWrite = write;
    log(
      `  its ${writes.length} group-commit writes: p99 ${write.p99Ms.toFixed(3)} ms, weighted by time p99 ${write.timeWeightedP99Ms.toFixed(3)} ms, ${(write.timeShareOver2Ms * 100).toFixed(1)}% of the time in writes over 2 ms`,
    );
    await target.close();
  }

  const peers: [string, () => Promise<Target>, number][] = [
    ['lmdb', async () => openLmdb(await fresh(`lmdb-${opened++}`), merchants), CONCURRENCY],
    [
      'sqlite-batch',
      async () => openSqlite(await fresh(`sqlite-batch-${opened++}`), merchants, 'batch'),
      CONCURRENCY,
    ],
    ['sqlite-tx', async () => openSqlite(await fresh(`sqlite-tx-${opened++}`), merchants, 'tx'), 1],
  ];
  for (const [key, open, concurrency] of peers) {
    const target = await open();
    const saturation = await measure(target, new Workload(merchants, 1, key), concurrency);
    rows.push({ name: target.name, saturation, reopen: open, concurrency });
    log(
      `${target.name}: ${Math.round(saturation.opsPerS)} reservations/s, p99 ${saturation.p99Ms.toFixed(3)} ms`,
    );
    await target.close();
  }

  // Engram's batched API at `disk`: BATCH_ITEMS reservations per executeMany, BATCHES_IN_FLIGHT at once, as
  // balance-gate's batch endpoint hands them over (one promise per batch instead of per reservation). A figure
  // of its own, beside SQLite's batched transactions, not a round of the single-command comparison.
  const batchTarget = await openEngramTarget(await fresh(`engram-disk-batches-${opened++}`), 'disk', seeds);
  const batchWorkload = new Workload(merchants, 5, 'engram-disk-batches');
  const batches = checked(
    `${batchTarget.name}, batches`,
    await saturate(
      (batch: ReturnType<Workload['take']>[]) => batchTarget.submitMany(batch),
      () => Array.from({ length: BATCH_ITEMS }, () => batchWorkload.take()),
      { concurrency: BATCHES_IN_FLIGHT, durationMs: SECONDS * 1000, warmupMs: WARMUP_MS, yieldEvery: 1 },
    ),
  );
  await batchTarget.close();
  const batchedPerS = batches.opsPerS * BATCH_ITEMS;
  log(
    `${batchTarget.name}, batches of ${BATCH_ITEMS} (executeMany), ${BATCHES_IN_FLIGHT} in flight: ${Math.round(batchedPerS)} reservations/s, p99 ${batches.p99Ms.toFixed(3)} ms per batch`,
  );

  // The machine's speed drifts over a run: every system's saturation once more, in reverse order (A B C,
  // then C B A), on a fresh instance, so that no system's ratio rides on when it happened to run. The
  // better round counts; both are printed.
  if (!values.quick) {
    for (const row of [...rows].reverse()) {
      const target = await row.reopen();
      row.secondRound = await measure(
        target,
        new Workload(merchants, 3, `second-${opened}`),
        row.concurrency,
      );
      log(
        `${row.name}, second round: ${Math.round(row.secondRound.opsPerS)} reservations/s (first ${Math.round(row.saturation.opsPerS)})`,
      );
      await target.close();
    }
  }
  const best = (row: Row) => Math.max(row.saturation.opsPerS, row.secondRound?.opsPerS ?? 0);

  const fmt = (n: number | undefined, digits = 3) =>
    n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);
  console.log(
    `\nembedded reservations, ${SECONDS}s per run after ${WARMUP_MS} ms warm-up; raw fdatasync p99 ${fmt(fdatasync.p99Ms)} ms (appends), ${fmt(overwrite.p99Ms)} ms (preallocated; ${fmt(overwrite.timeWeightedP99Ms)} ms weighted by time); longest CPU gap ${fmt(cpuIdle.maxGapMs, 2)} ms (${fmt(cpuBusy.maxGapMs, 2)} ms with the other core busy)`,
  );
  console.log(
    [
      'system'.padEnd(38),
      'ops/s'.padStart(10),
      '2nd round'.padStart(10),
      'p50 ms',
      ' p99 ms',
      'p999 ms',
      ' half-load p50/p99/p999 ms',
      'fsyncs/s',
      'group',
    ].join('  '),
  );
  for (const row of rows) {
    const s = row.saturation;
    const half = row.half ? `${fmt(row.half.p50Ms)}/${fmt(row.half.p99Ms)}/${fmt(row.half.p999Ms)}` : '-';
    console.log(
      [
        row.name.padEnd(38),
        String(Math.round(s.opsPerS)).padStart(10),
        (row.secondRound ? String(Math.round(row.secondRound.opsPerS)) : '-').padStart(10),
        fmt(s.p50Ms).padStart(6),
        fmt(s.p99Ms).padStart(7),
        fmt(s.p999Ms).padStart(7),
        half.padStart(26),
        fmt(row.fsyncsPerS, 0).padStart(8),
        fmt(row.meanGroup, 1).padStart(5),
      ].join('  '),
    );
  }
  const [disk, memory, lmdb, sqliteBatch, sqliteTx] = rows;
  const w = disk.halfLogWrite!;
  console.log(
    `engram (disk) at half load: its group-commit writes had p99 ${fmt(w.p99Ms)} ms, weighted by time ${fmt(w.timeWeightedP99Ms)} ms ` +
      `(${fmt(w.timeShareOver2Ms * 100, 1)}% of the time in writes over 2 ms), issue to completion seen by the event loop`,
  );
  console.log(
    `engram (disk), batches of ${BATCH_ITEMS} through executeMany, ${BATCHES_IN_FLIGHT} in flight: ${Math.round(batchedPerS)} reservations/s ` +
      `(${fmt(batchedPerS / best(sqliteBatch), 1)}x SQLite's batched transactions), p50/p99 ${fmt(batches.p50Ms)}/${fmt(batches.p99Ms)} ms per batch`,
  );
  const figures = {
    // Throughput: the better of the two rounds (the only one with --quick), and each round. p99s are the
    // first round's.
    ...Object.fromEntries(
      (
        [
          ['engram_disk', disk],
          ['engram_memory', memory],
          ['lmdb', lmdb],
          ['sqlite_tx', sqliteTx],
          ['sqlite_batch', sqliteBatch],
        ] as const
      ).flatMap(([key, row]) => [
        [`${key}_ops_per_s`, Math.round(best(row))],
        [`${key}_ops_per_s_first_round`, Math.round(row.saturation.opsPerS)],
        [`${key}_ops_per_s_second_round`, row.secondRound ? Math.round(row.secondRound.opsPerS) : null],
      ]),
    ),
    engram_disk_p99_ms_at_saturation: disk.saturation.p99Ms,
    engram_disk_p99_ms_at_half: disk.half!.p99Ms,
    engram_disk_p999_ms_at_half: disk.half!.p999Ms,
    engram_disk_p50_ms_at_half: disk.half!.p50Ms,
    engram_memory_p99_ms_at_half: memory.half!.p99Ms,
    engram_disk_log_write_p99_ms_at_half: w.p99Ms,
    engram_disk_log_write_p99_ms_time_weighted_at_half: w.timeWeightedP99Ms,
    engram_disk_log_write_time_share_over_2ms_at_half: w.timeShareOver2Ms,
    half_load_send_lag_p99_ms: Math.max(disk.half!.sendLagP99Ms, memory.half!.sendLagP99Ms),
    half_load_per_s: halfRate,
    fdatasync_p50_ms: fdatasync.p50Ms,
    fdatasync_p99_ms: fdatasync.p99Ms,
    fdatasync_preallocated_p50_ms: overwrite.p50Ms,
    fdatasync_preallocated_p99_ms: overwrite.p99Ms,
    fdatasync_preallocated_p99_ms_time_weighted: overwrite.timeWeightedP99Ms,
    fdatasync_preallocated_time_share_over_2ms: overwrite.timeShareOver2Ms,
    cpu_gaps_per_s: cpuIdle.gapsPerS,
    cpu_gap_max_ms: cpuIdle.maxGapMs,
    cpu_gaps_per_s_other_core_busy: cpuBusy.gapsPerS,
    cpu_gap_max_ms_other_core_busy: cpuBusy.maxGapMs,
    mean_group_size: disk.meanGroup,
    engram_disk_fsyncs_per_s: disk.fsyncsPerS,
    engram_disk_batched_ops_per_s: Math.round(batchedPerS),
    engram_disk_batched_p99_ms_per_batch: batches.p99Ms,
    disk_vs_lmdb: best(disk) / best(lmdb),
    disk_vs_sqlite_tx: best(disk) / best(sqliteTx),
    failed_requests: failedRuns.reduce((n, f) => n + f.errors, 0),
    engram_log_checksums: groupSealKind(),
  };
  if (failedRuns.length > 0)
    console.log(
      `requests failed in ${failedRuns.length} runs (not counted as throughput): ` +
        failedRuns.map((f) => `${f.run}: ${f.errors} (${f.firstError})`).join('; '),
    );
  console.log(JSON.stringify(figures));
} finally {
  await rm(root, { recursive: true, force: true });
}
