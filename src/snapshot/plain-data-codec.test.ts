import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { hashState } from '../engine/state-hash.ts';
import { BinReader, BinWriter } from '../util/bin.ts';
import { plainDataCodec } from './plain-data-codec.ts';

const plain = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer(),
    fc.double(),
    fc.string(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.bigInt(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string(), tie('value'), { maxKeys: 4, noNullPrototype: true }),
    fc
      .array(fc.tuple(fc.oneof(fc.string(), fc.integer()), tie('value')), { maxLength: 4 })
      .map((e) => new Map(e)),
    fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 4 }).map((e) => new Set(e)),
  ),
})).value;

test('plain data round-trips exactly (same state hash, deep equality)', () => {
  fc.assert(
    fc.property(plain, (value) => {
      const w = new BinWriter(16);
      plainDataCodec.encode(value, w);
      const decoded = plainDataCodec.decode(new BinReader(w.buf, 0, w.pos), 1);
      assert.deepStrictEqual(decoded, value);
      assert.equal(hashState(decoded), hashState(value));
    }),
  );
});

test('an own "__proto__" key round-trips as an own key, not as the prototype', () => {
  const value = JSON.parse('{"__proto__":{"admin":true},"list":[{"__proto__":[]}]}');
  const w = new BinWriter(16);
  plainDataCodec.encode(value, w);
  const decoded = plainDataCodec.decode(new BinReader(w.buf, 0, w.pos), 1);
  assert.deepStrictEqual(decoded, value);
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
  assert.deepEqual(Object.keys(decoded), ['__proto__', 'list']);
  assert.equal(hashState(decoded), hashState(value));
});

test('class instances and functions are refused with a clear error', () => {
  class Account {}
  assert.throws(() => plainDataCodec.encode({ a: new Account() }, new BinWriter()), /instance of Account/);
  assert.throws(() => plainDataCodec.encode({ f: () => 1 }, new BinWriter()), /function/);
});
