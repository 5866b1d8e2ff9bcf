import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { Store } from '../../src/engine/store.ts';
import { EngineMetrics } from '../../src/server/metrics.ts';
import { buildApp, type GateStore } from './app.ts';
import { ConfigError, parseConfig } from './config.ts';
import { balanceGateDefinition } from './domain.ts';
import { ExpiryTimer } from './expiry-timer.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function gate(options: { token?: string } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'gate-app-'));
  const metrics = new EngineMetrics();
  const store: GateStore = await Store.open(balanceGateDefinition, { dir, observer: metrics.observer() });
  metrics.attach(store);
  const app = buildApp({ store: () => store, metrics, token: options.token });
  cleanups.push(async () => {
    await app.close();
    await store.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const post = (url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url, payload: payload as object, headers });
  const get = (url: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url, headers });
  return { app, store, post, get };
}

test('credits: 200 with the merchant and LSN; a retry is byte-identical; the same transfer with another amount is a 409', async () => {
  const { post } = await gate();
  const first = await post('/v1/merchants/m1/credits', { transfer_id: 't1', amount_cents: 1000 });
  assert.equal(first.statusCode, 200);
  assert.deepEqual(first.json(), {
    merchant: {
      merchant_id: 'm1',
      available_cents: 1000,
      held_cents: 0,
      captured_cents: 0,
      credited_cents: 1000,
    },
    lsn: 1,
  });
  const retry = await post('/v1/merchants/m1/credits', { transfer_id: 't1', amount_cents: 1000 });
  assert.equal(retry.statusCode, 200);
  assert.equal(retry.body, first.body);
  const conflict = await post('/v1/merchants/m1/credits', { transfer_id: 't1', amount_cents: 999 });
  assert.equal(conflict.statusCode, 409);
  assert.equal(conflict.json().error, 'idempotency_conflict');
});

test('reservations: held with per-merchant sequence, rejected when funds are short, retries byte-identical, conflicts 409', async () => {
  const { post, get } = await gate();
  await post('/v1/merchants/m1/credits', { transfer_id: 't1', amount_cents: 1000 });
  await post('/v1/merchants/m2/credits', { transfer_id: 't2', amount_cents: 1000 });
  const a = await post('/v1/reservations', { reservation_id: 'a', merchant_id: 'm1', amount_cents: 700 });
  assert.equal(a.statusCode, 200);
  assert.deepEqual(a.json(), {
    reservation_id: 'a',
    status: 'held',
    sequence: 1,
    merchant: {
      merchant_id: 'm1',
      available_cents: 300,
      held_cents: 700,
      captured_cents: 0,
      credited_cents: 1000,
    },
    lsn: 3,
  });
  const b = await post('/v1/reservations', { reservation_id: 'b', merchant_id: 'm1', amount_cents: 301 });
  assert.equal(b.json().status, 'rejected');
  assert.equal(b.json().reason, 'insufficient_funds');
  assert.equal(b.json().sequence, undefined);
  assert.equal(
    (await post('/v1/reservations', { reservation_id: 'c', merchant_id: 'm1', amount_cents: 300 })).json()
      .sequence,
    2,
  );
  assert.equal(
    (await post('/v1/reservations', { reservation_id: 'd', merchant_id: 'm2', amount_cents: 1 })).json()
      .sequence,
    1,
  );
  assert.equal(
    (await post('/v1/reservations', { reservation_id: 'a', merchant_id: 'm1', amount_cents: 700 })).body,
    a.body,
  );
  assert.equal(
    (await post('/v1/reservations', { reservation_id: 'b', merchant_id: 'm1', amount_cents: 301 })).body,
    b.body,
  );
  const conflict = await post('/v1/reservations', {
    reservation_id: 'a',
    merchant_id: 'm1',
    amount_cents: 701,
  });
  assert.equal(conflict.statusCode, 409);
  assert.equal(conflict.json().error, 'idempotency_conflict');
  assert.deepEqual((await get('/v1/reservations/b')).json(), {
    reservation_id: 'b',
    merchant_id: 'm1',
    amount_cents: 301,
    status: 'rejected',
  });
  const unknownMerchant = await post('/v1/reservations', {
    reservation_id: 'e',
    merchant_id: 'ghost',
    amount_cents: 1,
  });
  assert.equal(unknownMerchant.statusCode, 404);
});

test('capture and release: recorded answers on retry, illegal transitions 409, unknown 404', async () => {
  const { post, get } = await gate();
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  await post('/v1/reservations', { reservation_id: 'x', merchant_id: 'm', amount_cents: 40 });
  await post('/v1/reservations', { reservation_id: 'y', merchant_id: 'm', amount_cents: 10 });
  const captured = await post('/v1/reservations/x/capture');
  assert.equal(captured.statusCode, 200);
  assert.equal(captured.json().status, 'captured');
  assert.equal((await post('/v1/reservations/x/capture')).body, captured.body);
  const wrong = await post('/v1/reservations/x/release');
  assert.equal(wrong.statusCode, 409);
  assert.equal(wrong.json().error, 'illegal_transition');
  const released = await post('/v1/reservations/y/release', {});
  assert.equal(released.json().status, 'released');
  assert.equal((await post('/v1/reservations/y/capture')).statusCode, 409);
  assert.equal((await post('/v1/reservations/zz/capture')).statusCode, 404);
  assert.deepEqual((await get('/v1/merchants/m')).json(), {
    merchant_id: 'm',
    available_cents: 60,
    held_cents: 0,
    captured_cents: 40,
    credited_cents: 100,
  });
  assert.equal((await get('/v1/reservations/x')).json().status, 'captured');
  assert.equal((await get('/v1/reservations/nope')).statusCode, 404);
  assert.equal((await get('/v1/merchants/nope')).statusCode, 404);
});

