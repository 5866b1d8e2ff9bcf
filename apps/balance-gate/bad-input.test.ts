import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Store } from '../../src/engine/store.ts';
import { hotRoutesOf } from '../../src/server/json-server.ts';
import { EngineMetrics } from '../../src/server/metrics.ts';
import { type Wire, wire } from '../../src/server/testing/wire.ts';
import { buildApp, type GateStore } from './app.ts';
import { balanceGateDefinition } from './domain.ts';

let app: FastifyInstance;
let store: GateStore;
let dir: string;
/** Over a real socket: the hot route answers there, and `inject` would skip it. */
let send: Wire;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'gate-bad-'));
  const metrics = new EngineMetrics();
  store = await Store.open(balanceGateDefinition, { dir, observer: metrics.observer() });
  app = buildApp({ store: () => store, metrics, token: undefined });
  send = await wire(app);
  await send({
    method: 'POST',
    url: '/v1/merchants/m/credits',
    payload: { transfer_id: 't0', amount_cents: 1000 },
  });
  await send({
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
const goodReservation = '{"reservation_id":"new","merchant_id":"m","amount_cents":1}';

/** Each case: a request that must be refused with a 4xx JSON error and change nothing. */
const cases: {
  name: string;
  method?: 'POST' | 'GET' | 'PUT' | 'DELETE';
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
  { name: 'capture of an encoded slash id', url: '/v1/reservations/a%2Fb/capture', status: 400 },
  { name: 'capture of a 129-character id', url: `/v1/reservations/${longId}/capture`, status: 400 },
  { name: 'capture of an empty id', url: '/v1/reservations//capture', status: 404 },
  {
    name: 'capture with a malformed JSON body',
    url: '/v1/reservations/held-1/capture',
    body: '{',
    status: 400,
  },
  { name: 'GET of a bad reservation id', method: 'GET', url: `/v1/reservations/${longId}`, status: 400 },
  { name: 'GET of a bad merchant id', method: 'GET', url: '/v1/merchants/a;b', status: 400 },
  { name: 'GET of a broken escape', method: 'GET', url: '/v1/merchants/%ZZ', status: 400 },
  { name: 'unknown route', url: '/v1/reservation', body: '{}', status: 404 },
  { name: 'trailing slash on a collection', url: '/v1/reservations/', body: goodReservation, status: 404 },
  { name: 'trailing slash on an item', method: 'GET', url: '/v1/reservations/held-1/', status: 404 },
  { name: 'trailing slash on a merchant', method: 'GET', url: '/v1/merchants/m/', status: 404 },
  { name: 'empty id on GET', method: 'GET', url: '/v1/reservations/', status: 404 },
  { name: 'double slash', method: 'GET', url: '//v1/merchants/m', status: 404 },
  { name: 'wrong method on batch', method: 'GET', url: '/v1/reservations/batch', status: 404 },
  { name: 'wrong method on an item', method: 'DELETE', url: '/v1/reservations/held-1', status: 404 },
  {
    name: 'wrong method on a collection',
    method: 'PUT',
    url: '/v1/reservations',
    body: goodReservation,
    status: 404,
  },
  { name: 'GET on a write route', method: 'GET', url: '/v1/merchants/m/credits', status: 404 },
  {
    name: 'form-encoded body',
    url: '/v1/reservations',
    body: 'reservation_id=a&merchant_id=m&amount_cents=1',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 415,
  },
  {
    name: 'JSON body labelled as XML',
    url: '/v1/reservations',
    body: goodReservation,
    headers: { 'content-type': 'application/xml' },
    status: 415,
  },
  {
    name: 'prototype pollution attempt',
    url: '/v1/reservations',
    body: '{"__proto__":{"admin":true},"reservation_id":"a","merchant_id":"m","amount_cents":1}',
    status: 400,
  },
  {
    name: 'constructor pollution attempt',
    url: '/v1/reservations',
    body: '{"constructor":{"prototype":{"admin":true}},"reservation_id":"a","merchant_id":"m","amount_cents":1}',
    status: 400,
  },
  {
    name: 'deeply nested JSON',
    url: '/v1/reservations',
    body: `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
    status: 400,
  },
  {
    name: 'NaN amount',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":NaN}',
    status: 400,
  },
  {
    name: 'null amount',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":null}',
    status: 400,
  },
  {
    name: 'amount as an array',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":[1]}',
    status: 400,
  },
  {
    name: 'fractional ttl',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":1,"ttl_ms":1.5}',
    status: 400,
  },
  {
    name: 'negative ttl',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":1,"ttl_ms":-1}',
    status: 400,
  },
  {
    name: 'ttl as a string',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m","amount_cents":1,"ttl_ms":"60000"}',
    status: 400,
  },
  {
    name: 'bad merchant id in a reservation',
    url: '/v1/reservations',
    body: '{"reservation_id":"a","merchant_id":"m m","amount_cents":1}',
    status: 400,
  },
  {
    name: 'credit without transfer_id',
    url: '/v1/merchants/m/credits',
    body: '{"amount_cents":1}',
    status: 400,
  },
  {
    name: 'credit with an empty transfer_id',
    url: '/v1/merchants/m/credits',
    body: '{"transfer_id":"","amount_cents":1}',
    status: 400,
  },
  {
    name: 'credit with a 129-character transfer_id',
    url: '/v1/merchants/m/credits',
    body: `{"transfer_id":"${longId}","amount_cents":1}`,
    status: 400,
  },
  {
    name: 'credit with a zero amount',
    url: '/v1/merchants/m/credits',
    body: '{"transfer_id":"t9","amount_cents":0}',
    status: 400,
  },
  {
    name: 'credit with an unknown field',
    url: '/v1/merchants/m/credits',
    body: '{"transfer_id":"t9","amount_cents":1,"merchant_id":"other"}',
    status: 400,
  },
  {
    name: 'oversized credit body',
    url: '/v1/merchants/m/credits',
    body: `{"transfer_id":"t9","amount_cents":1,"pad":"${'p'.repeat(70_000)}"}`,
    status: 413,
  },
  { name: 'batch that is an array', url: '/v1/reservations/batch', body: '[]', status: 400 },
  {
    name: 'batch with an unknown field',
    url: '/v1/reservations/batch',
    body: '{"items":[{}],"atomic":true}',
    status: 400,
  },
  { name: 'batch as malformed JSON', url: '/v1/reservations/batch', body: '{"items":[', status: 400 },
];

test('bad input gets a clear 4xx JSON error, never a 5xx, and changes nothing', async () => {
  const stateBefore = store.stateHash();
  const merchantBefore = (await send({ method: 'GET', url: '/v1/merchants/m' })).body;
  for (const c of cases) {
    const lsnBefore = store.lsnApplied;
    const response = await send({
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
    assert.match(response.headers['content-type'] as string, /^application\/json/, `${c.name}: JSON`);
    const body = response.json();
    assert.deepEqual(Object.keys(body), ['error', 'message'], `${c.name}: the error shape`);
    assert.match(body.error, /^[a-z_]+$/, `${c.name}: a stable error code`);
    assert.ok(body.message.length > 10, `${c.name}: message says what is wrong`);
    assert.doesNotMatch(response.body, /at .*\.[jt]s:\d+|node_modules|<html/i, `${c.name}: no internals`);
    assert.equal(store.lsnApplied, lsnBefore, `${c.name}: no record was written`);
  }
  assert.equal(store.stateHash(), stateBefore, 'state unchanged');
  assert.ok(
    (hotRoutesOf(app)?.served ?? 0) > 0,
    'the hot route answered the bad reservation bodies it takes',
  );
  assert.equal((await send({ method: 'GET', url: '/v1/merchants/m' })).body, merchantBefore);
});

test('error messages say what to fix', async () => {
  const post = (url: string, body: string) => send({ method: 'POST', url, payload: body, headers: json });
  const cases: [string, string, RegExp][] = [
    ['/v1/reservations', '{"reservation_id":"a","merchant_id":"m"}', /amount_cents/],
    [
      '/v1/reservations',
      '{"reservation_id":"a","merchant_id":"m","amount_cents":0}',
      /amount_cents must be >= 1/,
    ],
    [
      '/v1/reservations',
      '{"reservation_id":"a b","merchant_id":"m","amount_cents":1}',
      /reservation_id must match/,
    ],
    [
      '/v1/reservations',
      '{"reservation_id":"a","merchant_id":"m","amount_cents":1,"x":1}',
      /additional properties/,
    ],
    ['/v1/reservations', '{', /not valid JSON/],
    ['/v1/reservations', `{"pad":"${'p'.repeat(70_000)}"}`, /limit of 65536 bytes/],
  ];
  for (const [url, body, message] of cases) assert.match((await post(url, body)).json().message, message);
});
