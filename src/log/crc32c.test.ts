import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { crc32c, crc32cJs, crc32cU32 } from './crc32c.ts';

test('crc32c matches the standard check value for "123456789"', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
});

test('crc32c JS and native paths agree on any input, offset and continuation', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 2000 }),
      fc.nat(),
      fc.nat(),
      fc.integer({ min: 0, max: 0xffffffff }),
      (bytes, a, b, seed) => {
        const start = bytes.length === 0 ? 0 : a % bytes.length;
        const end = start + (bytes.length === start ? 0 : b % (bytes.length - start + 1));
        const expected = nativeCrc32c(bytes.subarray(start, end), seed);
        assert.equal(crc32cJs(bytes, start, end, seed), expected);
        assert.equal(crc32c(bytes, start, end, seed), expected);
      },
    ),
  );
});

test('crc32c detects every single-bit flip in a small frame', () => {
  const frame = Buffer.from('engram frame payload with some bytes');
  const good = crc32c(frame);
  for (let bit = 0; bit < frame.length * 8; bit++) {
    frame[bit >> 3] ^= 1 << (bit & 7);
    assert.notEqual(crc32c(frame), good);
    frame[bit >> 3] ^= 1 << (bit & 7);
  }
});

test('crc32cU32 equals crc32c over the value as 4 little-endian bytes, for any continuation', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      (v, prev) => {
        const bytes = Buffer.alloc(4);
        bytes.writeUInt32LE(v);
        assert.equal(crc32cU32(v, prev), crc32c(bytes, 0, 4, prev));
      },
    ),
  );
});
