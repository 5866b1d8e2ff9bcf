import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { Store, type StoreOptions } from '../../src/engine/store.ts';
import { HttpMetrics } from '../../src/server/http-metrics.ts';
import { EngineMetrics } from '../../src/server/metrics.ts';
import { wire } from '../../src/server/testing/wire.ts';
import { NodeFileSystem } from '../../src/storage/node-file-system.ts';
import { ControlledFileSystem } from '../../src/storage/testing/controlled-file-system.ts';
import { buildApp, type GateStore } from './app.ts';
import { ConfigError, parseConfig } from './config.ts';
import { balanceGateDefinition } from './domain.ts';
import { ExpiryTimer } from './expiry-timer.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function gate(options: { token?: string; store?: Partial<StoreOptions> } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'gate-app-'));
  const metrics = new EngineMetrics({ commandsName: 'balance_gate_commands_total' });
  const httpMetrics = new HttpMetrics(metrics.registry, 'balance_gate_http_requests_total');
  const store: GateStore = await Store.open(balanceGateDefinition, {
    dir,
    observer: metrics.observer(),
    ...options.store,
  });
  metrics.attach(store);
  const app = buildApp({ store: () => store, metrics, httpMetrics, token: options.token });
  cleanups.push(async () => {
    await app.close();
    await store.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  // Over a real socket, not `inject`: the hot route answers in the Node server that `inject` skips.
  const send = await wire(app);
  const post = (url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    send({ method: 'POST', url, payload, headers });
  const get = (url: string, headers: Record<string, string> = {}) => send({ method: 'GET', url, headers });
  return { app, store, post, get };
}

const merchant = (id: string, available: number, held: number, captured: number, credited: number) => ({
  merchant_id: id,
  available_cents: available,
  held_cents: held,
  captured_cents: captured,
  credited_cents: credited,
});

test('credits: 200 with the merchant and LSN; a retry is byte-identical; the same transfer with another body is a 409', async () => {
  const { post, get } = await gate();
  const first = await post('/v1/merchants/m1/credits', { transfer_id: 't1', amount_cents: 1000 });
  assert.equal(first.statusCode, 200);
  assert.match(first.headers['content-type'] as string, /^application\/json/);
  assert.deepEqual(first.json(), { merchant: merchant('m1', 1000, 0, 0, 1000), lsn: 1 });
  await post('/v1/merchants/m1/credits', { transfer_id: 't2', amount_cents: 1 });
  const retry = await post('/v1/merchants/m1/credits', { transfer_id: 't1', amount_cents: 1000 });
  assert.equal(retry.statusCode, 200);
  assert.equal(retry.body, first.body, 'the recorded body, although the balance changed since');
  for (const conflicting of [
    { url: '/v1/merchants/m1/credits', amount: 999 },
    { url: '/v1/merchants/m2/credits', amount: 1000 },
  ]) {
    const conflict = await post(conflicting.url, { transfer_id: 't1', amount_cents: conflicting.amount });
    assert.equal(conflict.statusCode, 409);
    assert.equal(conflict.json().error, 'idempotency_conflict');
    assert.match(conflict.json().message, /new key|original/);
  }
  assert.deepEqual((await get('/v1/merchants/m1')).json(), merchant('m1', 1001, 0, 0, 1001));
  assert.equal((await get('/v1/merchants/m2')).statusCode, 404);
});

test('reservations: held with a per-merchant sequence, rejected when funds are short, retries byte-identical, conflicts 409', async () => {
  const { post } = await gate();
  await post('/v1/merchants/m1/credits', { transfer_id: 't1', amount_cents: 1000 });
  await post('/v1/merchants/m2/credits', { transfer_id: 't2', amount_cents: 1000 });
  const a = await post('/v1/reservations', { reservation_id: 'a', merchant_id: 'm1', amount_cents: 700 });
  assert.equal(a.statusCode, 200);
  assert.equal(
    a.body,
    JSON.stringify({
      reservation_id: 'a',
      status: 'held',
      sequence: 1,
      merchant: merchant('m1', 300, 700, 0, 1000),
      lsn: 3,
    }),
  );
  const b = await post('/v1/reservations', { reservation_id: 'b', merchant_id: 'm1', amount_cents: 301 });
  assert.deepEqual(b.json(), {
    reservation_id: 'b',
    status: 'rejected',
    reason: 'insufficient_funds',
    merchant: merchant('m1', 300, 700, 0, 1000),
    lsn: 4,
  });
  const c = await post('/v1/reservations', {
    reservation_id: 'c',
    merchant_id: 'm1',
    amount_cents: 300,
    ttl_ms: 60_000,
  });
  assert.equal(c.json().sequence, 2, 'a rejection takes no sequence number');
  const d = await post('/v1/reservations', { reservation_id: 'd', merchant_id: 'm2', amount_cents: 1 });
  assert.equal(d.json().sequence, 1, 'sequences are per merchant');
  // Retries: the recorded body, byte for byte, although the merchant's balance moved on.
  const retries: [unknown, string][] = [
    [{ reservation_id: 'a', merchant_id: 'm1', amount_cents: 700 }, a.body],
    [{ reservation_id: 'b', merchant_id: 'm1', amount_cents: 301 }, b.body],
    [{ reservation_id: 'c', merchant_id: 'm1', amount_cents: 300, ttl_ms: 60_000 }, c.body],
  ];
  for (const [payload, body] of retries) {
    const retry = await post('/v1/reservations', payload);
    assert.equal(retry.statusCode, 200);
    assert.equal(retry.body, body);
  }
  for (const payload of [
    { reservation_id: 'a', merchant_id: 'm1', amount_cents: 701 },
    { reservation_id: 'a', merchant_id: 'm2', amount_cents: 700 },
    { reservation_id: 'a', merchant_id: 'm1', amount_cents: 700, ttl_ms: 5 },
    { reservation_id: 'c', merchant_id: 'm1', amount_cents: 300 },
  ]) {
    const conflict = await post('/v1/reservations', payload);
    assert.equal(conflict.statusCode, 409, JSON.stringify(payload));
    assert.equal(conflict.json().error, 'idempotency_conflict');
  }
  const unknownMerchant = await post('/v1/reservations', {
    reservation_id: 'e',
    merchant_id: 'ghost',
    amount_cents: 1,
  });
  assert.equal(unknownMerchant.statusCode, 404);
  assert.equal(unknownMerchant.json().error, 'not_found');
  assert.match(unknownMerchant.json().message, /credit it first/);
});

test('GET shapes: a reservation in each status, a merchant, and 404s', async () => {
  const { post, get } = await gate();
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  await post('/v1/reservations', { reservation_id: 'h', merchant_id: 'm', amount_cents: 10 });
  await post('/v1/reservations', { reservation_id: 'c', merchant_id: 'm', amount_cents: 20 });
  await post('/v1/reservations', { reservation_id: 'r', merchant_id: 'm', amount_cents: 30 });
  await post('/v1/reservations', { reservation_id: 'x', merchant_id: 'm', amount_cents: 1000 });
  await post('/v1/reservations/c/capture');
  await post('/v1/reservations/r/release');
  const expected = { h: 'held', c: 'captured', r: 'released', x: 'rejected' } as const;
  for (const [id, status] of Object.entries(expected)) {
    const response = await get(`/v1/reservations/${id}`);
    assert.equal(response.statusCode, 200);
    assert.deepEqual(Object.keys(response.json()), [
      'reservation_id',
      'merchant_id',
      'amount_cents',
      'status',
    ]);
    assert.equal(response.json().status, status);
    assert.equal(response.json().merchant_id, 'm');
  }
  assert.deepEqual((await get('/v1/reservations/x')).json(), {
    reservation_id: 'x',
    merchant_id: 'm',
    amount_cents: 1000,
    status: 'rejected',
  });
  assert.equal((await get('/v1/merchants/m')).body, JSON.stringify(merchant('m', 70, 10, 20, 100)));
  for (const url of ['/v1/reservations/nope', '/v1/merchants/nope']) {
    const missing = await get(url);
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().error, 'not_found');
  }
});

test('capture and release: recorded answers on retry, illegal transitions 409, unknown 404', async () => {
  const { post, get } = await gate();
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  await post('/v1/reservations', { reservation_id: 'x', merchant_id: 'm', amount_cents: 40 });
  await post('/v1/reservations', { reservation_id: 'y', merchant_id: 'm', amount_cents: 10 });
  await post('/v1/reservations', { reservation_id: 'no-funds', merchant_id: 'm', amount_cents: 1000 });
  const captured = await post('/v1/reservations/x/capture');
  assert.equal(captured.statusCode, 200);
  assert.equal(
    captured.body,
    JSON.stringify({
      reservation_id: 'x',
      status: 'captured',
      sequence: 1,
      merchant: merchant('m', 50, 10, 40, 100),
      lsn: 5,
    }),
  );
  // Retried with the header many clients always send, and an empty body: the recorded answer.
  const retried = await post('/v1/reservations/x/capture', '', { 'content-type': 'application/json' });
  assert.equal(retried.statusCode, 200);
  assert.equal(retried.body, captured.body);
  const wrong = await post('/v1/reservations/x/release');
  assert.equal(wrong.statusCode, 409);
  assert.equal(wrong.json().error, 'illegal_transition');
  assert.match(wrong.json().message, /is captured/);
  const released = await post('/v1/reservations/y/release', {});
  assert.equal(released.statusCode, 200);
  assert.equal(released.json().status, 'released');
  assert.deepEqual(released.json().merchant, merchant('m', 60, 0, 40, 100));
  assert.equal((await post('/v1/reservations/y/release')).body, released.body);
  const afterRelease = await post('/v1/reservations/y/capture');
  assert.equal(afterRelease.statusCode, 409);
  assert.equal(afterRelease.json().error, 'illegal_transition');
  assert.equal(
    (await post('/v1/reservations/no-funds/capture')).statusCode,
    409,
    'a rejection holds nothing',
  );
  for (const action of ['capture', 'release']) {
    const unknown = await post(`/v1/reservations/zz/${action}`);
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().error, 'not_found');
  }
  assert.deepEqual((await get('/v1/merchants/m')).json(), merchant('m', 60, 0, 40, 100));
  assert.equal((await get('/v1/reservations/x')).json().status, 'captured');
  assert.equal((await get('/v1/reservations/y')).json().status, 'released');
});

