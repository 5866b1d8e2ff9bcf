/**
 * npm run bench:restart [-- --quick] [--holds N] [--merchants M] [--tail T]
 *
 * Snapshots and restart of a large balance-gate store: 10 million holds across 100,000 merchants plus a log
 * tail of 1 million records (a tenth with --quick). Reports snapshot size and write time, load rate, replay
 * rate, total restart time, heap bytes per hold, and the write p99 at a fixed offered load without a snapshot,
 * while one is built (by the resident checkpoint worker, decision 017) and in the seconds after it. The
 * worker's own start is measured apart, twice: after a store opened from the log alone (it replays all of
 * it) and after the restart from a snapshot (it loads that snapshot and replays the tail), with the write p99
 * meanwhile and the process memory its copy of the state adds; the second beside a control, the same
 * window with no worker. Last line: one JSON object.
 *
 * The writes and the restart run as balance-gate runs (node-flags.ts): `npm run bench:restart` starts this
 * process with the gate's flags, and its children get them too.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { balanceGateDefinition } from '../apps/balance-gate/domain.ts';
import { GATE_NODE_FLAGS } from '../apps/balance-gate/node-flags.ts';
import { Store } from '../src/engine/store.ts';
import { offer } from './lib/latency.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    holds: { type: 'string' },
    merchants: { type: 'string' },
    tail: { type: 'string' },
    'rate-per-s': { type: 'string' },
    'keep-dir': { type: 'boolean', default: false },
    /** Internal: run the write phases in `dir` and print their figures (the writer child). */
    'writer-dir': { type: 'string' },
  },
});
const scale = values.quick ? 0.1 : 1;
const HOLDS = Number(values.holds ?? 10_000_000 * scale);
const MERCHANTS = Number(values.merchants ?? 100_000 * scale);
const TAIL = Number(values.tail ?? 1_000_000 * scale);
const RATE_PER_S = Number(values['rate-per-s'] ?? 10_000);
const PHASE_MS = values.quick ? 2_000 : 5_000;
const BATCH = 8_190;

const log = (message: string) => process.stderr.write(`${message}\n`);
const definitionModule = new URL('../apps/balance-gate/domain.ts', import.meta.url).href;
// As balance-gate runs: a resident worker that follows the log between snapshots (decision 017).
const snapshotOptions = {
  worker: { module: definitionModule, exportName: 'balanceGateDefinition', resident: true },
  everyMs: 3_600_000,
  everyLogBytes: 2 ** 50,
  keep: 2,
};

let nextHold = 0;
function nextReserve() {
  const i = nextHold++;
  return {
    reservationId: `payout-2026-11-23-${i}`,
    merchantId: `merchant-${i % MERCHANTS}`,
    amountCents: 1 + (i % 9_973),
  };
}

async function populate(dir: string): Promise<void> {
  // No snapshots here: a worker following this store would be stopped with it, before the phases measured.
  const store = await Store.open(balanceGateDefinition, { dir });
  const credits = [];
  for (let m = 0; m < MERCHANTS; m++)
    credits.push({ merchantId: `merchant-${m}`, transferId: `seed-${m}`, amountCents: 1e12 });
  for (let i = 0; i < credits.length; i += BATCH)
    await store.executeMany('credit', credits.slice(i, i + BATCH));
  const startMs = performance.now();
  while (nextHold < HOLDS) {
    const batch = [];
    for (let i = 0; i < BATCH && nextHold < HOLDS; i++) batch.push(nextReserve());
    await store.executeMany('reserve', batch);
    if ((nextHold / BATCH) % 100 < 1) log(`  populated ${nextHold.toLocaleString()} holds`);
  }
  await store.sync();
  log(`populated ${HOLDS.toLocaleString()} holds in ${((performance.now() - startMs) / 1000).toFixed(1)} s`);
  await store.close();
}

