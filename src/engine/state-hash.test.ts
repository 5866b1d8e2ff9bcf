import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { hashState } from './state-hash.ts';

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
