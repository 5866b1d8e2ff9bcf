import { Packr } from 'msgpackr';
import { invalidArgument } from '../errors.ts';
import type { BinReader, BinWriter } from '../util/bin.ts';
import type { Pace } from '../util/pace.ts';

/**
 * How an event payload or a command result is written into a log record. The default (msgpack) handles any
 * plain data; a hand-written codec is worth it for the hottest record types (see apps/balance-gate).
 * `decode` gets the version the record was written with, so old records stay readable after a change.
 */
export interface Codec<T> {
  encode(value: T, w: BinWriter): void;
  /** `pace`, given only to a definition's `stateCodec` by a paced snapshot load: call it in long loops. */
  decode(r: BinReader, version: number, load?: { pace?: Pace }): T;
}

// Payloads are plain data. msgpack cannot tell a Map from an object, so a Map in a payload decodes as an
// object (keyed by strings): use objects or arrays in events and results, or a hand-written codec.
// Sets, Dates and typed arrays round-trip (msgpackr's `moreTypes`).
const packr = new Packr({ useRecords: false, moreTypes: true });

/** `__proto__` as a msgpack string (fixstr of 9 bytes): a payload without these bytes has no such key. */
const PROTO_KEY_BYTES = Buffer.from([0xa9, ...Buffer.from('__proto__', 'latin1')]);

/**
 * msgpack, length-prefixed: the default codec of events and results. A payload with an object key
 * `__proto__` (an own property, as JSON.parse makes from client input) is refused: msgpackr reads that key
 * back as `__proto_`, its guard against prototype pollution, so the record would replay as other data
 * than the state was built from. Refusing while encoding aborts the record: nothing is applied or logged.
 */
export const msgpackCodec: Codec<any> = {
  encode(value, w) {
    const bytes = packr.pack(value);
    // The byte search is cheap and rarely hits; a hit may be a string value, which the walk tells apart.
    if (bytes.indexOf(PROTO_KEY_BYTES) >= 0 && hasProtoKey(value))
      throw invalidArgument(
        'a payload holds an object key "__proto__", which the default (msgpack) codec cannot store as it is: ' +
          'rename the key, or give the event or result a codec of its own',
      );
    w.bytes(bytes);
  },
  decode(r) {
    return packr.unpack(r.bytes());
  },
};

/** For commands and events that carry nothing. */
export const emptyCodec: Codec<undefined> = {
  encode() {},
  decode() {
    return undefined;
  },
};

/** Whether `value` holds, at any depth, an object or Map with the key `__proto__`. */
function hasProtoKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return false;
  if (Array.isArray(value) || value instanceof Set) {
    for (const item of value) if (hasProtoKey(item)) return true;
    return false;
  }
  if (value instanceof Map) {
    for (const [key, item] of value)
      if (key === '__proto__' || hasProtoKey(key) || hasProtoKey(item)) return true;
    return false;
  }
  if (Object.hasOwn(value, '__proto__')) return true;
  for (const key of Object.keys(value)) if (hasProtoKey((value as Record<string, unknown>)[key])) return true;
  return false;
}
