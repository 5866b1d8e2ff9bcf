import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import type { ReserveCommand } from './domain.ts';
import { parseBatchFast, parseReservationFast } from './reservation-parser.ts';
import { BATCH_ITEMS_MAX, batchBody, reservationBody, TTL_MS_MAX } from './schemas.ts';

const ajv = new Ajv({ coerceTypes: false, allErrors: false });
const validBatch = ajv.compile(batchBody);
const validItem = ajv.compile(reservationBody);

/** The general path's reading of one reservation: JSON.parse and the schema; undefined unless valid. */
function generalOne(text: string): ReserveCommand | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  return validItem(body) ? toCommand(body) : undefined;
}

/** The general path's reading of a batch: JSON.parse and the schemas; undefined unless every item is valid. */
function general(text: string): ReserveCommand[] | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!validBatch(body)) return undefined;
  const items = (body as { items: unknown[] }).items;
  if (!items.every((item) => validItem(item))) return undefined;
  return items.map(toCommand);
}

function toCommand(item: unknown): ReserveCommand {
  const i = item as { reservation_id: string; merchant_id: string; amount_cents: number; ttl_ms?: number };
  return {
    reservationId: i.reservation_id,
    merchantId: i.merchant_id,
    amountCents: i.amount_cents,
    ttlMs: i.ttl_ms,
  };
}

const parse = (text: string) => parseBatchFast(Buffer.from(text, 'utf8'));
const parseOne = (text: string) => parseReservationFast(Buffer.from(text, 'utf8'));

const idChar = fc.constantFrom(...'abcXYZ019._:-'.split(''));
const id = fc.string({ unit: idChar, minLength: 1, maxLength: 128 });
const whitespace = fc.string({ unit: fc.constantFrom(' ', '\n', '\t', '\r'), maxLength: 2 });
const item = fc.record(
  {
    reservation_id: id,
    merchant_id: id,
    amount_cents: fc.oneof(fc.integer({ min: 1, max: 10_000 }), fc.constant(Number.MAX_SAFE_INTEGER)),
    ttl_ms: fc.integer({ min: 1, max: TTL_MS_MAX }),
  },
  { requiredKeys: ['reservation_id', 'merchant_id', 'amount_cents'] },
);

