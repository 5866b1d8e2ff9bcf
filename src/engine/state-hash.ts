import { createHash, type Hash } from 'node:crypto';

/**
 * A canonical hash of plain data: two values that are equal as data (same Map/Set/object contents, whatever
 * the insertion order) hash the same. It proves that a replayed, restored or replicated state is identical
 * to a reference. Supports the types state is made of: primitives, bigint, arrays, typed arrays, plain
 * objects, Map and Set.
 */
export function hashState(value: unknown): string {
  const hash = createHash('sha256');
  feed(hash, value);
  return hash.digest('hex');
}

function feed(hash: Hash, value: unknown): void {
  switch (typeof value) {
    case 'undefined':
      hash.update('u;');
      return;
    case 'boolean':
      hash.update(value ? 't;' : 'f;');
      return;
    case 'number':
      hash.update(`n${Object.is(value, -0) ? '0' : String(value)};`);
      return;
    case 'bigint':
      hash.update(`b${value};`);
      return;
    case 'string':
      hash.update(`s${value.length}:`);
      hash.update(value);
      return;
    case 'object':
      feedObject(hash, value);
      return;
    default:
      throw new TypeError(`state holds a ${typeof value}; state must be plain data`);
  }
}

function feedObject(hash: Hash, value: object | null): void {
  if (value === null) {
    hash.update('z;');
  } else if (Array.isArray(value)) {
    hash.update(`a${value.length}[`);
    for (const item of value) feed(hash, item);
    hash.update(']');
  } else if (ArrayBuffer.isView(value)) {
    hash.update(`y${value.byteLength}:`);
    hash.update(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  } else if (value instanceof Map) {
    feedEntries(hash, 'm', [...value.entries()]);
  } else if (value instanceof Set) {
    feedEntries(
      hash,
      'e',
      [...value.values()].map((v) => [v, true] as [unknown, unknown]),
    );
  } else {
    feedEntries(hash, 'o', Object.entries(value));
  }
}

function feedEntries(hash: Hash, tag: string, entries: [unknown, unknown][]): void {
  const keyed = entries.map(([k, v]) => [canonicalKey(k), v] as [string, unknown]);
  keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  hash.update(`${tag}${keyed.length}{`);
  for (const [k, v] of keyed) {
    hash.update(`${k.length}:`);
    hash.update(k);
    feed(hash, v);
  }
  hash.update('}');
}

function canonicalKey(key: unknown): string {
  if (typeof key === 'string') return `s${key}`;
  if (typeof key === 'number' || typeof key === 'bigint' || typeof key === 'boolean')
    return `${(typeof key)[0]}${String(key)}`;
  return `h${hashState(key)}`;
}
