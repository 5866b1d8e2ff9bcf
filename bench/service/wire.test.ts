import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  HttpResponseParser,
  httpBatchPost,
  httpPost,
  PgResponseParser,
  pgExecute,
  RespResponseParser,
  reservationJson,
  respReserve,
} from './wire.ts';
import { ReservationStream } from './workload.ts';

/** Feeds `bytes` split at every possible point into fresh parsers; each split must give `expected`. */
function everySplit(
  bytes: Buffer,
  make: (onResponse: (error: string | undefined) => void) => { feed(chunk: Buffer): void },
  expected: (string | undefined)[],
): void {
  for (let cut = 0; cut <= bytes.length; cut++) {
    const got: (string | undefined)[] = [];
    const parser = make((error) => got.push(error));
    parser.feed(bytes.subarray(0, cut));
    parser.feed(bytes.subarray(cut));
    assert.deepEqual(got, expected, `split at ${cut}`);
  }
  const got: (string | undefined)[] = [];
  const parser = make((error) => got.push(error));
  for (let i = 0; i < bytes.length; i++) parser.feed(bytes.subarray(i, i + 1));
  assert.deepEqual(got, expected, 'byte by byte');
}

test('HTTP: responses split anywhere, status and body of an error kept', () => {
  const response = (status: string, body: string) =>
    `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const ok = response('200 OK', '{"a":"b\r\n"}');
  const empty = response('204 No Content', '');
  const conflict = response('409 Conflict', '{"error":"idempotency_conflict"}');
  everySplit(Buffer.from(ok + empty + conflict), (on) => new HttpResponseParser(on), [
    undefined,
    undefined,
    'HTTP 409 {"error":"idempotency_conflict"}',
  ]);
});

test('HTTP: a response without content-length is refused, not misparsed', () => {
  const parser = new HttpResponseParser(() => undefined);
  assert.throws(
    () => parser.feed(Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n')),
    /content-length/,
  );
});

test('HTTP: the request carries the exact body length', () => {
  const body = reservationJson({ reservationId: 'r-1', merchantId: 'merchant-7', amountCents: 42 });
  assert.deepEqual(JSON.parse(body), { reservation_id: 'r-1', merchant_id: 'merchant-7', amount_cents: 42 });
  const request = httpPost('/v1/reservations', body);
  const [head, sent] = request.split('\r\n\r\n');
  assert.match(head, new RegExp(`Content-Length: ${Buffer.byteLength(body)}`));
  assert.equal(sent, body);
});

test('HTTP: a batch written as bytes equals the same reservations as strings', () => {
  // Counters past a power of ten, and merchants and amounts of every width, all go through writeJson.
  for (const [prefix, seed, items] of [
    ['b0-', 1, 1],
    ['wrk-batch-9:', 7, 1234],
    ['x', 0, 8190],
  ] as const) {
    const strings = new ReservationStream(prefix, seed);
    const parts = Array.from({ length: items }, () => reservationJson(strings.next()));
    const expected = httpPost('/v1/reservations/batch', `{"items":[${parts.join(',')}]}`);
    const bytes = httpBatchPost('/v1/reservations/batch', new ReservationStream(prefix, seed), items);
    assert.equal(bytes.toString('latin1'), expected, `${prefix} ${items} items`);
  }
});

test('RESP: arrays with nil and integers, errors, split anywhere', () => {
  const reply = '*6\r\n$4\r\nheld\r\n:1\r\n:700\r\n:300\r\n:0\r\n:1000\r\n';
  const rejected = '*6\r\n$8\r\nrejected\r\n$-1\r\n:700\r\n:300\r\n:0\r\n:1000\r\n';
  const error = '-IDEMPOTENCY_CONFLICT reservation res:c1 was decided\r\n';
  everySplit(Buffer.from(reply + rejected + error), (on) => new RespResponseParser(on), [
    undefined,
    undefined,
    'IDEMPOTENCY_CONFLICT reservation res:c1 was decided',
  ]);
});

test('RESP: the EVALSHA request is one well-formed array of 8 bulk strings', () => {
  const request = respReserve('a'.repeat(40), {
    reservationId: 'g1-5',
    merchantId: 'merchant-3',
    amountCents: 99,
  });
  // A request is itself RESP: the reply parser must see exactly one complete value in it.
  const got: (string | undefined)[] = [];
  new RespResponseParser((e) => got.push(e)).feed(Buffer.from(request));
  assert.deepEqual(got, [undefined]);
  assert.ok(request.startsWith('*8\r\n$7\r\nEVALSHA\r\n$40\r\n'));
  assert.ok(
    request.includes(
      '$8\r\nres:g1-5\r\n$14\r\nmer:merchant-3\r\n$10\r\nmerchant-3\r\n$2\r\n99\r\n$0\r\n\r\n',
    ),
  );
});

function pgMessage(type: string, payload: Buffer): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + payload.length, 1);
  payload.copy(out, 5);
  return out;
}

test('PostgreSQL: one response per ReadyForQuery; an ErrorResponse fails it', () => {
  const row = Buffer.alloc(2 + 4 + 4);
  row.writeInt16BE(1, 0);
  row.writeInt32BE(4, 2);
  row.write('held', 6, 'latin1');
  const ready = pgMessage('Z', Buffer.from('I'));
  const ok = Buffer.concat([
    pgMessage('2', Buffer.alloc(0)),
    pgMessage('D', row),
    pgMessage('C', Buffer.from('SELECT 1\0')),
    ready,
  ]);
  const error = Buffer.concat([
    pgMessage('E', Buffer.from('SERROR\0CP0409\0Mreservation r1 was decided for a different request\0\0')),
    pgMessage('Z', Buffer.from('E')),
  ]);
  everySplit(Buffer.concat([ok, error, ok]), (on) => new PgResponseParser(on), [
    undefined,
    'P0409 reservation r1 was decided for a different request',
    undefined,
  ]);
});

test('PostgreSQL: Bind/Execute/Sync framing is self-consistent', () => {
  const bytes = pgExecute(['g2-17', 'merchant-9', '1234']);
  const types: string[] = [];
  for (let at = 0; at < bytes.length; at += 1 + bytes.readInt32BE(at + 1))
    types.push(String.fromCharCode(bytes[at]));
  assert.deepEqual(types, ['B', 'E', 'S']);
  const bind = bytes.subarray(0, 1 + bytes.readInt32BE(1));
  assert.equal(bind.toString('latin1', 5, 8), '\0s\0');
  assert.equal(bind.readInt16BE(10), 3);
  assert.ok(bind.includes(Buffer.from('\0\0\0\x05g2-17\0\0\0\x0amerchant-9\0\0\0\x041234\0\0', 'latin1')));
});
