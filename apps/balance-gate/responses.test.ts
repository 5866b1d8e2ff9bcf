import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { MerchantView, ReservationResult } from './domain.ts';
import { STATUS_NAMES } from './domain.ts';
import {
  type BatchItemResult,
  batchResultsBody,
  merchantViewJson,
  reservationResultJson,
} from './responses.ts';

const anyNumber = fc.oneof(
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.double(),
  fc.constantFrom(-0, Number.NaN, Number.POSITIVE_INFINITY, 1e21, 5e-324),
);
const anyString = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('', '"', '\\', '\u0000', '\u2028', '\ud800', '\udc00x', '\ud83d\ude00'),
);
const merchant = fc.record({
  merchant_id: anyString,
  available_cents: anyNumber,
  held_cents: anyNumber,
  captured_cents: anyNumber,
  credited_cents: anyNumber,
});

test('merchantViewJson equals JSON.stringify', () => {
  fc.assert(
    fc.property(merchant, (m: MerchantView) => {
      assert.equal(merchantViewJson(m), JSON.stringify(m));
    }),
    { numRuns: 2000 },
  );
});

/** Every shape of a reservation answer, built in the documented key order like the domain and its decoder. */
const anyResult = fc
  .tuple(
    anyString,
    fc.constantFrom(...STATUS_NAMES),
    fc.option(fc.oneof(fc.constant('insufficient_funds'), anyString), { nil: undefined }),
    fc.option(anyNumber, { nil: undefined }),
    merchant,
    anyNumber,
  )
  .map(([reservation_id, status, reason, sequence, m, lsn]) => {
    const r = { reservation_id, status } as ReservationResult;
    if (reason !== undefined) r.reason = reason;
    if (sequence !== undefined) r.sequence = sequence;
    r.merchant = m;
    r.lsn = lsn;
    return r;
  });

test('reservationResultJson equals JSON.stringify for every shape (with and without reason, sequence)', () => {
  fc.assert(
    fc.property(anyResult, (r) => {
      assert.equal(reservationResultJson(r), JSON.stringify(r));
    }),
    { numRuns: 2000 },
  );
});

test('reservationResultJson writes the documented key order whatever order the object was built in', () => {
  const shuffled = {
    lsn: 7,
    merchant: { credited_cents: 10, captured_cents: 0, held_cents: 5, available_cents: 5, merchant_id: 'm1' },
    sequence: 1,
    status: 'held',
    reservation_id: 'r1',
  } as unknown as ReservationResult;
  assert.equal(
    reservationResultJson(shuffled),
    '{"reservation_id":"r1","status":"held","sequence":1,"merchant":{"merchant_id":"m1","available_cents":5,' +
      '"held_cents":5,"captured_cents":0,"credited_cents":10},"lsn":7}',
  );
});

test('batchResultsBody equals JSON.stringify of {results} for reservation results and item errors', () => {
  const item: fc.Arbitrary<BatchItemResult> = fc.oneof(
    anyResult,
    fc.record({ error: anyString, message: anyString }),
  );
  fc.assert(
    fc.property(fc.array(item, { maxLength: 40 }), (results) => {
      assert.deepEqual(batchResultsBody(results), Buffer.from(JSON.stringify({ results })));
    }),
    { numRuns: 1000 },
  );
});
