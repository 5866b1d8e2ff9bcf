import { Packr } from 'msgpackr';
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

/** msgpack, length-prefixed: the default codec of events and results. */
export const msgpackCodec: Codec<any> = {
  encode(value, w) {
    w.bytes(packr.pack(value));
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