test('batch: one result per item, invalid items answered in their slot, up to 8190 items', async () => {
  const { post, store } = await gate();
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 10_000_000 });
  const mixed = await post('/v1/reservations/batch', {
    items: [
      { reservation_id: 'b1', merchant_id: 'm', amount_cents: 5 },
      { reservation_id: 'b2', merchant_id: 'm', amount_cents: -5 },
      { reservation_id: 'b3', merchant_id: 'ghost', amount_cents: 5 },
      { reservation_id: 'b1', merchant_id: 'm', amount_cents: 6 },
      'not an object',
    ],
  });
  assert.equal(mixed.statusCode, 200);
  const results = mixed.json().results;
  assert.equal(results.length, 5);
  assert.equal(results[0].status, 'held');
  assert.equal(results[1].error, 'invalid_input');
  assert.equal(results[2].error, 'not_found');
  assert.equal(results[3].error, 'idempotency_conflict');
  assert.equal(results[4].error, 'invalid_input');
  const items = Array.from({ length: 8190 }, (_, i) => ({
    reservation_id: `big-${i}`,
    merchant_id: 'm',
    amount_cents: 1,
  }));
  const big = await post('/v1/reservations/batch', { items });
  assert.equal(big.statusCode, 200);
  assert.equal(big.json().results.length, 8190);
  assert.equal(big.json().results[8189].sequence, 8191);
  const tooMany = await post('/v1/reservations/batch', { items: [...items, items[0]] });
  assert.equal(tooMany.statusCode, 400);
  assert.equal(
    store.readStale((s) => s.reservations.size),
    1 + 8190,
  );
});

test('holds expire through the expiry timer at their ttl', async () => {
  const { post, get, store } = await gate();
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  await post('/v1/reservations', { reservation_id: 'soon', merchant_id: 'm', amount_cents: 30, ttl_ms: 50 });
  await post('/v1/reservations', {
    reservation_id: 'later',
    merchant_id: 'm',
    amount_cents: 30,
    ttl_ms: 600_000,
  });
  const timer = new ExpiryTimer((error) => assert.fail(String(error)));
  timer.start(store);
  for (let i = 0; i < 40 && (await get('/v1/reservations/soon')).json().status !== 'expired'; i++)
    await new Promise((r) => setTimeout(r, 25));
  timer.stop();
  assert.equal((await get('/v1/reservations/soon')).json().status, 'expired');
  assert.equal((await get('/v1/reservations/later')).json().status, 'held');
  assert.equal((await get('/v1/merchants/m')).json().available_cents, 70);
  assert.equal((await post('/v1/reservations/soon/capture')).statusCode, 409);
});

test('metrics, health and readiness', async () => {
  const { post, get } = await gate();
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  const text = (await get('/metrics')).body;
  for (const name of [
    'engram_commands_total',
    'engram_ack_latency_seconds',
    'engram_wal_flush_duration_seconds',
    'engram_wal_group_records',
    'engram_snapshot_age_seconds',
    'engram_replay_seconds',
    'engram_backpressure_events_total',
    'engram_fsync_errors_total',
    'engram_lsn_durable',
  ]) {
    assert.match(text, new RegExp(`^${name}`, 'm'), name);
  }
  assert.equal((await get('/healthz')).statusCode, 200);
  assert.equal((await get('/readyz')).statusCode, 200);
  const recovering = buildApp({ store: () => undefined, metrics: new EngineMetrics(), token: undefined });
  assert.equal((await recovering.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
  const write = await recovering.inject({
    method: 'POST',
    url: '/v1/reservations',
    payload: { reservation_id: 'a', merchant_id: 'm', amount_cents: 1 },
  });
  assert.equal(write.statusCode, 503);
  assert.equal(write.headers['retry-after'], '1');
  await recovering.close();
});

test('with a token every route but /healthz needs it', async () => {
  const { get, post } = await gate({ token: 's3cret' });
  assert.equal((await get('/healthz')).statusCode, 200);
  for (const response of [
    await get('/readyz'),
    await get('/metrics'),
    await get('/v1/merchants/m', { authorization: 'Bearer wrong' }),
    await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 1 }),
    await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 1 }, { authorization: 's3cret' }),
  ]) {
    assert.equal(response.statusCode, 401);
    assert.equal(response.json().error, 'unauthorized');
  }
  const ok = await post(
    '/v1/merchants/m/credits',
    { transfer_id: 't', amount_cents: 1 },
    { authorization: 'Bearer s3cret' },
  );
  assert.equal(ok.statusCode, 200);
});

test('configuration: flags over env over defaults; a public bind without a token refuses to start', () => {
  assert.deepEqual(parseConfig([], {}), {
    port: 8080,
    host: '127.0.0.1',
    dataDir: './data',
    durability: 'disk',
    token: undefined,
    logLevel: 'info',
  });
  const fromEnv = parseConfig([], {
    PORT: '9000',
    DATA_DIR: '/d',
    DURABILITY: 'memory',
    BALANCE_GATE_TOKEN: 't',
    HOST: '0.0.0.0',
  });
  assert.equal(fromEnv.port, 9000);
  assert.equal(fromEnv.durability, 'memory');
  assert.equal(
    parseConfig(['--port', '7000', '--durability', 'disk'], { PORT: '9000', DURABILITY: 'memory' }).port,
    7000,
  );
  assert.throws(() => parseConfig(['--host', '0.0.0.0'], {}), ConfigError);
  assert.throws(() => parseConfig([], { DURABILITY: 'fast' }), /not an ack point/);
  assert.throws(() => parseConfig(['--port', 'eighty'], {}), /not a port/);
});
