import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { JsonBytes } from './json-bytes.ts';

const anyNumber = fc.oneof(
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.double(),
  fc.constantFrom(0, -0, 9, 10, 0xffffffff, 0x100000000, Number.MAX_SAFE_INTEGER, 2 ** 53, 1e21, 5e-324),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
);
const anyString = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._:-]{0,40}$/),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(
    '',
    '"',
    '\\',
    '\u0000',
    '\u001f',
    '\u007f',
    '\u2028',
    '\ud800',
    '\udc00x',
    '\ud83d\ude00',
    'é',
  ),
);

test('JsonBytes writes exactly the bytes of JSON.stringify for strings and numbers', () => {
  const part = fc.oneof(
    anyString.map((v) => ({ kind: 'string' as const, v })),
    anyNumber.map((v) => ({ kind: 'number' as const, v })),
  );
  fc.assert(
    fc.property(fc.array(part, { maxLength: 30 }), fc.integer({ min: 1, max: 100 }), (parts, hint) => {
      // A tiny size hint makes the writer grow mid-value, which must not change a byte.
      const w = new JsonBytes(hint);
      const expected: string[] = [];
      w.raw(JsonBytes.fragment('['));
      parts.forEach((p, i) => {
        if (i > 0) w.byte(0x2c);
        if (p.kind === 'string') w.string(p.v);
        else w.number(p.v);
        expected.push(JSON.stringify(p.v));
      });
      w.raw(JsonBytes.fragment(']'));
      assert.deepEqual(w.finish(), Buffer.from(`[${expected.join(',')}]`));
    }),
    { numRuns: 3000 },
  );
});

test('JsonBytes.finish hands over its buffer and starts a new one', () => {
  const w = new JsonBytes(8);
  w.string('first');
  const first = w.finish();
  w.string('second');
  const second = w.finish();
  assert.equal(first.toString(), '"first"');
  assert.equal(second.toString(), '"second"');
});