test('batch: one result per item in order, invalid items answered in their slot, the others decided', async () => {
  const { post, get } = await gate();
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  await post('/v1/reservations', { reservation_id: 'before', merchant_id: 'm', amount_cents: 1 });
  const mixed = await post('/v1/reservations/batch', {
    items: [
      { reservation_id: 'b1', merchant_id: 'm', amount_cents: 5 },
      { reservation_id: 'b2', merchant_id: 'm', amount_cents: -5 },
      { reservation_id: 'b3', merchant_id: 'ghost', amount_cents: 5 },
      { reservation_id: 'b1', merchant_id: 'm', amount_cents: 6 },
      'not an object',
      { reservation_id: 'b4', merchant_id: 'm', amount_cents: 1000 },
      { reservation_id: 'before', merchant_id: 'm', amount_cents: 1 },
      { reservation_id: 'b5', merchant_id: 'm', amount_cents: 5, extra: true },
      { reservation_id: 'b6', merchant_id: 'm', amount_cents: 5, ttl_ms: 60_000 },
    ],
  });
  assert.equal(mixed.statusCode, 200);
  assert.equal(mixed.headers['content-type'], 'application/json; charset=utf-8');
  const results = mixed.json().results;
  assert.equal(results.length, 9);
  assert.equal(results[0].status, 'held');
  assert.equal(results[0].sequence, 2);
  assert.equal(results[1].error, 'invalid_input');
  assert.match(results[1].message, /items\[1\]\/amount_cents/);
  assert.equal(results[2].error, 'not_found');
  assert.equal(results[3].error, 'idempotency_conflict');
  assert.equal(results[4].error, 'invalid_input');
  assert.equal(results[5].status, 'rejected');
  assert.equal(
    JSON.stringify(results[6]),
    (await post('/v1/reservations', { reservation_id: 'before', merchant_id: 'm', amount_cents: 1 })).body,
    'an item retrying an earlier reservation gets its recorded result',
  );
  assert.equal(results[7].error, 'invalid_input');
  assert.equal(results[8].sequence, 3);
  for (const error of results.filter((r: { error?: string }) => r.error))
    assert.deepEqual(Object.keys(error), ['error', 'message']);
  // The whole batch retried: per item the same answers, nothing decided twice.
  const again = await post('/v1/reservations/batch', {
    items: [
      { reservation_id: 'b1', merchant_id: 'm', amount_cents: 5 },
      { reservation_id: 'b6', merchant_id: 'm', amount_cents: 5, ttl_ms: 60_000 },
    ],
  });
  assert.equal(JSON.stringify(again.json().results), JSON.stringify([results[0], results[8]]));
  assert.deepEqual((await get('/v1/merchants/m')).json(), merchant('m', 89, 11, 0, 100));
  // Only a malformed envelope fails the whole request.
  const allInvalid = await post('/v1/reservations/batch', { items: [{}, { reservation_id: 'q' }] });
  assert.equal(allInvalid.statusCode, 200);
  assert.deepEqual(
    allInvalid.json().results.map((r: { error: string }) => r.error),
    ['invalid_input', 'invalid_input'],
  );
});

