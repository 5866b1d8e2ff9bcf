/**
 * node --import tsx bench/peers/run-peers.ts [options]
 *
 * The embedded peers alone (SQLite a transaction per reservation, SQLite batched, lmdb-js), on the shared
 * funds-reservation workload and the same disk: closed-loop saturation, then an open loop at a fixed offered
 * rate (latency from intended start), each phase on a freshly preloaded store; and the raw fdatasync latency
 * of the disk. A table on stdout, then one JSON line.
 *
 *   --seconds S       measured seconds per phase (default 3)
 *   --warmup S        unmeasured warm-up seconds per phase (default 1)
 *   --concurrency C   requests in flight at saturation (default 256; sqlite-tx always 1: its submit is
 *                     synchronous, so more in flight overlaps nothing and only queues)
 *   --rate R          open-loop offered rate for every peer (default: half of each peer's own saturation)
 *   --merchants M     (default 10,000)
 *   --peers LIST      comma-separated, from sqlite-tx, sqlite-batch, lmdb, lmdb-overlapping
 *                     (default sqlite-tx,sqlite-batch,lmdb)
 *   --dir D           where the data goes (default the OS temp dir; must be the real disk, not tmpfs)
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { probeFdatasync } from '../lib/fdatasync-probe.ts';
import { type OpenLoopResult, offer, type SaturationResult, saturate } from '../lib/latency.ts';
import { type Column, fmt, formatTable, printJsonLine } from '../lib/report.ts';
import { generateMerchants, Workload } from '../lib/workload.ts';
import { isPeerKind, openPeer, type PeerKind } from './registry.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '256' },
    rate: { type: 'string' },
    merchants: { type: 'string', default: '10000' },
    peers: { type: 'string', default: 'sqlite-tx,sqlite-batch,lmdb' },
    dir: { type: 'string', default: tmpdir() },
  },
});
const durationMs = Number(values.seconds) * 1000;
const warmupMs = Number(values.warmup) * 1000;
const concurrency = Number(values.concurrency);
const kinds = values.peers.split(',').map((k) => k.trim());
for (const kind of kinds) if (!isPeerKind(kind)) throw new Error(`unknown peer ${kind}`);
const log = (line: string) => process.stderr.write(`${line}\n`);
const merchants = generateMerchants(Number(values.merchants));
const root = await mkdtemp(path.join(values.dir, 'engram-run-peers-'));

interface Row {
  kind: PeerKind;
  name: string;
  concurrency: number;
  saturation: SaturationResult;
  meanBatch?: number;
  open: OpenLoopResult;
}

async function fresh(name: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

try {
  log(
    `run-peers: ${kinds.join(', ')}; ${values.seconds}s (+${values.warmup}s warm-up) per phase; data in ${root}`,
  );
  const fsync = await probeFdatasync(root, { durationMs: 1500 });
  const fsyncAsync = await probeFdatasync(root, { durationMs: 1000, async: true });
  const fsyncSpaced = await probeFdatasync(root, { durationMs: 1000, gapMs: 1 });
  log(
    `raw fdatasync of 4 KiB appends: p50 ${fmt(fsync.p50Ms)} p99 ${fmt(fsync.p99Ms)} p999 ${fmt(fsync.p999Ms)} ms (${fsync.count} ops back to back); through the thread pool p50 ${fmt(fsyncAsync.p50Ms)} p99 ${fmt(fsyncAsync.p99Ms)} ms; 1 ms apart p50 ${fmt(fsyncSpaced.p50Ms)} p99 ${fmt(fsyncSpaced.p99Ms)} ms`,
  );

  const rows: Row[] = [];
  for (const kind of kinds as PeerKind[]) {
    const c = kind === 'sqlite-tx' ? 1 : concurrency;
    let peer = await openPeer(kind, await fresh(`${kind}-saturation`), merchants);
    const name = peer.name;
    let workload = new Workload(merchants, 1, `${kind}-s`);
    const saturation = await saturate(
      (r) => peer.submit(r),
      () => workload.next(),
      { concurrency: c, durationMs, warmupMs },
    );
    const commits = peer.commits?.();
    await peer.close();
    log(
      `${name}: ${Math.round(saturation.opsPerS)}/s at ${c} in flight, p50 ${fmt(saturation.p50Ms)} p99 ${fmt(saturation.p99Ms)} p999 ${fmt(saturation.p999Ms)} ms`,
    );

    const rate = values.rate ? Number(values.rate) : Math.max(1, Math.round(saturation.opsPerS / 2));
    peer = await openPeer(kind, await fresh(`${kind}-open`), merchants);
    workload = new Workload(merchants, 1, `${kind}-o`);
    const open = await offer(
      (r) => peer.submit(r),
      () => workload.next(),
      { ratePerS: rate, durationMs, warmupMs },
    );
    await peer.close();
    log(
      `${name} at ${rate}/s offered: achieved ${Math.round(open.achievedPerS)}/s, p50 ${fmt(open.p50Ms)} p99 ${fmt(open.p99Ms)} p999 ${fmt(open.p999Ms)} ms (generator send lag p99 ${fmt(open.sendLagP99Ms)} ms)`,
    );
    rows.push({
      kind,
      name,
      concurrency: c,
      saturation,
      meanBatch: commits ? commits.reservations / Math.max(1, commits.commits) : undefined,
      open,
    });
    await rm(path.join(root, `${kind}-saturation`), { recursive: true, force: true });
    await rm(path.join(root, `${kind}-open`), { recursive: true, force: true });
  }

  const columns: Column<Row>[] = [
    { header: 'peer', value: (r) => r.kind },
    { header: 'in flight', value: (r) => r.concurrency, digits: 0 },
    { header: 'ops/s', value: (r) => r.saturation.opsPerS, digits: 0 },
    { header: 'p50 ms', value: (r) => r.saturation.p50Ms, digits: 3 },
    { header: 'p99 ms', value: (r) => r.saturation.p99Ms, digits: 3 },
    { header: 'p999 ms', value: (r) => r.saturation.p999Ms, digits: 3 },
    { header: 'per tx', value: (r) => r.meanBatch, digits: 1 },
    { header: '| offered/s', value: (r) => r.open.offeredPerS, digits: 0 },
    { header: 'achieved/s', value: (r) => r.open.achievedPerS, digits: 0 },
    { header: 'p50 ms', value: (r) => r.open.p50Ms, digits: 3 },
    { header: 'p99 ms', value: (r) => r.open.p99Ms, digits: 3 },
    { header: 'p999 ms', value: (r) => r.open.p999Ms, digits: 3 },
    { header: 'send lag p99', value: (r) => r.open.sendLagP99Ms, digits: 3 },
  ];
  console.log(
    `\nembedded peers, ${values.seconds}s per phase after ${values.warmup}s warm-up, ${merchants.length} merchants; ` +
      `saturation (closed loop) | open loop (latency from intended start)`,
  );
  console.log(formatTable(columns, rows));
  console.log(
    `raw fdatasync (4 KiB appends, ${root}): back to back p50 ${fmt(fsync.p50Ms)} p99 ${fmt(fsync.p99Ms)} p999 ${fmt(fsync.p999Ms)} ms; ` +
      `1 ms apart p50 ${fmt(fsyncSpaced.p50Ms)} p99 ${fmt(fsyncSpaced.p99Ms)} ms`,
  );
  const figures: Record<string, unknown> = {
    fdatasync_p50_ms: fsync.p50Ms,
    fdatasync_p99_ms: fsync.p99Ms,
    fdatasync_p999_ms: fsync.p999Ms,
    fdatasync_count: fsync.count,
    fdatasync_spaced_1ms_p50_ms: fsyncSpaced.p50Ms,
    fdatasync_spaced_1ms_p99_ms: fsyncSpaced.p99Ms,
  };
  for (const r of rows) {
    const key = r.kind.replaceAll('-', '_');
    figures[`${key}_ops_per_s`] = Math.round(r.saturation.opsPerS);
    figures[`${key}_p50_ms`] = r.saturation.p50Ms;
    figures[`${key}_p99_ms`] = r.saturation.p99Ms;
    figures[`${key}_p999_ms`] = r.saturation.p999Ms;
    figures[`${key}_open_rate_per_s`] = r.open.offeredPerS;
    figures[`${key}_open_achieved_per_s`] = Math.round(r.open.achievedPerS);
    figures[`${key}_open_p50_ms`] = r.open.p50Ms;
    figures[`${key}_open_p99_ms`] = r.open.p99Ms;
    figures[`${key}_open_p999_ms`] = r.open.p999Ms;
  }
  printJsonLine(figures);
} finally {
  await rm(root, { recursive: true, force: true });
}
