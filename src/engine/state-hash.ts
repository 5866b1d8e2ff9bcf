import { fingerprintA, fingerprintB } from './fingerprint.ts';

/**
 * A canonical 64-bit hash of plain data: two values that are equal as data (same Map/Set/object contents,
 * whatever the insertion order) hash the same. It proves that a replayed, restored or replicated state is
 * identical to a reference. Unordered collections combine their entries' hashes by addition, so no sorting
 * is needed and ten million entries hash in linear time. Not a cryptographic hash: it detects divergence,
 * it does not resist an adversary.
 *
 * Supports what state is made of: primitives, bigint, arrays, typed arrays, plain objects, Map and Set,
 * and objects with a `canonical()` method (hashed as what it returns). Snapshot headers record this hash,
 * so it never changes for the same data (a test pins known values).
 */
export function hashState(value: unknown): string {
  hashValue(value);
  return hex(outA) + hex(outB);
}

let outA = 0;
let outB = 0;
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

function hex(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function set(a: number, b: number): void {
  outA = fmix(a);
  outB = fmix(b ^ 0x9e3779b9);
}

function hashValue(value: unknown): void {
  switch (typeof value) {
    case 'undefined':
      set(0x11, 0x12);
      return;
    case 'boolean':
      if (value) set(0x21, 0x22);
      else set(0x31, 0x32);
      return;
    case 'number':
      f64[0] = value === 0 ? 0 : value;
      set(u32[0] ^ 0x4e4e4e4e, u32[1] ^ 0x27d4eb2f);
      return;
    case 'bigint':
      set(fingerprintA(`b${value}`), fingerprintB(`b${value}`));
      return;
    case 'string':
      set(fingerprintA(value) ^ 0x5a5a, fingerprintB(value));
      return;
    case 'object':
      hashObject(value);
      return;
    default:
      throw new TypeError(`state holds a ${typeof value}; state must be plain data`);
  }
}

function hashObject(value: object | null): void {
  if (value === null) {
    set(0x61, 0x62);
    return;
  }
  if (Array.isArray(value)) {
    hashOrdered(value, 0x71);
    return;
  }
  if (ArrayBuffer.isView(value)) {
    hashBytes([new Uint8Array(value.buffer, value.byteOffset, value.byteLength)]);
    return;
  }
  if (value instanceof ByteSequence) {
    hashBytes(value.parts);
    return;
  }
  if (typeof (value as { canonical?: unknown }).canonical === 'function') {
    // A class that keeps its data in a non-plain layout (columns, chunks) hashes as its canonical form.
    hashValue((value as { canonical(): unknown }).canonical());
    return;
  }
  if (value instanceof Map) {
    hashUnordered(value.entries(), value.size, 0x81);
    return;
  }
  if (value instanceof Set) {
    hashSet(value);
    return;
  }
  const entries = Object.entries(value);
  hashUnordered(entries.values(), entries.length, 0x91);
  return;
}

/**
 * Bytes kept in pieces (a column's chunks), for a `canonical()` form: hashed exactly as the one typed array
 * they would make if concatenated, without the copy (hundreds of megabytes for a large table, every
 * snapshot).
 */
export class ByteSequence {
  constructor(readonly parts: readonly Uint8Array[]) {}
}

/** The hash of the concatenation of `parts`. */
function hashBytes(parts: readonly Uint8Array[]): void {
  let length = 0;
  for (const part of parts) length += part.length;
  laneA = 0x72 ^ length;
  laneB = 0x27d4eb2f ^ length;
  laneIndex = 0;
  for (const part of parts) {
    // Always a plain Uint8Array (a Buffer is a subclass): one element kind keeps the loop's loads monomorphic.
    mixBytes(
      part.constructor === Uint8Array ? part : new Uint8Array(part.buffer, part.byteOffset, part.length),
    );
  }
  set(laneA, laneB);
}

let laneA = 0;
let laneB = 0;
let laneIndex = 0;

function mixBytes(bytes: Uint8Array): void {
  let a = laneA;
  let b = laneB;
  let i = laneIndex;
  for (let k = 0; k < bytes.length; k++, i++) {
    const x = bytes[k];
    a = Math.imul(a ^ x, 0x01000193);
    // `| 0` keeps b an int32 instead of letting the sum become a double (3x slower); the hash is the same,
    // since b is only ever read through int32 operations.
    b = (Math.imul(b ^ x, 0x85ebca6b) + i) | 0;
  }
  laneA = a;
  laneB = b;
  laneIndex = i;
}

function hashOrdered(items: readonly unknown[], tag: number): void {
  let a = tag ^ items.length;
  let b = Math.imul(tag, 0x27d4eb2f) ^ items.length;
  for (const item of items) {
    hashValue(item);
    a = Math.imul(a ^ outA, 0x01000193) + 0x7f4a7c15;
    b = Math.imul(b ^ outB, 0x85ebca6b) + 0x165667b1;
  }
  set(a, b);
}

function hashUnordered(entries: Iterable<[unknown, unknown]>, size: number, tag: number): void {
  let sumA = 0;
  let sumB = 0;
  for (const [key, item] of entries) {
    hashValue(key);
    const keyA = outA;
    const keyB = outB;
    hashValue(item);
    // Entry hash depends on key and value together; entries combine by addition (order-independent).
    sumA = (sumA + fmix(keyA ^ Math.imul(outA, 0x01000193) ^ 0x3c6ef372)) >>> 0;
    sumB = (sumB + fmix(keyB ^ Math.imul(outB, 0xcc9e2d51) ^ 0x1b873593)) >>> 0;
  }
  set(sumA ^ tag ^ size, sumB ^ Math.imul(tag, size + 1));
}

function hashSet(value: Set<unknown>): void {
  let sumA = 0;
  let sumB = 0;
  for (const item of value) {
    hashValue(item);
    sumA = (sumA + outA) >>> 0;
    sumB = (sumB + outB) >>> 0;
  }
  set(sumA ^ 0xa1 ^ value.size, sumB ^ value.size);
}