test('batch: 8190 items of the longest valid form fit the body limit; 8191 items are a 400', async () => {
  const { post, store } = await gate();
  const merchantId = `m${'M'.repeat(127)}`;
  await post(`/v1/merchants/${merchantId}/credits`, { transfer_id: 't', amount_cents: 100_000_000 });
  const items = Array.from({ length: 8190 }, (_, i) => ({
    reservation_id: `r${i}-`.padEnd(128, 'x'),
    merchant_id: merchantId,
    amount_cents: i === 8189 ? Number.MAX_SAFE_INTEGER : 100 + i,
    ttl_ms: 30 * 24 * 3600 * 1000,
  }));
  const payload = JSON.stringify({ items });
  assert.ok(payload.length > 2.6 * 1024 * 1024, `near the worst case: ${payload.length} bytes`);
  const big = await post('/v1/reservations/batch', payload, { 'content-type': 'application/json' });
  assert.equal(big.statusCode, 200, big.body.slice(0, 300));
  const results = big.json().results;
  assert.equal(results.length, 8190);
  assert.equal(results[0].sequence, 1);
  assert.equal(results[8188].sequence, 8189);
  assert.equal(results[8189].status, 'rejected');
  const lsnBefore = store.lsnApplied;
  const tooMany = await post('/v1/reservations/batch', { items: [...items, items[0]] });
  assert.equal(tooMany.statusCode, 400);
  assert.equal(tooMany.json().error, 'invalid_input');
  assert.match(tooMany.json().message, /8190/);
  assert.equal(store.lsnApplied, lsnBefore, 'a refused envelope decides nothing');
});

