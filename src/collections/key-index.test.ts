import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { hashKeyBytes, KEY_CHUNK_SLOTS, KeyIndex } from './key-index.ts';

function roundTrip(index: KeyIndex): KeyIndex {
  // Copies, as a snapshot would: the rebuilt index must not share memory with the original.
  const parts = [...index.chunksForSnapshot()].map((p) => ({
    count: p.count,
    offsets: Uint32Array.from(p.offsets),
    bytes: Uint8Array.from(p.bytes),
  }));
  return KeyIndex.fromChunks(parts);
}

test('finds exactly the keys added, in insertion-order slots, for any strings (ASCII or not)', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 40 }), { maxLength: 300 }), (keys) => {
      const index = new KeyIndex();
      const model = new Map<string, number>();
      for (const key of keys) {
        if (Buffer.from(key).toString() !== key) {
          assert.throws(() => index.add(key), /unpaired surrogate/);
          assert.equal(index.find(key), -1);
        } else if (model.has(key)) {
          assert.throws(() => index.add(key), /already in the index/);
        } else {
          model.set(key, index.add(key));
          assert.equal(model.get(key), model.size - 1);
        }
      }
      for (const rebuilt of [index, roundTrip(index)]) {
        assert.equal(rebuilt.size, model.size);
        for (const [key, slot] of model) {
          assert.equal(rebuilt.find(key), slot);
          assert.equal(rebuilt.key(slot), key);
        }
        assert.equal(rebuilt.find('\u0000absent\uffff'), model.get('\u0000absent\uffff') ?? -1);
      }
    }),
    { numRuns: 200 },
  );
});

test('holds keys across several arena chunks and many shard growths, and keeps adding after a rebuild', () => {
  const count = KEY_CHUNK_SLOTS * 2 + 123;
  const index = new KeyIndex();
  for (let i = 0; i < count; i++) assert.equal(index.add(`payout-${i}`), i);
  const rebuilt = roundTrip(index);
  for (const probe of [index, rebuilt]) {
    for (let i = 0; i < count; i += 997) assert.equal(probe.find(`payout-${i}`), i);
    assert.equal(probe.find(`payout-${count}`), -1);
    assert.equal(probe.find('payout-'), -1);
    assert.equal(probe.key(count - 1), `payout-${count - 1}`);
  }
  assert.equal(rebuilt.add(`payout-${count}`), count);
  assert.equal(rebuilt.add('päyout-ü'), count + 1);
  assert.equal(rebuilt.find('päyout-ü'), count + 1);
  assert.equal(rebuilt.find(`payout-${count}`), count);
  assert.equal(index.find(`payout-${count}`), -1, 'the original shares nothing with the rebuilt index');
});

test('a chunk sized from short keys grows for long ones: the next chunk starts with room for its keys', () => {
  // The second chunk's arena is sized from the first chunk's 1-2 byte keys; its own keys are ~100 bytes.
  const index = new KeyIndex();
  for (let i = 0; i < KEY_CHUNK_SLOTS; i++) index.add(i.toString(36));
  const long = (i: number) => `${'x'.repeat(90)}-${i}`;
  for (let i = 0; i < 1000; i++) assert.equal(index.add(long(i)), KEY_CHUNK_SLOTS + i);
  for (const probe of [index, roundTrip(index)]) {
    for (let i = 0; i < 1000; i += 37) assert.equal(probe.key(KEY_CHUNK_SLOTS + i), long(i));
    assert.equal(probe.find(long(999)), KEY_CHUNK_SLOTS + 999);
    assert.equal(probe.find((KEY_CHUNK_SLOTS - 1).toString(36)), KEY_CHUNK_SLOTS - 1);
  }
});

test('a key that is a prefix of another, or equal in length but different, is a different key', () => {
  const index = new KeyIndex();
  index.add('ab');
  index.add('abc');
  index.add('abd');
  assert.equal(index.find('a'), -1);
  assert.equal(index.find('abc'), 1);
  assert.equal(index.find('abd'), 2);
  assert.equal(index.find('abe'), -1);
  assert.equal(index.find('é'), -1);
  index.add('é');
  assert.equal(index.find('é'), 3);
  assert.equal(index.find('\u00c3\u00a9'), -1, 'the UTF-8 bytes of é read as Latin-1 are another key');
  // Both would encode to U+FFFD's bytes: they are refused, not confused with the real U+FFFD.
  index.add('\ufffd');
  assert.equal(index.find('\ud800'), -1);
  assert.throws(() => index.add('\udc00'), /unpaired surrogate/);
});

test('refuses snapshot chunks that are inconsistent rather than building a wrong index', () => {
  const bytes = Buffer.from('aabb');
  assert.throws(
    () => KeyIndex.fromChunks([{ count: 2, offsets: Uint32Array.of(0, 2, 5), bytes }]),
    /offsets do not match/,
  );
  assert.throws(
    () => KeyIndex.fromChunks([{ count: 2, offsets: Uint32Array.of(0, 3, 2), bytes: bytes.subarray(0, 2) }]),
    /decrease/,
  );
  assert.throws(
    () => KeyIndex.fromChunks([{ count: 2, offsets: Uint32Array.of(0, 2, 4), bytes: Buffer.from('aaaa') }]),
    /duplicate key 'aa'/,
  );
  assert.throws(
    () =>
      KeyIndex.fromChunks([
        { count: 1, offsets: Uint32Array.of(0, 1), bytes: Buffer.from('a') },
        { count: 1, offsets: Uint32Array.of(0, 1), bytes: Buffer.from('b') },
      ]),
    /chunks must be full/,
  );
});

