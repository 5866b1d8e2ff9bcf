import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Store } from '../../src/engine/store.ts';
import { EngineMetrics } from '../../src/server/metrics.ts';
import { buildApp, type GateStore } from './app.ts';
import { balanceGateDefinition } from './domain.ts';

let app: FastifyInstance;
let store: GateStore;
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'gate-bad-'));
  const metrics = new EngineMetrics();
  store = await Store.open(balanceGateDefinition, { dir, observer: metrics.observer() });
  app = buildApp({ store: () => store, metrics, token: undefined });
  await app.inject({
    method: 'POST',
    url: '/v1/merchants/m/credits',
    payload: { transfer_id: 't0', amount_cents: 1000 },
  });
  await app.inject({
    method: 'POST',
    url: '/v1/reservations',
    payload: { reservation_id: 'held-1', merchant_id: 'm', amount_cents: 100 },
  });
});
after(async () => {
  await app.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const json = { 'content-type': 'application/json' };
const longId = 'x'.repeat(129);

/** Each case: a request that must be refused with a 4xx JSON error and change nothing. */
const cases: {
  name: string;
  method?: 'POST' | 'GET';
  url: string;
  body?: string;
  headers?: Record<string, string>;
  status: number;
}[] = [
  { name: 'malformed JSON', url: '/v1/reservations', body: '{"reservation_id": "a",', status: 400 },
  { name: 'JSON that is not an object', url: '/v1/reservations', body: '[1,2,3]', status: 400 },
  { name: 'empty body', url: '/v1/reservations', body: '', status: 400 },
  { name: 'null body', url: '/v1/reservations', body: 'null', status: 400 },
  {
    name: 'missing amount',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m"}',
    status: 400,
  },
  {
    name: 'missing reservation_id',
    url: '/v1/reservations',
    body: '{"merchant_id":"m","amount_cents":1}',
    status: 400,
  },
  {
    name: 'amount as a string',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":"5"}',
    status: 400,
  },
  {
    name: 'amount as a boolean',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":true}',
    status: 400,
  },
  {
    name: 'zero amount',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":0}',
    status: 400,
  },
  {
    name: 'negative amount',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":-5}',
    status: 400,
  },
  {
    name: 'fractional amount',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":1.5}',
    status: 400,
  },
  {
    name: 'unsafe integer amount',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":9007199254740993}',
    status: 400,
  },
  {
    name: 'huge amount',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":1e300}',
    status: 400,
  },
  {
    name: 'id as a number',
    url: '/v1/reservations',
    body: '{"reservation_id":7,"merchant_id":"m","amount_cents":1}',
    status: 400,
  },
  {
    name: 'empty id',
    url: '/v1/reservations',
    body: '{"reservation_id":"","merchant_id":"m","amount_cents":1}',
    status: 400,
  },
  {
    name: '129-character id',
    url: '/v1/reservations',
    body: `{"reservation_id":"${longId}","merchant_id":"m","amount_cents":1}`,
    status: 400,
  },
  {
    name: 'id with a space',
    url: '/v1/reservations',
    body: '{"reservation_id":"a b","merchant_id":"m","amount_cents":1}',
    status: 400,
  },
  {
    name: 'id with a slash',
    url: '/v1/reservations',
    body: '{"reservation_id":"a/b","merchant_id":"m","amount_cents":1}',
    status: 400,
  },
  {
    name: 'id with unicode',
    url: '/v1/reservations',
    body: '{"reservation_id":"é","merchant_id":"m","amount_cents":1}',
    status: 400,
  },
  {
    name: 'unknown field',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":1,"admin":true}',
    status: 400,
  },
  {
    name: 'zero ttl',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":1,"ttl_ms":0}',
    status: 400,
  },
  {
    name: 'ttl beyond 30 days',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":1,"ttl_ms":9999999999999}',
    status: 400,
  },
  {
    name: 'text/plain body',
    url: '/v1/reservations',
    body: 'hello',
    headers: { 'content-type': 'text/plain' },
    status: 415,
  },
  {
    name: 'oversized body',
    url: '/v1/reservations',
    body: `{"reservation_id":"a","merchant_id":"m","amount_cents":1,"pad":"${'p'.repeat(70_000)}"}`,
    status: 413,
  },
  {
    name: 'oversized batch',
    url: '/v1/reservations/batch',
    body: `{"items":[${'{"reservation_id":"a","merchant_id":"m","amount_cents":1},'.repeat(80_000)}{}]}`,
    status: 413,
  },
  { name: 'batch without items', url: '/v1/reservations/batch', body: '{}', status: 400 },
  { name: 'batch with empty items', url: '/v1/reservations/batch', body: '{"items":[]}', status: 400 },
  { name: 'batch items not an array', url: '/v1/reservations/batch', body: '{"items":{"a":1}}', status: 400 },
  {
    name: 'credit with bad merchant id in path',
    url: `/v1/merchants/${longId}/credits`,
    body: '{"transfer_id":"t","amount_cents":1}',
    status: 400,
  },
  {
    name: 'credit with string amount',
    url: '/v1/merchants/m/credits',
    body: '{"transfer_id":"t9","amount_cents":"1"}',
    status: 400,
  },
  {
    name: 'credit with negative amount',
    url: '/v1/merchants/m/credits',
    body: '{"transfer_id":"t9","amount_cents":-1}',
    status: 400,
  },
  {
    name: 'credit that would overflow a safe integer',
    url: '/v1/merchants/m/credits',
    body: '{"transfer_id":"t9","amount_cents":9007199254740991}',
    status: 400,
  },
  { name: 'capture of a bad id', url: '/v1/reservations/a%20b/capture', body: '{}', status: 400 },
  { name: 'unknown route', url: '/v1/reservation', body: '{}', status: 404 },
  { name: 'wrong method', method: 'GET', url: '/v1/reservations/batch', status: 404 },
];

test('bad input gets a clear 4xx JSON error, never a 5xx, and changes nothing', async () => {
  const stateBefore = store.stateHash();
  const lsnBefore = store.lsnApplied;
  const merchantBefore = (await app.inject({ method: 'GET', url: '/v1/merchants/m' })).body;
  for (const c of cases) {
    const response = await app.inject({
      method: c.method ?? 'POST',
      url: c.url,
      payload: c.body,
      headers: c.body === undefined ? c.headers : { ...json, ...c.headers },
    });
    assert.equal(
      response.statusCode,
      c.status,
      `${c.name}: got ${response.statusCode} ${response.body.slice(0, 200)}`,
    );
    const body = response.json();
    assert.equal(typeof body.error, 'string', `${c.name}: error code`);
    assert.ok(
      typeof body.message === 'string' && body.message.length > 10,
      `${c.name}: message says what is wrong`,
    );
    assert.doesNotMatch(response.body, /at .*\.ts:\d+/, `${c.name}: no stack trace`);
  }
  assert.equal(store.lsnApplied, lsnBefore, 'no record was written');
  assert.equal(store.stateHash(), stateBefore, 'state unchanged');
  assert.equal((await app.inject({ method: 'GET', url: '/v1/merchants/m' })).body, merchantBefore);
});
