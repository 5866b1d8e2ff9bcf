import type { Codec } from '../../src/engine/codec.ts';
import type { GateState, Merchant } from './domain.ts';
import { ALL_COLUMNS, ReservationTable } from './reservation-table.ts';

/**
 * balance-gate's snapshot encoding: merchants as records, reservations as their ids followed by each
 * column's raw bytes (little-endian typed arrays), so ten million holds encode and load with a few
 * memory copies instead of ten million object encodings.
 *   varuint merchant count, per merchant: id, credited, available, held, captured (f64), next sequence (f64)
 *   varuint reservation count, the ids (strings), then per column: varuint byte length + bytes
 */
export const gateStateCodec: Codec<GateState> = {
  encode(state, w) {
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
    for (const id of table.idList()) w.string(id);
    for (const column of ALL_COLUMNS) {
      const parts = [...table.columnBytes(column)];
      w.varuint(parts.reduce((n, p) => n + p.length, 0));
      for (const part of parts) w.raw(part);
    }
  },
  decode(r) {
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
    }
    const count = r.varuint();
    const ids: string[] = new Array(count);
    for (let i = 0; i < count; i++) ids[i] = r.string();
    const columnData = new Map<string, { bytes: Buffer; offset: number }>();
    for (const column of ALL_COLUMNS) columnData.set(column, { bytes: r.raw(r.varuint()), offset: 0 });
    const reservations = ReservationTable.fromColumns(
      (index) => merchantList[index].id,
      ids,
      (column, into) => {
        const source = columnData.get(column)!;
        into.set(source.bytes.subarray(source.offset, source.offset + into.length));
        source.offset += into.length;
      },
    );
    return { merchants, merchantList, reservations };
  },
};
