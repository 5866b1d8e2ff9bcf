import { KeyIndex } from '../../src/collections/key-index.ts';
import type { Codec } from '../../src/engine/codec.ts';
import { type BinReader, typedArrayOver } from '../../src/util/bin.ts';
import type { GateState, Merchant } from './domain.ts';
import { ALL_COLUMNS, ReservationTable } from './reservation-table.ts';

/** Layout version of the state below; a snapshot of another layout is refused (restart falls back). */
const STATE_LAYOUT = 3;

/**
 * balance-gate's snapshot encoding: merchants as records, reservations as raw bytes (their ids' UTF-8 bytes
 * with offsets, then each column's little-endian typed array), so ten million holds encode and load with a
 * few memory copies instead of ten million object or string encodings.
 *   u8 layout (2)
 *   varuint merchant count, per merchant: id, credited, available, held, captured (f64), next sequence (f64)
 *   varuint reservation count
 *   id chunks (65,536 ids each, the last one partial): varuint count, zero padding to a multiple of 8
 *     (from the payload's start), (count + 1) u32 offsets, then varuint byte length + the id bytes
 *   per column: varuint byte length, zero padding to a multiple of 8, the bytes
 * Typed arrays are little-endian and 8-aligned in the payload, so a loaded snapshot's full chunks are views
 * of its buffer rather than copies.
 */
/**
 * Made outside `decode`: a closure created there would share its scope, and so keep the whole snapshot
 * payload alive for as long as the table lives.
 */
function merchantIdResolver(merchantList: Merchant[]): (index: number) => string {
  return (index) => merchantList[index].id;
}

/** Skips what `BinWriter.padTo(8)` wrote: positions count from the payload's start on both sides. */
function skipPadding(r: BinReader): void {
  while (r.pos % 8 !== 0) {
    if (r.u8() !== 0) throw new Error(`non-zero padding at payload offset ${r.pos - 1}`);
  }
}

export const gateStateCodec: Codec<GateState> = {
  encode(state, w) {
    w.u8(STATE_LAYOUT);
    w.varuint(state.merchantList.length);
    for (const m of state.merchantList) {
      w.string(m.id);
      w.f64(m.credited);
      w.f64(m.available);
      w.f64(m.held);
      w.f64(m.captured);
      w.f64(m.nextSequence);
    }
    const table = state.reservations;
    w.varuint(table.size);
    for (const chunk of table.idChunks()) {
      w.varuint(chunk.count);
      w.padTo(8);
      w.raw(new Uint8Array(chunk.offsets.buffer, chunk.offsets.byteOffset, chunk.offsets.byteLength));
      w.varuint(chunk.bytes.length);
      w.raw(chunk.bytes);
    }
    for (const column of ALL_COLUMNS) {
      const parts = [...table.columnBytes(column)];
      w.varuint(parts.reduce((n, p) => n + p.length, 0));
      w.padTo(8);
      for (const part of parts) w.raw(part);
    }
  },
  decode(r, _version, load) {
    const layout = r.u8();
    if (layout !== STATE_LAYOUT) {
      throw new Error(
        `balance-gate state layout ${layout} is not supported (this build reads ${STATE_LAYOUT})`,
      );
    }
    const merchantCount = r.varuint();
    const merchantList: Merchant[] = new Array(merchantCount);
    const merchants = new Map<string, Merchant>();
    for (let index = 0; index < merchantCount; index++) {
      const m: Merchant = {
        id: r.string(),
        index,
        credited: r.f64(),
        available: r.f64(),
        held: r.f64(),
        captured: r.f64(),
        nextSequence: r.f64(),
      };
      merchantList[index] = m;
      merchants.set(m.id, m);
      if (load?.pace && (index & 255) === 255) load.pace(256);
    }
    const count = r.varuint();
    const idChunks: { count: number; offsets: Uint32Array; bytes: Uint8Array }[] = [];
    for (let read = 0; read < count; ) {
      const chunkCount = r.varuint();
      if (chunkCount < 1 || read + chunkCount > count)
        throw new Error('reservation id chunks exceed the count');
      skipPadding(r);
      const offsets = typedArrayOver(Uint32Array, r.raw((chunkCount + 1) * 4), chunkCount + 1);
      idChunks.push({ count: chunkCount, offsets, bytes: r.raw(r.varuint()) });
      read += chunkCount;
    }
    const ids = KeyIndex.fromChunks(idChunks, load?.pace);
    const columns = new Map<string, Uint8Array>();
    for (const column of ALL_COLUMNS) {
      const length = r.varuint();
      skipPadding(r);
      columns.set(column, r.raw(length));
    }
    const reservations = ReservationTable.fromColumns(merchantIdResolver(merchantList), ids, columns);
    return { merchants, merchantList, reservations };
  },
};