/** JSON text of `value` with random whitespace between tokens and the keys in a random order. */
function render(value: unknown, ws: () => string, shuffle: <T>(items: T[]) => T[]): string {
  if (Array.isArray(value)) return `[${value.map((v) => ws() + render(v, ws, shuffle) + ws()).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = shuffle(Object.entries(value));
    return `{${entries.map(([k, v]) => `${ws()}${JSON.stringify(k)}${ws()}:${ws()}${render(v, ws, shuffle)}${ws()}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Renders values from `values` with random whitespace and key order; each text must read through `fast` as
 * the general path reads it.
 */
function readsAsGeneral<T>(
  values: fc.Arbitrary<T>,
  fast: (text: string) => unknown,
  slow: (text: string) => unknown,
): void {
  fc.assert(
    fc.property(
      values,
      fc.array(whitespace, { minLength: 1, maxLength: 50 }),
      fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
      (value, spaces, order) => {
        let w = 0;
        let o = 0;
        const text = render(
          value,
          () => spaces[w++ % spaces.length],
          (entries) => [...entries].sort(() => (order[o++ % order.length] % 3) - 1),
        );
        const read = fast(text);
        assert.notEqual(read, undefined, text);
        assert.deepEqual(read, slow(text));
      },
    ),
    { numRuns: 300 },
  );
}

/** Cuts and inserts JSON-ish bytes anywhere in `good`: whatever `fast` accepts, `slow` reads the same. */
function mutationsReadAsGeneral(
  good: string,
  fast: (text: string) => unknown,
  slow: (text: string) => unknown,
): void {
  fc.assert(
    fc.property(
      fc.nat({ max: good.length }),
      fc.nat({ max: 3 }),
      fc.string({ unit: fc.constantFrom(...'{}[],:"\\ 0123456789.eE-+_aZ\u00e9'.split('')), maxLength: 3 }),
      (at, cut, insert) => {
        const text = good.slice(0, at) + insert + good.slice(Math.min(good.length, at + cut));
        const read = fast(text);
        if (read !== undefined) assert.deepEqual(read, slow(text), text);
      },
    ),
    { numRuns: 3000 },
  );
}

test('a batch in the exact shape, with any whitespace and key order, reads as JSON.parse and the schema read it', () => {
  readsAsGeneral(
    fc.array(item, { minLength: 1, maxLength: 20 }).map((items) => ({ items })),
    parse,
    general,
  );
});

test('whatever the batch parser accepts, the general path accepts with the same values (mutated bodies)', () => {
  mutationsReadAsGeneral(
    '{"items":[{"reservation_id":"r1","merchant_id":"m","amount_cents":12,"ttl_ms":5},{"merchant_id":"m2","reservation_id":"r:2","amount_cents":3}]}',
    parse,
    general,
  );
});

test('bodies outside the exact shape go to the general path, valid or not', () => {
  const one = (fields: string) => `{"items":[{${fields}}]}`;
  const base = '"reservation_id":"r","merchant_id":"m"';
  const cases: [string, string][] = [
    ['an amount written 1.0 (valid JSON for the schema)', one(`${base},"amount_cents":1.0`)],
    ['an amount with an exponent', one(`${base},"amount_cents":1e3`)],
    ['a zero amount', one(`${base},"amount_cents":0`)],
    ['a negative amount', one(`${base},"amount_cents":-5`)],
    ['a leading zero', one(`${base},"amount_cents":05`)],
    ['an unsafe amount', one(`${base},"amount_cents":9007199254740992`)],
    ['a 17-digit amount', one(`${base},"amount_cents":10000000000000000`)],
    ['a ttl over the maximum', one(`${base},"amount_cents":1,"ttl_ms":${TTL_MS_MAX + 1}`)],
    ['a duplicate key', one(`${base},"amount_cents":1,"amount_cents":2`)],
    ['an escape in an id', one('"reservation_id":"r\\u0031","merchant_id":"m","amount_cents":1')],
    [
      'an id of 129 characters',
      one(`"reservation_id":"${'r'.repeat(129)}","merchant_id":"m","amount_cents":1`),
    ],
    ['an empty id', one('"reservation_id":"","merchant_id":"m","amount_cents":1')],
    ['a non-ASCII id', one('"reservation_id":"r\u00e9","merchant_id":"m","amount_cents":1')],
    ['a prototype key', one(`${base},"amount_cents":1,"__proto__":{}`)],
    ['an unknown key', one(`${base},"amount_cents":1,"note":"x"`)],
    ['a missing amount', one(base)],
    ['no items', '{"items":[]}'],
    ['another top-level key', '{"items":[],"x":1}'],
    ['trailing bytes', `${one(`${base},"amount_cents":1`)}x`],
    ['a byte-order mark', `\ufeff${one(`${base},"amount_cents":1`)}`],
    ['truncated', one(`${base},"amount_cents":1`).slice(0, -2)],
  ];
  for (const [name, text] of cases) assert.equal(parse(text), undefined, name);
  const item = `{${base},"amount_cents":1}`;
  assert.equal(
    parse(
      `{"items":[${Array(BATCH_ITEMS_MAX + 1)
        .fill(item)
        .join(',')}]}`,
    ),
    undefined,
    'too many items',
  );
  assert.equal(parse(`{"items":[${Array(BATCH_ITEMS_MAX).fill(item).join(',')}]}`)?.length, BATCH_ITEMS_MAX);
  assert.deepEqual(parse(one(`${base},"amount_cents":${Number.MAX_SAFE_INTEGER}`)), [
    { reservationId: 'r', merchantId: 'm', amountCents: Number.MAX_SAFE_INTEGER, ttlMs: undefined },
  ]);
});

test('a single reservation in the exact shape, with any whitespace and key order, reads as JSON.parse and the schema read it', () => {
  readsAsGeneral(item, parseOne, generalOne);
});

test('whatever the single-reservation parser accepts, the general path accepts with the same values (mutated bodies)', () => {
  mutationsReadAsGeneral(
    '{"reservation_id":"r1","merchant_id":"m","amount_cents":12,"ttl_ms":5}',
    parseOne,
    generalOne,
  );
});

test('single reservations outside the exact shape go to the general path, valid or not', () => {
  const base = '"reservation_id":"r","merchant_id":"m"';
  const cases: [string, string][] = [
    ['an amount written 1.0', `{${base},"amount_cents":1.0}`],
    ['a zero amount', `{${base},"amount_cents":0}`],
    ['an unsafe amount', `{${base},"amount_cents":9007199254740992}`],
    ['a ttl over the maximum', `{${base},"amount_cents":1,"ttl_ms":${TTL_MS_MAX + 1}}`],
    ['a duplicate key', `{${base},"amount_cents":1,"amount_cents":2}`],
    ['an escape in an id', '{"reservation_id":"r\\u0031","merchant_id":"m","amount_cents":1}'],
    ['a prototype key', `{${base},"amount_cents":1,"__proto__":{}}`],
    ['a missing amount', `{${base}}`],
    ['a batch body', `{"items":[{${base},"amount_cents":1}]}`],
    ['an array', `[{${base},"amount_cents":1}]`],
    ['two bodies', `{${base},"amount_cents":1}{${base},"amount_cents":1}`],
    ['trailing bytes', `{${base},"amount_cents":1}x`],
    ['truncated', `{${base},"amount_cents":1`],
    ['empty', ''],
  ];
  for (const [name, text] of cases) assert.equal(parseOne(text), undefined, name);
  assert.deepEqual(parseOne(` {${base},"amount_cents":${Number.MAX_SAFE_INTEGER}}\n`), {
    reservationId: 'r',
    merchantId: 'm',
    amountCents: Number.MAX_SAFE_INTEGER,
    ttlMs: undefined,
  });
});
