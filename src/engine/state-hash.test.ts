import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ByteSequence, hashState } from './state-hash.ts';

test('equal data hashes equal whatever the insertion order of maps, sets and objects', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.string(), fc.oneof(fc.integer(), fc.string(), fc.double()))),
      (pairs) => {
        const forward = new Map(pairs);
        const backward = new Map([...forward].reverse());
        assert.equal(hashState(forward), hashState(backward));
        const objectForward = Object.fromEntries(forward);
        const objectBackward = Object.fromEntries(backward);
        assert.equal(
          hashState({ m: forward, o: objectForward, s: new Set(forward.keys()) }),
          hashState({ s: new Set(backward.keys()), o: objectBackward, m: backward }),
        );
      },
    ),
  );
});

test('any change of a value, a key, an order of an array or a type changes the hash', () => {
  const base = {
    balances: new Map([
      ['a', 1],
      ['b', 2],
    ]),
    list: [1, 2, 3],
    flag: true,
    name: 'x',
  };
  const h = hashState(base);
  assert.notEqual(
    hashState({
      ...base,
      balances: new Map([
        ['a', 1],
        ['b', 3],
      ]),
    }),
    h,
  );
  assert.notEqual(
    hashState({
      ...base,
      balances: new Map([
        ['a', 1],
        ['c', 2],
      ]),
    }),
    h,
  );
  assert.notEqual(
    hashState({
      ...base,
      balances: new Map([
        ['a', 2],
        ['b', 1],
      ]),
    }),
    h,
    'values swapped between keys',
  );
  assert.notEqual(hashState({ ...base, list: [1, 3, 2] }), h);
  assert.notEqual(hashState({ ...base, flag: false }), h);
  assert.notEqual(hashState({ ...base, name: 'y' }), h);
  assert.notEqual(hashState({ ...base, list: ['1', 2, 3] }), h, 'a number and its string differ');
  assert.notEqual(
    hashState({ ...base, extra: undefined }),
    h,
    'a present undefined key differs from absence',
  );
  assert.equal(hashState(-0), hashState(0));
});

test('distinct random maps practically never collide', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) seen.add(hashState(new Map([[`k${i % 100}`, i]])));
  assert.equal(seen.size, 20_000);
});

test('known data keeps its known hash: snapshot headers written by earlier builds still verify', () => {
  const bytes = new Uint8Array(1000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + 11) & 255;
  const state = {
    bytes,
    f: new Float64Array([1.5, -2, 1e12, Number.MAX_SAFE_INTEGER]),
    m: new Map<string, unknown>([
      ['a', 1],
      ['b', [2, 'x']],
    ]),
    s: new Set([1, 2]),
    n: null,
    big: new Uint8Array(70_000).fill(255),
  };
  // Values computed by the byte-at-a-time hash before it kept its second lane an int32.
  assert.equal(hashState(state), 'a0c2968046f44e85');
  assert.equal(hashState(new Uint8Array(0)), '56be8d2d641d7a89');
  assert.equal(hashState(Buffer.from('engram')), 'c96e4fbbd5fb65ba');
});

test('a ByteSequence hashes as the concatenation of its parts, wherever they are split', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 6 }), (bytes, cuts) => {
      const points = [0, ...cuts.map((c) => c % (bytes.length + 1)).sort((x, y) => x - y), bytes.length];
      const parts = points.slice(1).map((end, i) => bytes.subarray(points[i], end));
      assert.equal(hashState({ v: new ByteSequence(parts) }), hashState({ v: bytes }));
    }),
  );
  assert.notEqual(
    hashState(new ByteSequence([Uint8Array.of(1, 2), Uint8Array.of(3)])),
    hashState(new ByteSequence([Uint8Array.of(1, 3), Uint8Array.of(2)])),
  );
});
