import type { Codec } from '../engine/codec.ts';
import { invalidArgument } from '../errors.ts';
import type { BinReader, BinWriter } from '../util/bin.ts';

/**
 * The default snapshot codec of a state: any plain data, exactly (Maps stay Maps, Sets stay Sets, integers
 * stay integers, `undefined` stays present). Tagged, little-endian; hand-written codecs beat it on size and
 * speed (see apps/balance-gate/state-codec.ts), but it needs nothing from the application.
 */
enum Tag {
  Undefined = 0,
  Null = 1,
  False = 2,
  True = 3,
  Int32 = 4,
  Float64 = 5,
  String = 6,
  Array = 7,
  Object = 8,
  Map = 9,
  Set = 10,
  BigInt = 11,
  Bytes = 12,
}

function encodeValue(value: unknown, w: BinWriter): void {
  switch (typeof value) {
    case 'undefined':
      w.u8(Tag.Undefined);
      return;
    case 'boolean':
      w.u8(value ? Tag.True : Tag.False);
      return;
    case 'number':
      if ((value | 0) === value && !Object.is(value, -0)) {
        w.u8(Tag.Int32);
        w.i32(value);
        return;
      }
      w.u8(Tag.Float64);
      w.f64(value);
      return;
    case 'string':
      w.u8(Tag.String);
      w.string(value);
      return;
    case 'bigint':
      w.u8(Tag.BigInt);
      w.string(value.toString());
      return;
    case 'object':
      encodeObject(value, w);
      return;
    default:
      throw invalidArgument(`state holds a ${typeof value}; snapshots encode plain data only`);
  }
}

function encodeObject(value: object | null, w: BinWriter): void {
  if (value === null) {
    w.u8(Tag.Null);
    return;
  }
  if (Array.isArray(value)) {
    w.u8(Tag.Array);
    w.varuint(value.length);
    for (const item of value) encodeValue(item, w);
    return;
  }
  if (value instanceof Uint8Array) {
    w.u8(Tag.Bytes);
    w.bytes(value);
    return;
  }
  if (value instanceof Map) {
    w.u8(Tag.Map);
    w.varuint(value.size);
    for (const [k, v] of value) {
      encodeValue(k, w);
      encodeValue(v, w);
    }
    return;
  }
  if (value instanceof Set) {
    w.u8(Tag.Set);
    w.varuint(value.size);
    for (const item of value) encodeValue(item, w);
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw invalidArgument(
      `state holds an instance of ${proto?.constructor?.name}; snapshots encode plain data only`,
    );
  }
  const keys = Object.keys(value);
  w.u8(Tag.Object);
  w.varuint(keys.length);
  for (const key of keys) {
    w.string(key);
    encodeValue((value as Record<string, unknown>)[key], w);
  }
}

function decodeValue(r: BinReader): unknown {
  const tag = r.u8();
  switch (tag) {
    case Tag.Undefined:
      return undefined;
    case Tag.Null:
      return null;
    case Tag.False:
      return false;
    case Tag.True:
      return true;
    case Tag.Int32:
      return r.i32();
    case Tag.Float64:
      return r.f64();
    case Tag.String:
      return r.string();
    case Tag.BigInt:
      return BigInt(r.string());
    case Tag.Bytes:
      return new Uint8Array(r.bytes());
    case Tag.Array: {
      const length = r.varuint();
      const items = new Array(length);
      for (let i = 0; i < length; i++) items[i] = decodeValue(r);
      return items;
    }
    case Tag.Object: {
      const count = r.varuint();
      const object: Record<string, unknown> = {};
      for (let i = 0; i < count; i++) {
        const key = r.string();
        const item = decodeValue(r);
        // Assigning `__proto__` would call the prototype setter, not make the own key the state had.
        if (key === '__proto__')
          Object.defineProperty(object, key, {
            value: item,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        else object[key] = item;
      }
      return object;
    }
    case Tag.Map: {
      const count = r.varuint();
      const map = new Map();
      for (let i = 0; i < count; i++) map.set(decodeValue(r), decodeValue(r));
      return map;
    }
    case Tag.Set: {
      const count = r.varuint();
      const set = new Set();
      for (let i = 0; i < count; i++) set.add(decodeValue(r));
      return set;
    }
    default:
      throw new RangeError(`unknown plain-data tag ${tag} at offset ${r.pos - 1}`);
  }
}

export const plainDataCodec: Codec<any> = {
  encode: encodeValue,
  decode: decodeValue,
};