test('holds expire through the expiry timer at their ttl, through a logged record', async () => {
  const { post, get, store } = await gate();
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  await post('/v1/reservations', { reservation_id: 'soon', merchant_id: 'm', amount_cents: 30, ttl_ms: 50 });
  await post('/v1/reservations', {
    reservation_id: 'later',
    merchant_id: 'm',
    amount_cents: 30,
    ttl_ms: 600_000,
  });
  await post('/v1/reservations', { reservation_id: 'forever', merchant_id: 'm', amount_cents: 30 });
  const lsnBefore = store.lsnApplied;
  const timer = new ExpiryTimer({ error: (_obj, msg) => assert.fail(msg) });
  timer.start(store);
  for (let i = 0; i < 80 && (await get('/v1/reservations/soon')).json().status !== 'expired'; i++)
    await new Promise((r) => setTimeout(r, 25));
  timer.stop();
  assert.equal((await get('/v1/reservations/soon')).json().status, 'expired');
  assert.equal(store.lsnApplied, lsnBefore + 1, 'one expire record');
  assert.equal((await get('/v1/reservations/later')).json().status, 'held');
  assert.equal((await get('/v1/reservations/forever')).json().status, 'held');
  assert.deepEqual((await get('/v1/merchants/m')).json(), merchant('m', 40, 60, 0, 100));
  const capture = await post('/v1/reservations/soon/capture');
  assert.equal(capture.statusCode, 409);
  assert.match(capture.json().message, /is expired/);
});

test('balance_gate_batch_items counts the items of every batch request taken, valid or not', async () => {
  const { post, get } = await gate();
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  const item = (id: string, amount: number) => ({
    reservation_id: id,
    merchant_id: 'm',
    amount_cents: amount,
  });
  // In the common shape (read without JSON.parse), then with an invalid item (validated item by item).
  assert.equal(
    (await post('/v1/reservations/batch', { items: [item('a', 1), item('b', 2)] })).statusCode,
    200,
  );
  const mixed = await post('/v1/reservations/batch', { items: [item('c', 1), item('d', -1), item('e', 1)] });
  assert.equal(mixed.statusCode, 200);
  assert.equal(mixed.json().results[1].error, 'invalid_input');
  // A body that is not a batch is refused whole, before any item is taken.
  assert.equal((await post('/v1/reservations/batch', { items: 'no' })).statusCode, 400);
  const text = (await get('/metrics')).body;
  assert.match(text, /^balance_gate_batch_items_count 2$/m);
  assert.match(text, /^balance_gate_batch_items_sum 5$/m);
  assert.match(text, /^balance_gate_batch_items_bucket\{le="1"\} 0$/m);
  assert.match(text, /^balance_gate_batch_items_bucket\{le="10"\} 2$/m);
});

