import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prng } from './prng.ts';

const SAMPLES = 20_000;

test('the stream is pinned: these values must never change (recorded seeds depend on them)', () => {
  const prng = new Prng(1);
  assert.deepEqual(
    [prng.nextU32(), prng.nextU32(), prng.nextU32(), prng.nextU32()],
    [3964317691, 2295682031, 2113742504, 3256742822],
  );
  const other = new Prng(0xdeadbeef);
  assert.deepEqual([other.nextU32(), other.nextU32()], [2313761543, 3187615289]);
});

test('the same seed gives the same stream; neighbouring seeds give different ones', () => {
  const draw = (seed: number) => {
    const prng = new Prng(seed);
    return Array.from({ length: 8 }, () => prng.nextU32());
  };
  assert.deepEqual(draw(42), draw(42));
  const firsts = new Set<number>();
  for (let seed = 0; seed < 1000; seed++) firsts.add(new Prng(seed).nextU32());
  assert.equal(firsts.size, 1000, 'no two of 1,000 consecutive seeds start alike');
});

test('seeds are taken modulo 2^32', () => {
  assert.equal(new Prng(-1).nextU32(), new Prng(4294967295).nextU32());
  assert.equal(new Prng(2 ** 32 + 7).nextU32(), new Prng(7).nextU32());
});

test('nextU32 and nextFloat stay in range and are roughly uniform', () => {
  const prng = new Prng(3);
  const buckets = new Array<number>(10).fill(0);
  for (let i = 0; i < SAMPLES; i++) {
    const u = prng.nextU32();
    assert.ok(Number.isInteger(u) && u >= 0 && u < 2 ** 32);
    const f = prng.nextFloat();
    assert.ok(f >= 0 && f < 1);
    buckets[Math.floor(f * 10)]++;
  }
  // Each bucket expects 2,000; 10% slack is more than 4 standard deviations.
  for (const count of buckets) assert.ok(Math.abs(count - SAMPLES / 10) < SAMPLES / 100, `${buckets}`);
});

test('int covers exactly [0, max)', () => {
  const prng = new Prng(4);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const n = prng.int(7);
    assert.ok(Number.isInteger(n) && n >= 0 && n < 7);
    seen.add(n);
  }
  assert.equal(seen.size, 7);
  for (let i = 0; i < 100; i++) assert.equal(prng.int(1), 0);
});

test('int rejects bounds that are not integers in [1, 2^32] (a programmer error)', () => {
  const prng = new Prng(5);
  for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 32 + 1]) assert.throws(() => prng.int(bad), /Prng.int/);
  assert.throws(() => new Prng(Number.NaN), /finite/);
});

test('chance(0) never fires, chance(1) always does, chance(0.25) about a quarter of the time', () => {
  const prng = new Prng(6);
  let hits = 0;
  for (let i = 0; i < SAMPLES; i++) {
    assert.equal(prng.chance(0), false);
    assert.equal(prng.chance(1), true);
    if (prng.chance(0.25)) hits++;
  }
  assert.ok(Math.abs(hits - SAMPLES / 4) < SAMPLES / 50, `hits ${hits}`);
});

test('pick returns every item eventually and refuses an empty list', () => {
  const prng = new Prng(7);
  const items = ['a', 'b', 'c'] as const;
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) seen.add(prng.pick(items));
  assert.deepEqual([...seen].sort(), ['a', 'b', 'c']);
  assert.throws(() => prng.pick([]), /at least one/);
});

test('fork is deterministic and independent of the parent stream', () => {
  const parentA = new Prng(8);
  const parentB = new Prng(8);
  const childA = parentA.fork();
  const childB = parentB.fork();
  const fromChild = Array.from({ length: 4 }, () => childA.nextU32());
  assert.deepEqual(
    fromChild,
    Array.from({ length: 4 }, () => childB.nextU32()),
  );
  assert.deepEqual(
    Array.from({ length: 4 }, () => parentA.nextU32()),
    Array.from({ length: 4 }, () => parentB.nextU32()),
  );
  assert.notDeepEqual(
    fromChild,
    Array.from({ length: 4 }, () => parentA.nextU32()),
  );
});