test('a key added as its UTF-8 bytes is the same key as the string', () => {
  const index = new KeyIndex();
  const keys = ['payout-1', 'päyout-ü-€', '', 'x'.repeat(300)];
  const buf = Buffer.concat(keys.map((k) => Buffer.concat([Buffer.from('..'), Buffer.from(k)])));
  let at = 0;
  for (const [n, key] of keys.entries()) {
    const start = at + 2;
    const end = start + Buffer.byteLength(key);
    assert.equal(index.addBytes(buf, start, end), n);
    at = end;
  }
  for (const [n, key] of keys.entries()) {
    assert.equal(index.find(key), n);
    assert.equal(index.key(n), key);
    assert.throws(() => index.add(key), /already in the index/);
  }
  const rebuilt = roundTrip(index);
  for (const [n, key] of keys.entries()) assert.equal(rebuilt.find(key), n);
  assert.throws(() => index.addBytes(Buffer.from('payout-1'), 0, 8), /'payout-1' is already in the index/);
});

test('ASCII keys of every tail length hash the same as strings and as bytes', () => {
  // find() hashes an ASCII string's char codes, addBytes() its bytes: each tail length (0-3 bytes after the
  // last whole word) is its own code path in the string hash.
  const index = new KeyIndex();
  const keys = Array.from({ length: 12 }, (_, n) => 'k'.repeat(n));
  for (const [n, key] of keys.entries()) assert.equal(index.addBytes(Buffer.from(key), 0, n), n);
  for (const [n, key] of keys.entries()) assert.equal(index.find(key), n, `key of length ${n}`);
});

test('ids that differ only in their last digits get as few equal 32-bit hashes as a random function', () => {
  // Each equal hash is a key comparison on every lookup of either key. 1M keys under a random function
  // give n(n-1)/2 / 2^32 = 116 equal pairs on average (murmur3 gives 142 here; the hash is fixed, so is
  // the count); the multiply-xorshift hash used before gave 32,000 on these ids.
  const n = 1_000_000;
  const hashes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const key = Buffer.from(`payout-2026-11-23-${1_000_000 + i}`);
    hashes[i] = hashKeyBytes(key, 0, key.length);
  }
  hashes.sort();
  let pairs = 0;
  for (let i = 1, run = 0; i < n; i++) {
    run = hashes[i] === hashes[i - 1] ? run + 1 : 0;
    pairs += run;
  }
  assert.ok(pairs < 200, `${pairs} equal pairs among ${n} keys, expected ~116`);
});

test('keys added as bytes are found before and after their bulk merge, mixed with string adds, duplicates refused', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.string({ unit: 'grapheme', maxLength: 12 })), { maxLength: 200 }),
      fc.integer({ min: 1, max: 9 }),
      (ops, pendingMax) => {
        const index = new KeyIndex(pendingMax);
        const model = new Map<string, number>();
        for (const [asBytes, key] of ops) {
          const add = () => {
            if (!asBytes) return index.add(key);
            const bytes = Buffer.from(`#${key}`);
            return index.addBytes(bytes, 1, bytes.length);
          };
          if (model.has(key)) {
            // Duplicates through `add` (addBytes is for keys known to be new, see the next test).
            assert.throws(() => index.add(key), /already in the index/);
            assert.equal(index.size, model.size);
          } else {
            assert.equal(add(), model.size);
            model.set(key, model.size);
          }
          for (const [k, slot] of model) assert.equal(index.find(k), slot);
        }
        assert.equal(index.size, model.size);
        const rebuilt = roundTrip(index);
        for (const [k, slot] of model) assert.equal(rebuilt.find(k), slot);
      },
    ),
    { numRuns: 300 },
  );
});

test('a key refused by addBytes at the first slot of a new chunk leaves the index as it was', () => {
  const index = new KeyIndex();
  for (let i = 0; i < KEY_CHUNK_SLOTS - 1; i++) index.add(`k${i}`);
  const bytes = Buffer.from('pq');
  assert.equal(index.addBytes(bytes, 0, 1), KEY_CHUNK_SLOTS - 1); // 'p', the last slot of the first chunk
  assert.throws(() => index.addBytes(bytes, 0, 1), /'p' is already in the index/); // would open chunk 2
  assert.equal(index.size, KEY_CHUNK_SLOTS);
  assert.equal(roundTrip(index).size, KEY_CHUNK_SLOTS, 'the opened, empty chunk is not part of a snapshot');
  assert.equal(index.addBytes(bytes, 1, 2), KEY_CHUNK_SLOTS); // 'q' takes the slot instead
  for (const probe of [index, roundTrip(index)]) {
    assert.equal(probe.find('p'), KEY_CHUNK_SLOTS - 1);
    assert.equal(probe.find('q'), KEY_CHUNK_SLOTS);
    assert.equal(probe.key(KEY_CHUNK_SLOTS), 'q');
    assert.equal(probe.find('k0'), 0);
  }
  assert.equal(index.add('r'), KEY_CHUNK_SLOTS + 1);
});

test('a duplicate let in by addBytes is caught at the merge and breaks the index loudly', () => {
  const index = new KeyIndex(2);
  index.add('a');
  const bytes = Buffer.from('ab');
  index.addBytes(bytes, 1, 2); // 'b', pending
  assert.throws(
    () => index.addBytes(bytes, 1, 2),
    /already in the index/,
    'a pending duplicate: refused at once',
  );
  assert.throws(() => index.addBytes(bytes, 0, 1), /duplicate key 'a'/); // merge finds 'a' twice
  assert.throws(() => index.find('b'), /unusable/);
  assert.throws(() => index.add('c'), /unusable/);
});