test('metrics name the engine and service series; health and readiness', async () => {
  const { post, get, store } = await gate();
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  await post('/v1/reservations', { reservation_id: 'r', merchant_id: 'ghost', amount_cents: 1 });
  await get('/no/such/route');
  const text = (await get('/metrics')).body;
  for (const name of [
    'balance_gate_commands_total',
    'balance_gate_http_requests_total',
    'engram_ack_latency_seconds',
    'engram_wal_flush_duration_seconds',
    'engram_wal_group_records',
    'balance_gate_batch_items',
    'engram_snapshot_age_seconds',
    'engram_replay_seconds',
    'engram_snapshot_fallbacks',
    'engram_mapped_snapshot_bytes',
    'engram_backpressure_events_total',
    'engram_fsync_errors_total',
    'engram_lsn_durable',
    'engram_lsn_applied',
  ]) {
    assert.match(text, new RegExp(`^${name}`, 'm'), name);
  }
  assert.match(text, /^balance_gate_commands_total\{command="credit",outcome="ok"\} 1$/m);
  assert.match(text, /^balance_gate_commands_total\{command="credit",outcome="duplicate"\} 1$/m);
  assert.match(text, /^balance_gate_commands_total\{command="reserve",outcome="rejected"\} 1$/m);
  assert.match(text, /^balance_gate_commands_total\{command="capture",outcome="ok"\} 0$/m, 'pre-bound');
  assert.match(
    text,
    /^balance_gate_http_requests_total\{route="\/v1\/merchants\/:merchant_id\/credits",status="200"\} 2$/m,
  );
  assert.match(text, /^balance_gate_http_requests_total\{route="\/v1\/reservations",status="404"\} 1$/m);
  assert.match(text, /^balance_gate_http_requests_total\{route="unmatched",status="404"\} 1$/m);
  assert.match(text, /^engram_snapshot_age_seconds -1$/m, 'no snapshot yet');
  assert.match(text, /^engram_lsn_durable 1$/m);
  assert.equal((await get('/healthz')).statusCode, 200);
  const ready = await get('/readyz');
  assert.equal(ready.statusCode, 200);
  assert.deepEqual(ready.json(), { status: 'ready', lsn_durable: 1 });
  await store.snapshot();
  const age = Number((await get('/metrics')).body.match(/^engram_snapshot_age_seconds (\S+)$/m)?.[1]);
  assert.ok(age >= 0 && age < 60, `snapshot age ${age}`);
  assert.match((await get('/metrics')).body, /^engram_snapshot_duration_seconds_count 1$/m);
});

test('ids named like Object.prototype members are ordinary ids on every route', async () => {
  const { post, get } = await gate();
  for (const id of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    assert.equal(
      (await post(`/v1/merchants/${id}/credits`, { transfer_id: id, amount_cents: 100 })).statusCode,
      200,
    );
    const held = await post('/v1/reservations', { reservation_id: id, merchant_id: id, amount_cents: 10 });
    assert.equal(held.json().status, 'held', id);
    const batch = await post('/v1/reservations/batch', {
      items: [{ reservation_id: `${id}.b`, merchant_id: id, amount_cents: 10 }],
    });
    assert.equal(batch.json().results[0].status, 'held', id);
    assert.deepEqual((await get(`/v1/reservations/${id}`)).json(), {
      reservation_id: id,
      merchant_id: id,
      amount_cents: 10,
      status: 'held',
    });
    assert.equal((await post(`/v1/reservations/${id}/capture`)).json().status, 'captured', id);
    assert.deepEqual((await get(`/v1/merchants/${id}`)).json(), merchant(id, 80, 10, 10, 100));
  }
});

