import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Store } from '../../src/engine/store.ts';
import { HttpMetrics } from '../../src/server/http-metrics.ts';
import { hotRoutesOf } from '../../src/server/json-server.ts';
import { EngineMetrics } from '../../src/server/metrics.ts';
import { type Wire, wire } from '../../src/server/testing/wire.ts';
import { buildApp, type GateStore } from './app.ts';
import { balanceGateDefinition } from './domain.ts';

// POST /v1/reservations is answered by the hot route over a socket and by fastify's route under `inject`:
// these tests hold the two to the same answers, and check which path took each request.

let app: FastifyInstance;
let store: GateStore;
let dir: string;
let send: Wire;
let metrics: EngineMetrics;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'gate-hot-'));
  metrics = new EngineMetrics({ commandsName: 'balance_gate_commands_total' });
  const httpMetrics = new HttpMetrics(metrics.registry, 'balance_gate_http_requests_total');
  store = await Store.open(balanceGateDefinition, { dir, observer: metrics.observer() });
  metrics.attach(store);
  app = buildApp({ store: () => store, metrics, httpMetrics, token: undefined });
  send = await wire(app);
  await send({
    method: 'POST',
    url: '/v1/merchants/m/credits',
    payload: { transfer_id: 't0', amount_cents: 1000 },
  });
});
after(async () => {
  await app.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const served = () => hotRoutesOf(app)?.served ?? Number.NaN;

/** What a client can tell apart: status, the headers this contract sets, and the exact body. */
function answer(response: { statusCode: number; headers: Record<string, unknown>; body: string }) {
  return {
    status: response.statusCode,
    contentType: response.headers['content-type'],
    retryAfter: response.headers['retry-after'],
    body: response.body,
  };
}

const bodies: [string, string][] = [
  ['a new hold (read without JSON.parse)', '{"reservation_id":"h1","merchant_id":"m","amount_cents":100}'],
  [
    'a hold, keys in another order, indented',
    '{\n  "amount_cents": 3,\n  "merchant_id": "m",\n  "reservation_id": "h0"\n}',
  ],
  [
    'an amount written 1.0 (valid, read by JSON.parse)',
    '{"reservation_id":"h3","merchant_id":"m","amount_cents":1.0}',
  ],
  ['a hold with a ttl', '{"reservation_id":"h2","merchant_id":"m","amount_cents":5,"ttl_ms":60000}'],
  ['a rejection for funds', '{"reservation_id":"big","merchant_id":"m","amount_cents":100000}'],
  ['an unknown merchant', '{"reservation_id":"u1","merchant_id":"nobody","amount_cents":1}'],
  ['malformed JSON', '{"reservation_id":'],
  ['JSON that is not an object', '[1,2]'],
  ['a prototype key', '{"reservation_id":"p","merchant_id":"m","amount_cents":1,"__proto__":{"x":1}}'],
  ['a constructor key', '{"constructor":{"prototype":{"x":1}}}'],
  ['a missing amount', '{"reservation_id":"a","merchant_id":"m"}'],
  ['an amount as a string', '{"reservation_id":"a","merchant_id":"m","amount_cents":"5"}'],
  ['an unsafe amount', '{"reservation_id":"a","merchant_id":"m","amount_cents":9007199254740993}'],
  ['a bad id', '{"reservation_id":"a b","merchant_id":"m","amount_cents":1}'],
  ['an unknown field', '{"reservation_id":"a","merchant_id":"m","amount_cents":1,"x":1}'],
  ['whitespace around the object', ' \n{"reservation_id":"ws","merchant_id":"m","amount_cents":1}\n '],
];

test('the hot route and fastify give the same status, headers and bytes for every kind of reservation body', async () => {
  for (const [name, body] of bodies) {
    for (const contentType of ['application/json', 'Application/JSON; charset=utf-8']) {
      const headers = { 'content-type': contentType };
      const servedBefore = served();
      // First over the socket (the hot route decides), then through fastify (a retry where it was decided).
      const hot = await send({ method: 'POST', url: '/v1/reservations', payload: body, headers });
      assert.equal(served(), servedBefore + 1, `${name} (${contentType}): the hot route answered`);
      const viaFastify = await app.inject({
        method: 'POST',
        url: '/v1/reservations',
        payload: body,
        headers,
      });
      assert.deepEqual(answer(hot), answer(viaFastify), `${name} (${contentType})`);
    }
  }
  // The other way round: fastify decides, the hot route answers the retry.
  const body = '{"reservation_id":"f1","merchant_id":"m","amount_cents":7}';
  const headers = { 'content-type': 'application/json' };
  const first = await app.inject({ method: 'POST', url: '/v1/reservations', payload: body, headers });
  const retry = await send({ method: 'POST', url: '/v1/reservations', payload: body, headers });
  assert.equal(first.statusCode, 200);
  assert.deepEqual(answer(retry), answer(first));
  const conflict = await send({
    method: 'POST',
    url: '/v1/reservations',
    payload: '{"reservation_id":"f1","merchant_id":"m","amount_cents":8}',
    headers,
  });
  assert.equal(conflict.statusCode, 409);
  assert.equal(conflict.json().error, 'idempotency_conflict');
});

const batches: [string, string][] = [
  [
    'the exact shape (read without JSON.parse)',
    '{"items":[{"reservation_id":"b1","merchant_id":"m","amount_cents":1},{"amount_cents":2,"ttl_ms":9000,"merchant_id":"m","reservation_id":"b2"}]}',
  ],
  [
    'the exact shape, indented',
    '{\n  "items": [\n    { "reservation_id": "b3", "merchant_id": "m", "amount_cents": 3 }\n  ]\n}',
  ],
  [
    'a rejection and an unknown merchant among holds',
    '{"items":[{"reservation_id":"b4","merchant_id":"m","amount_cents":100000},{"reservation_id":"b5","merchant_id":"nobody","amount_cents":1},{"reservation_id":"b6","merchant_id":"m","amount_cents":1}]}',
  ],
  [
    'invalid items beside valid ones',
    '{"items":[{"reservation_id":"b7","merchant_id":"m","amount_cents":1},{"reservation_id":"b 8","merchant_id":"m","amount_cents":1},5]}',
  ],
  ['an amount written 1.0', '{"items":[{"reservation_id":"b9","merchant_id":"m","amount_cents":1.0}]}'],
  [
    'a prototype key in an item',
    '{"items":[{"reservation_id":"b10","merchant_id":"m","amount_cents":1,"__proto__":{}}]}',
  ],
  ['no items', '{"items":[]}'],
  ['items that are not an array', '{"items":{}}'],
  ['malformed JSON', '{"items":[{"reservation_id":'],
  [
    'a duplicate item id',
    '{"items":[{"reservation_id":"b11","merchant_id":"m","amount_cents":1},{"reservation_id":"b11","merchant_id":"m","amount_cents":2}]}',
  ],
];

test('the batch hot route and fastify give the same status, headers and bytes for every kind of batch body', async () => {
  for (const [name, body] of batches) {
    const headers = { 'content-type': 'application/json' };
    const servedBefore = served();
    const hot = await send({ method: 'POST', url: '/v1/reservations/batch', payload: body, headers });
    assert.equal(served(), servedBefore + 1, `${name}: the hot route answered`);
    const viaFastify = await app.inject({
      method: 'POST',
      url: '/v1/reservations/batch',
      payload: body,
      headers,
    });
    assert.deepEqual(answer(hot), answer(viaFastify), name);
  }
  const first = await send({
    method: 'POST',
    url: '/v1/reservations/batch',
    payload: batches[0][1],
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(first.json().results[0].status, 'held');
  assert.equal(first.json().results[1].sequence, first.json().results[0].sequence + 1);
});

test('requests the hot route does not take go to fastify, which answers them', async () => {
  const good = '{"reservation_id":"ft","merchant_id":"m","amount_cents":1}';
  const cases: [string, Parameters<Wire>[0], number][] = [
    [
      'a query string',
      {
        method: 'POST',
        url: '/v1/reservations?x=1',
        payload: good,
        headers: { 'content-type': 'application/json' },
      },
      200,
    ],
    [
      'text/plain',
      { method: 'POST', url: '/v1/reservations', payload: good, headers: { 'content-type': 'text/plain' } },
      415,
    ],
    ['no content type', { method: 'POST', url: '/v1/reservations', payload: good }, 415],
    [
      'an empty body',
      {
        method: 'POST',
        url: '/v1/reservations',
        payload: '',
        headers: { 'content-type': 'application/json' },
      },
      400,
    ],
    [
      'a body over the limit',
      {
        method: 'POST',
        url: '/v1/reservations',
        payload: `{"pad":"${'p'.repeat(70_000)}"}`,
        headers: { 'content-type': 'application/json' },
      },
      413,
    ],
    ['another method', { method: 'PUT', url: '/v1/reservations', payload: good }, 404],
  ];
  for (const [name, request, status] of cases) {
    const servedBefore = served();
    const response = await send(request);
    assert.equal(response.statusCode, status, `${name}: ${response.body}`);
    assert.equal(served(), servedBefore, `${name}: fastify answered`);
  }
  // A chunked body has no Content-Length to check against the limit before reading: fastify reads it.
  const servedBefore = served();
  const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const req = httpRequest(
      {
        port,
        host: '127.0.0.1',
        method: 'POST',
        path: '/v1/reservations',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.write('{"reservation_id":"chunked","merchant_id":"m",');
    req.end('"amount_cents":1}');
  });
  assert.equal(chunked.status, 200, chunked.body);
  assert.equal(JSON.parse(chunked.body).status, 'held');
  assert.equal(served(), servedBefore);
});

test('hot answers count in the per-route HTTP metric like fastify ones', async () => {
  const counted = async (status: number) => {
    const text = await metrics.registry.metrics();
    const line = new RegExp(
      `^balance_gate_http_requests_total\\{route="/v1/reservations",status="${status}"\\} (\\d+)$`,
      'm',
    );
    return Number(text.match(line)?.[1] ?? 0);
  };
  const ok = await counted(200);
  const bad = await counted(400);
  const headers = { 'content-type': 'application/json' };
  await send({
    method: 'POST',
    url: '/v1/reservations',
    payload: '{"reservation_id":"metric-1","merchant_id":"m","amount_cents":1}',
    headers,
  });
  await send({ method: 'POST', url: '/v1/reservations', payload: '{', headers });
  assert.equal(await counted(200), ok + 1);
  assert.equal(await counted(400), bad + 1);
});
