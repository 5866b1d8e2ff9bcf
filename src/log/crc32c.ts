import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/**
 * CRC-32C (Castagnoli), the checksum of every frame, commit marker and snapshot chunk.
 *
 * Why two implementations: the native SIMD one costs ~200 ns per call in N-API overhead alone, which is more
 * than a whole small log record (~60-100 bytes) takes in a table-driven loop. Small inputs are checksummed
 * in JS (slice-by-8), large ones natively. Both compute the same function (see crc32c.test.ts).
 */
const POLY_REVERSED = 0x82f63b78;
const NATIVE_THRESHOLD_BYTES = 512;

const TABLES: Uint32Array[] = (() => {
  const tables: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY_REVERSED : c >>> 1;
    t0[n] = c >>> 0;
  }
  tables.push(t0);
  for (let t = 1; t < 8; t++) {
    const prev = tables[t - 1];
    const next = new Uint32Array(256);
    for (let n = 0; n < 256; n++) next[n] = (prev[n] >>> 8) ^ t0[prev[n] & 0xff];
    tables.push(next);
  }
  return tables;
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES;

/** CRC-32C of `data[start, end)`, continuing from `previous` (0 for a fresh checksum). */
export function crc32c(data: Uint8Array, start = 0, end = data.length, previous = 0): number {
  if (end - start >= NATIVE_THRESHOLD_BYTES) return nativeCrc32c(data.subarray(start, end), previous);
  return crc32cJs(data, start, end, previous);
}

/** The pure-JS path, exported for tests and for tools that must not depend on the native module. */
export function crc32cJs(data: Uint8Array, start: number, end: number, previous = 0): number {
  let crc = ~previous >>> 0;
  let i = start;
  while (end - i >= 8) {
    const lo = (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)) ^ crc;
    crc =
      T7[lo & 0xff] ^
      T6[(lo >>> 8) & 0xff] ^
      T5[(lo >>> 16) & 0xff] ^
      T4[lo >>> 24] ^
      T3[data[i + 4]] ^
      T2[data[i + 5]] ^
      T1[data[i + 6]] ^
      T0[data[i + 7]];
    i += 8;
  }
  while (i < end) crc = (crc >>> 8) ^ T0[(crc ^ data[i++]) & 0xff];
  return ~crc >>> 0;
}

/** CRC-32C of a u32's 4 little-endian bytes, continuing from `previous`: `crc32c` without a buffer. */
export function crc32cU32(value: number, previous = 0): number {
  let crc = ~previous >>> 0;
  crc = (crc >>> 8) ^ T0[(crc ^ value) & 0xff];
  crc = (crc >>> 8) ^ T0[(crc ^ (value >>> 8)) & 0xff];
  crc = (crc >>> 8) ^ T0[(crc ^ (value >>> 16)) & 0xff];
  crc = (crc >>> 8) ^ T0[(crc ^ (value >>> 24)) & 0xff];
  return ~crc >>> 0;
}