test('while recovering: /healthz 200, /readyz and the API 503 with Retry-After', async () => {
  const recovering = buildApp({ store: () => undefined, metrics: new EngineMetrics(), token: undefined });
  cleanups.push(() => recovering.close());
  const send = await wire(recovering);
  assert.equal((await send({ method: 'GET', url: '/healthz' })).statusCode, 200);
  const ready = await send({ method: 'GET', url: '/readyz' });
  assert.equal(ready.statusCode, 503);
  assert.equal(ready.json().status, 'recovering');
  for (const request of [
    {
      method: 'POST',
      url: '/v1/reservations',
      payload: { reservation_id: 'a', merchant_id: 'm', amount_cents: 1 },
    },
    { method: 'GET', url: '/v1/merchants/m' },
    { method: 'POST', url: '/v1/reservations/a/capture' },
  ] as const) {
    const response = await send(request);
    assert.equal(response.statusCode, 503);
    assert.equal(response.headers['retry-after'], '1');
    assert.equal(response.json().error, 'unavailable');
  }
});

test('a storage failure: writes and reads 503 with the error, /readyz 503 failed, /healthz still 200', async () => {
  const fs = new ControlledFileSystem(new NodeFileSystem());
  const { post, get } = await gate({ store: { fs } });
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  fs.failNextSync = 'EIO';
  const doomed = await post('/v1/reservations', { reservation_id: 'r', merchant_id: 'm', amount_cents: 1 });
  assert.equal(doomed.statusCode, 503);
  assert.equal(doomed.json().error, 'unavailable');
  assert.match(doomed.json().message, /storage_io.*restart/s);
  const later = await post('/v1/merchants/m/credits', { transfer_id: 't2', amount_cents: 1 });
  assert.equal(later.statusCode, 503);
  const batch = await post('/v1/reservations/batch', {
    items: [{ reservation_id: 'rb', merchant_id: 'm', amount_cents: 1 }],
  });
  assert.equal(batch.statusCode, 503, 'a batch after the failure: refused whole, no per-item answers');
  assert.equal(batch.json().error, 'unavailable');
  assert.equal((await get('/v1/merchants/m')).statusCode, 503);
  const ready = await get('/readyz');
  assert.equal(ready.statusCode, 503);
  assert.equal(ready.json().status, 'failed');
  assert.equal(ready.json().error, 'storage_io');
  assert.equal((await get('/healthz')).statusCode, 200);
  assert.match((await get('/metrics')).body, /^engram_fsync_errors_total 1$/m);
});

test('a batch whose group write fails gets a 503, never the answers it had decided', async () => {
  const fs = new ControlledFileSystem(new NodeFileSystem());
  const { post } = await gate({ store: { fs } });
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  fs.failNextSync = 'EIO';
  const doomed = await post('/v1/reservations/batch', {
    items: [
      { reservation_id: 'b1', merchant_id: 'm', amount_cents: 1 },
      { reservation_id: 'b2', merchant_id: 'm', amount_cents: 1000 },
    ],
  });
  assert.equal(doomed.statusCode, 503);
  assert.equal(doomed.json().error, 'unavailable');
  assert.doesNotMatch(doomed.body, /"held"|"rejected"/);
});

test('backpressure: 503 overloaded with Retry-After, nothing decided', async () => {
  const fs = new ControlledFileSystem(new NodeFileSystem());
  const { post, store } = await gate({ store: { fs, pendingCommandsMax: 1 } });
  await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  fs.hold = true;
  const waiting = [1, 2].map((i) =>
    post('/v1/reservations', { reservation_id: `w${i}`, merchant_id: 'm', amount_cents: 1 }),
  );
  while (store.pending.commands < 2) await new Promise((r) => setTimeout(r, 1));
  const lsnBefore = store.lsnApplied;
  const refused = await post('/v1/reservations', { reservation_id: 'x', merchant_id: 'm', amount_cents: 1 });
  assert.equal(refused.statusCode, 503);
  assert.equal(refused.json().error, 'overloaded');
  assert.ok(Number(refused.headers['retry-after']) >= 1);
  assert.equal(store.lsnApplied, lsnBefore);
  fs.hold = false;
  fs.release();
  for (const response of await Promise.all(waiting)) assert.equal(response.statusCode, 200);
});