/**
 * Open loop at RATE_PER_S (bench/lib/latency.ts's `offer`), latency from each request's intended start (no
 * coordinated omission), for `durationMs` or until `until` settles. `offer` counts requests in flight and
 * keeps no promise: keeping each one until the phase ended made it survive two scavenges of the writer's
 * heap (copied, then promoted), at 10k/s a scavenge about every second, median 7-17 ms against 3.6-3.8 ms
 * (decision 003), charged to the store as write latency.
 */
async function fixedRate(
  store: Store<any, any, any, any>,
  durationMs: number,
  until?: Promise<unknown>,
): Promise<{ p50: number; p99: number; count: number }> {
  const result = await offer((command) => store.execute('reserve', command), nextReserve, {
    ratePerS: RATE_PER_S,
    durationMs,
    until,
  });
  if (result.errors > 0) throw new Error(`${result.errors} writes failed, the first: ${result.firstError}`);
  return { p50: result.p50Ms, p99: result.p99Ms, count: result.count };
}

/** Runs `args` in a fresh node process (stderr passed through); its last stdout line, parsed. */
async function runChild(args: string[], what: string): Promise<any> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`${what} exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

/**
 * The restart in a child with the gate's own flags: without `--no-parallel-scavenge` it measured a process
 * the gate never is (replay was faster or slower by up to 15% in alternating runs here, within the noise).
 */
function restartInChild(dir: string): Promise<Record<string, number>> {
  const child = new URL('./restart-child.ts', import.meta.url).pathname;
  return runChild(
    [
      ...GATE_NODE_FLAGS,
      '--expose-gc',
      '--max-old-space-size=16384',
      '--import',
      'tsx',
      child,
      dir,
      '--follow',
      '--merchants',
      String(MERCHANTS),
      '--rate-per-s',
      String(RATE_PER_S),
    ],
    'restart child',
  );
}

/**
 * The write phases in a child process of their own, started with this one's flags (the gate's), which
 * exits before the restart. A restart follows the old process's exit, whose memory is then free; on these
 * VMs a page the guest never had mapped faults several times slower than a recycled one, and with an idle
 * 2 GB writer left alive beside it the same restart replayed at 650-840k records/s instead of 1.1-1.3M and
 * loaded the snapshot at 234-426 MB/s instead of 413-554 (a full GC in the writer returned none of it).
 */
function writeInChild(dir: string): Promise<Awaited<ReturnType<typeof writePhases>>> {
  const passOn = process.argv.slice(2).filter((a) => a !== '--keep-dir');
  return runChild(
    [...process.execArgv, new URL(import.meta.url).pathname, ...passOn, '--writer-dir', dir],
    'writer child',
  );
}

/** Everything before the restart: the writes, the snapshot and the tail, on a store closed at the end. */
async function writePhases(dir: string) {
  await populate(dir);

  const store = await Store.open(balanceGateDefinition, { dir, snapshots: snapshotOptions });
  log(
    `reopened from the log: ${store.recovery.recordsReplayed} records in ${(store.recovery.replayMs / 1000).toFixed(1)} s`,
  );
  // The resident worker starts as a restarted store's does: it loads the newest snapshot (none here) and
  // replays the log since, a whole rebuild, once per start. Measured on its own, before the baseline.
  const catchUp = await fixedRate(store, 10 * 60_000, store.snapshotWorkerCaughtUp());
  log(
    `write p99 while the snapshot worker caught up after the start: ${catchUp.p99.toFixed(3)} ms (p50 ${catchUp.p50.toFixed(3)}, ${catchUp.count} writes, ${(catchUp.count / RATE_PER_S) | 0} s)`,
  );
  // The baseline comes first, before any snapshot: a snapshot leaves the disk slower for many seconds after
  // it is done (periodic 50-100 ms fdatasyncs for 15-20 s were seen here), and that must not count as the
  // "without" figure. That aftermath is measured on its own, right after the snapshot.
  const baseline = await fixedRate(store, PHASE_MS);
  log(
    `write p99 without a snapshot: ${baseline.p99.toFixed(3)} ms (p50 ${baseline.p50.toFixed(3)}, ${baseline.count} writes at ${RATE_PER_S}/s)`,
  );
  const snapshotting = store.snapshot();
  const during = await fixedRate(store, 10 * 60_000, snapshotting);
  const snapshot = await snapshotting;
  log(
    `write p99 during a snapshot: ${during.p99.toFixed(3)} ms (p50 ${during.p50.toFixed(3)}, ${during.count} writes); snapshot ${(snapshot.bytes / 1e6).toFixed(1)} MB in ${(snapshot.durationMs / 1000).toFixed(1)} s (replayed ${snapshot.recordsReplayedOnRequest} records on request, ${snapshot.recordsReplayed} since the last one)`,
  );
  const after = await fixedRate(store, PHASE_MS);
  log(
    `write p99 in the ${PHASE_MS / 1000} s after the snapshot: ${after.p99.toFixed(3)} ms (p50 ${after.p50.toFixed(3)}, ${after.count} writes)`,
  );

  const tailStartMs = performance.now();
  for (let written = 0; written < TAIL; ) {
    const batch = [];
    for (let i = 0; i < BATCH && written < TAIL; i++, written++) batch.push(nextReserve());
    await store.executeMany('reserve', batch);
  }
  log(`log tail of ${TAIL} records written in ${((performance.now() - tailStartMs) / 1000).toFixed(1)} s`);
  const totalHolds = store.readStale((s) => s.reservations.size);
  await store.close();
  return { totalHolds, snapshot, catchUp, baseline, during, after };
}

if (values['writer-dir'] !== undefined) {
  // The writer child: its figures as the last line on stdout, for the parent.
  console.log(JSON.stringify(await writePhases(values['writer-dir'])));
  process.exit(0);
}

const dir = await mkdtemp(path.join(tmpdir(), 'engram-bench-restart-'));
try {
  log(
    `bench:restart ${values.quick ? '(quick) ' : ''}holds=${HOLDS} merchants=${MERCHANTS} tail=${TAIL} dir=${dir}`,
  );
  const { totalHolds, snapshot, catchUp, baseline, during, after } = await writeInChild(dir);
  const restart = await restartInChild(dir);
  const figures = {
    holds: totalHolds,
    merchants: MERCHANTS,
    snapshot_bytes: snapshot.bytes,
    snapshot_write_s: snapshot.durationMs / 1000,
    snapshot_load_mb_per_s: restart.snapshotBytes / 1e6 / (restart.snapshotLoadMs / 1000),
    snapshot_load_s: restart.snapshotLoadMs / 1000,
    replay_records: restart.recordsReplayed,
    replay_records_per_s: restart.recordsReplayed / (restart.replayMs / 1000),
    restart_s: restart.restartMs / 1000,
    heap_bytes_per_hold: restart.heapBytes / restart.holds,
    write_p99_ms_baseline: baseline.p99,
    write_p99_ms_during_snapshot: during.p99,
    write_p99_ms_after_snapshot: after.p99,
    write_p99_ms_while_worker_catches_up: catchUp.p99,
    worker_catch_up_s: catchUp.count / RATE_PER_S,
    write_p99_ms_while_worker_catches_up_after_restart: restart.followWriteP99Ms,
    write_p99_ms_after_restart_without_worker: restart.controlWriteP99Ms,
    worker_catch_up_after_restart_s: restart.followCatchUpMs / 1000,
    worker_rss_bytes_per_hold: restart.workerRssBytes / restart.holds,
    snapshot_records_replayed_on_request: snapshot.recordsReplayedOnRequest,
    write_rate_per_s: RATE_PER_S,
  };
  console.log('\nrestart of a balance-gate store');
  for (const [key, value] of Object.entries(figures))
    console.log(`  ${key.padEnd(30)} ${Number.isInteger(value) ? value : value.toFixed(3)}`);
  console.log(JSON.stringify(figures));
} finally {
  if (!values['keep-dir']) await rm(dir, { recursive: true, force: true });
}
