/**
 * npm run bench:service [-- --quick]
 *
 * The reservation workload over the network, side by side in one run: balance-gate (HTTP, disk ack point),
 * Redis 7 + Lua (appendfsync always) and PostgreSQL 15 (a transaction per reservation, synchronous_commit
 * on), each started privately on a free port in a temp dir. Saturation throughput, open-loop latency at fixed
 * offered loads (from intended send times), the batch endpoint's reservations/s, and the load generator's own
 * ceiling. Generator and servers share this machine's 2 cores. Last line: JSON.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { startGate } from '../test/support/gate-process.ts';
import { MERCHANT_BALANCE_CENTS, merchantIds, Workload } from './lib/workload.ts';
import { closedLoop, HttpClient, openLoop, wrkReservations } from './service/http-load.ts';
import { startPostgres } from './service/postgres-peer.ts';
import { cleanupAll } from './service/processes.ts';
import { startRedis } from './service/redis-peer.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const S = values.quick ? 3 : 8;
const MERCHANTS = 10_000;
const merchants = merchantIds(MERCHANTS);
const log = (line: string) => process.stderr.write(`${line}\n`);
const fmt = (n: number, digits = 3) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

execFileSync('bash', [new URL('../scripts/bench-deps.sh', import.meta.url).pathname], { stdio: 'inherit' });
const work = await mkdtemp(path.join(tmpdir(), 'bench-service-'));
const figures: Record<string, number> = {};
try {
  log(
    `bench:service ${values.quick ? '(quick) ' : ''}${S}s per phase; generator and servers share ${(await import('node:os')).cpus().length} cores`,
  );

  // balance-gate
  const gate = await startGate(path.join(work, 'gate-data'), { DURABILITY: 'disk', LOG_LEVEL: 'warn' });
  const http = new HttpClient(gate.url, 64);
  for (let i = 0; i < MERCHANTS; i += 500) {
    await Promise.all(
      merchants.slice(i, i + 500).map((m) =>
        http.post(`/v1/merchants/${m}/credits`, {
          transfer_id: `seed-${m}`,
          amount_cents: MERCHANT_BALANCE_CENTS,
        }),
      ),
    );
  }
  const ceiling = await closedLoop(
    () => http.get('/healthz'),
    () => ({ reservationId: '', merchantId: '', amountCents: 0 }),
    64,
    S,
  );
  log(`generator ceiling (undici, GET /healthz, 64 connections): ${Math.round(ceiling.opsPerS)} req/s`);
  const wrk = await wrkReservations(gate.url, work, S, 64, MERCHANTS);
  log(
    `balance-gate saturation (wrk -t2 -c64): ${Math.round(wrk.opsPerS)} reservations/s, p50 ${fmt(wrk.p50Ms)} p99 ${fmt(wrk.p99Ms)} ms, non-2xx ${wrk.non2xx}`,
  );
  const gateWorkload = new Workload(merchants, 1, 'gate');
  const at10k = await openLoop(
    (r) => http.reserve(r),
    () => gateWorkload.take(),
    10_000,
    S,
  );
  log(
    `balance-gate at 10,000/s offered: p50 ${fmt(at10k.p50Ms)} p99 ${fmt(at10k.p99Ms)} p999 ${fmt(at10k.p999Ms)} ms (achieved ${Math.round(at10k.opsPerS)}/s)`,
  );
  const batchWorkload = new Workload(merchants, 2, 'batch');
  let batchItems = 0;
  const batch = await closedLoop(
    async () => {
      const items = Array.from({ length: 8190 }, () => {
        const r = batchWorkload.take();
        return { reservation_id: r.reservationId, merchant_id: r.merchantId, amount_cents: r.amountCents };
      });
      await http.post('/v1/reservations/batch', { items });
      batchItems += items.length;
    },
    () => ({ reservationId: '', merchantId: '', amountCents: 0 }),
    2,
    S,
  );
  const batchPerS = (batchItems / ((S + 0.5) * 1000)) * 1000;
  log(
    `batch endpoint (8190 items, 2 in flight): ${Math.round(batchPerS)} reservations/s (${fmt(batch.p50Ms, 1)} ms per batch)`,
  );
  const failures = http.failures;
  await http.close();
  gate.child.kill('SIGTERM');
  await gate.exited;

  // Redis + Lua
  const redis = await startRedis(merchants, MERCHANT_BALANCE_CENTS);
  const redisWorkload = new Workload(merchants, 1, 'redis');
  const redisSat = await closedLoop(
    (r) => redis.submit(r),
    () => redisWorkload.take(),
    64,
    S,
  );
  log(`redis+lua saturation: ${Math.round(redisSat.opsPerS)} reservations/s, p99 ${fmt(redisSat.p99Ms)} ms`);
  const redis10k = await openLoop(
    (r) => redis.submit(r),
    () => redisWorkload.take(),
    10_000,
    S,
  );
  log(
    `redis+lua at 10,000/s offered: p50 ${fmt(redis10k.p50Ms)} p99 ${fmt(redis10k.p99Ms)} p999 ${fmt(redis10k.p999Ms)} ms`,
  );
  await redis.close();

  // PostgreSQL
  const postgres = await startPostgres(merchants, MERCHANT_BALANCE_CENTS, 64);
  const pgWorkload = new Workload(merchants, 1, 'pg');
  const pgSat = await closedLoop(
    (r) => postgres.submit(r),
    () => pgWorkload.take(),
    64,
    S,
  );
  log(`postgres saturation: ${Math.round(pgSat.opsPerS)} reservations/s, p99 ${fmt(pgSat.p99Ms)} ms`);
  const pgRate = Math.max(100, Math.round(pgSat.opsPerS / 2));
  const pgHalf = await openLoop(
    (r) => postgres.submit(r),
    () => pgWorkload.take(),
    pgRate,
    S,
  );
  log(
    `postgres at ${pgRate}/s offered: p50 ${fmt(pgHalf.p50Ms)} p99 ${fmt(pgHalf.p99Ms)} p999 ${fmt(pgHalf.p999Ms)} ms`,
  );
  await postgres.close();

  Object.assign(figures, {
    gate_ops_per_s: Math.round(wrk.opsPerS),
    gate_p50_ms_saturation: wrk.p50Ms,
    gate_p99_ms_saturation: wrk.p99Ms,
    gate_p50_ms_at_10k: at10k.p50Ms,
    gate_p99_ms_at_10k: at10k.p99Ms,
    gate_p999_ms_at_10k: at10k.p999Ms,
    gate_achieved_per_s_at_10k: Math.round(at10k.opsPerS),
    batch_reservations_per_s: Math.round(batchPerS),
    redis_lua_ops_per_s: Math.round(redisSat.opsPerS),
    redis_lua_p99_ms_at_10k: redis10k.p99Ms,
    redis_lua_p999_ms_at_10k: redis10k.p999Ms,
    postgres_ops_per_s: Math.round(pgSat.opsPerS),
    postgres_p99_ms_at_half: pgHalf.p99Ms,
    postgres_half_rate_per_s: pgRate,
    generator_ceiling_req_per_s: Math.round(ceiling.opsPerS),
    gate_vs_redis: wrk.opsPerS / redisSat.opsPerS,
    gate_vs_postgres: wrk.opsPerS / pgSat.opsPerS,
    http_failures: failures,
  });
  console.log('\nreservations over the network (generator and servers on the same 2 cores)');
  for (const [key, value] of Object.entries(figures))
    console.log(`  ${key.padEnd(30)} ${Number.isInteger(value) ? value : fmt(value)}`);
  console.log(JSON.stringify(figures));
} finally {
  cleanupAll();
  await rm(work, { recursive: true, force: true });
}