test('auth: with a token every route but /healthz needs it; the scheme is case-insensitive', async () => {
  const { get, post } = await gate({ token: 's3cret' });
  assert.equal((await get('/healthz')).statusCode, 200);
  assert.equal((await get('/healthz?probe=1')).statusCode, 200);
  for (const response of [
    await get('/readyz'),
    await get('/metrics'),
    await get('/no/such/route'),
    await get('/v1/merchants/m', { authorization: 'Bearer wrong' }),
    await get('/v1/merchants/m', { authorization: 'Bearer s3cret2' }),
    await get('/v1/merchants/m', { authorization: 'Bearer ' }),
    await get('/v1/merchants/m', { authorization: 'Basic czNjcmV0' }),
    await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 1 }),
    await post('/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 1 }, { authorization: 's3cret' }),
    await post('/v1/reservations', { reservation_id: 'r', merchant_id: 'm', amount_cents: 1 }),
    await post(
      '/v1/reservations',
      { reservation_id: 'r', merchant_id: 'm', amount_cents: 1 },
      { authorization: 'Bearer wrong' },
    ),
  ]) {
    assert.equal(response.statusCode, 401);
    assert.equal(response.headers['www-authenticate'], 'Bearer');
    assert.equal(response.json().error, 'unauthorized');
    assert.match(response.json().message, /Authorization: Bearer/);
  }
  assert.equal((await get('/v1/merchants/m', { authorization: 'Bearer s3cret' })).statusCode, 404);
  const ok = await post(
    '/v1/merchants/m/credits',
    { transfer_id: 't', amount_cents: 1 },
    { authorization: 'bearer s3cret' },
  );
  assert.equal(ok.statusCode, 200);
  const reserved = await post(
    '/v1/reservations',
    { reservation_id: 'r', merchant_id: 'm', amount_cents: 1 },
    { authorization: 'Bearer s3cret' },
  );
  assert.equal(reserved.statusCode, 200);
  assert.equal(reserved.json().status, 'held');
  assert.equal((await get('/readyz', { authorization: 'Bearer s3cret' })).statusCode, 200);
});

/** Sends raw bytes to a listening app and returns everything it answers before closing. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk;
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}

test('requests the HTTP parser refuses get the JSON error shape too', async () => {
  const { app } = await gate();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const cases: [string, number, string][] = [
    ['NOT HTTP AT ALL\r\n\r\n', 400, 'invalid_request'],
    [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
  ];
  for (const [request, status, error] of cases) {
    const answer = await rawExchange(port, request);
    assert.match(answer, new RegExp(`^HTTP/1.1 ${status} `));
    assert.match(answer, /content-type: application\/json/i);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    assert.equal(body.error, error);
    assert.ok(body.message.length > 10);
  }
});

test('configuration: flags over env over defaults; bad values are clear errors; a public bind needs a token', () => {
  assert.deepEqual(parseConfig([], {}), {
    port: 8080,
    host: '127.0.0.1',
    dataDir: './data',
    durability: 'disk',
    token: undefined,
    logLevel: 'info',
  });
  assert.deepEqual(
    parseConfig([], {
      PORT: '9000',
      HOST: '0.0.0.0',
      DATA_DIR: '/d',
      DURABILITY: 'memory',
      BALANCE_GATE_TOKEN: 't',
      LOG_LEVEL: 'debug',
    }),
    { port: 9000, host: '0.0.0.0', dataDir: '/d', durability: 'memory', token: 't', logLevel: 'debug' },
  );
  assert.deepEqual(
    parseConfig(
      ['--port', '7000', '--host', '::1', '--data-dir', '/f', '--durability', 'disk', '--token', 'x'],
      { PORT: '9000', HOST: '127.0.0.2', DATA_DIR: '/e', DURABILITY: 'memory', BALANCE_GATE_TOKEN: 'y' },
    ),
    { port: 7000, host: '::1', dataDir: '/f', durability: 'disk', token: 'x', logLevel: 'info' },
  );
  assert.equal(parseConfig([], { PORT: '', HOST: '' }).port, 8080, 'empty env counts as unset');
  assert.throws(() => parseConfig(['--host', '0.0.0.0'], {}), ConfigError);
  assert.throws(() => parseConfig([], { HOST: '10.0.0.5', BALANCE_GATE_TOKEN: '' }), /BALANCE_GATE_TOKEN/);
  assert.doesNotThrow(() => parseConfig(['--host', 'localhost'], {}));
  assert.throws(() => parseConfig([], { DURABILITY: 'fast' }), /DURABILITY: 'fast' is not an ack point/);
  assert.throws(() => parseConfig([], { PORT: '80a' }), /PORT: '80a' is not a port/);
  assert.throws(() => parseConfig([], { PORT: '70000' }), /not a port/);
  assert.throws(() => parseConfig([], { LOG_LEVEL: 'loud' }), /not a log level/);
});
