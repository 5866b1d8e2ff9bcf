/**
 * All reservations, stored by column: a Map from id to slot, and one typed-array column per field.
 *
 * Why not a Map of objects: an object per hold costs ~250 bytes of heap (object header, boxed doubles for
 * balances past 2^31, the decision's balances kept for retries), and ten million holds is the working set
 * this service is sized for. Columns cost ~160 bytes per hold (mostly the id string and its Map entry),
 * snapshot as raw bytes, and load with a copy per column.
 *
 * Slots are assigned in apply order, so two tables built from the same records are identical (replay,
 * snapshot load and replicas agree). `get` returns a fresh view object; mutate through the methods.
 */
import type { Status } from './status.ts';

/** A reservation as read from the table (a copy; changing it changes nothing). */
export interface Reservation {
  id: string;
  merchantId: string;
  amount: number;
  status: Status;
  /** Payout sequence of an approved hold; 0 for a rejected reservation. */
  sequence: number;
  /** When an unresolved hold expires (record time, ms); 0 for none. */
  expiresAtMs: number;
  /** The ttl_ms the request asked for (0: none): part of the request's identity for retries. */
  ttlMs: number;
  /** LSN of the decision. */
  lsn: number;
  /** The merchant's balances right after the decision, as the response showed them. */
  availableAfter: number;
  heldAfter: number;
  capturedAfter: number;
  creditedAfter: number;
}

export const CHUNK_SLOTS = 65_536;
const SLOT_SHARDS = 256;

/** Shard of an id: FNV-1a over its last (most varying) characters. */
function shardOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = Math.max(0, id.length - 8); i < id.length; i++)
    h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h ^ (h >>> 16)) & (SLOT_SHARDS - 1);
}
const CHUNK_SHIFT = 16;
const CHUNK_MASK = CHUNK_SLOTS - 1;

/** The numeric columns, in snapshot order. */
export const FLOAT_COLUMNS = [
  'amount',
  'sequence',
  'expiresAtMs',
  'ttlMs',
  'lsn',
  'availableAfter',
  'heldAfter',
  'capturedAfter',
  'creditedAfter',
] as const;
export type FloatColumn = (typeof FLOAT_COLUMNS)[number];

interface Chunk {
  merchant: Int32Array;
  status: Uint8Array;
  floats: Record<FloatColumn, Float64Array>;
}

function newChunk(): Chunk {
  const floats = {} as Record<FloatColumn, Float64Array>;
  for (const column of FLOAT_COLUMNS) floats[column] = new Float64Array(CHUNK_SLOTS);
  return { merchant: new Int32Array(CHUNK_SLOTS), status: new Uint8Array(CHUNK_SLOTS), floats };
}

/** A reservation to add: as read, but naming its merchant by index (how the table stores it). */
export type NewReservation = Omit<Reservation, 'merchantId'> & { merchantIndex: number };

/** Every column, in snapshot order. */
export const ALL_COLUMNS: readonly (FloatColumn | 'merchant' | 'status')[] = [
  'merchant',
  'status',
  ...FLOAT_COLUMNS,
];

export class ReservationTable {
  /**
   * id → slot, sharded: a single Map of millions of entries rehashes all of them at once when it grows,
   * stalling every request for tens of milliseconds; 256 shards grow one small table at a time.
   */
  private readonly slots: Map<string, number>[] = Array.from({ length: SLOT_SHARDS }, () => new Map());
  private readonly ids: string[] = [];
  private readonly chunks: Chunk[] = [];

  /** Resolves a merchant index (as stored) to its id; set by the owner of the merchant list. */
  constructor(private readonly merchantIdOf: (index: number) => string) {}

  get size(): number {
    return this.ids.length;
  }

  has(id: string): boolean {
    return this.slots[shardOf(id)].has(id);
  }

  slotOf(id: string): number | undefined {
    return this.slots[shardOf(id)].get(id);
  }

  add(r: NewReservation): number {
    const slot = this.ids.length;
    if ((slot & CHUNK_MASK) === 0) this.chunks.push(newChunk());
    const chunk = this.chunks[slot >>> CHUNK_SHIFT];
    const i = slot & CHUNK_MASK;
    chunk.merchant[i] = r.merchantIndex;
    chunk.status[i] = r.status;
    const f = chunk.floats;
    f.amount[i] = r.amount;
    f.sequence[i] = r.sequence;
    f.expiresAtMs[i] = r.expiresAtMs;
    f.ttlMs[i] = r.ttlMs;
    f.lsn[i] = r.lsn;
    f.availableAfter[i] = r.availableAfter;
    f.heldAfter[i] = r.heldAfter;
    f.capturedAfter[i] = r.capturedAfter;
    f.creditedAfter[i] = r.creditedAfter;
    this.ids.push(r.id);
    this.slots[shardOf(r.id)].set(r.id, slot);
    return slot;
  }

  status(slot: number): Status {
    return this.chunks[slot >>> CHUNK_SHIFT].status[slot & CHUNK_MASK];
  }

  setStatus(slot: number, status: Status): void {
    this.chunks[slot >>> CHUNK_SHIFT].status[slot & CHUNK_MASK] = status;
  }

  merchantIndex(slot: number): number {
    return this.chunks[slot >>> CHUNK_SHIFT].merchant[slot & CHUNK_MASK];
  }

  float(slot: number, column: FloatColumn): number {
    return this.chunks[slot >>> CHUNK_SHIFT].floats[column][slot & CHUNK_MASK];
  }

  id(slot: number): string {
    return this.ids[slot];
  }

  get(id: string): Reservation | undefined {
    const slot = this.slots[shardOf(id)].get(id);
    return slot === undefined ? undefined : this.view(slot);
  }

  view(slot: number): Reservation {
    const chunk = this.chunks[slot >>> CHUNK_SHIFT];
    const i = slot & CHUNK_MASK;
    const f = chunk.floats;
    return {
      id: this.ids[slot],
      merchantId: this.merchantIdOf(chunk.merchant[i]),
      amount: f.amount[i],
      status: chunk.status[i],
      sequence: f.sequence[i],
      expiresAtMs: f.expiresAtMs[i],
      ttlMs: f.ttlMs[i],
      lsn: f.lsn[i],
      availableAfter: f.availableAfter[i],
      heldAfter: f.heldAfter[i],
      capturedAfter: f.capturedAfter[i],
      creditedAfter: f.creditedAfter[i],
    };
  }

  *values(): IterableIterator<Reservation> {
    for (let slot = 0; slot < this.ids.length; slot++) yield this.view(slot);
  }

  /** The ids in slot order (shared, do not modify). */
  idList(): readonly string[] {
    return this.ids;
  }

  /** The bytes of one column over slots [0, size), chunk by chunk (for snapshots). */
  *columnBytes(column: FloatColumn | 'merchant' | 'status'): IterableIterator<Uint8Array> {
    const size = this.ids.length;
    for (let c = 0; c < this.chunks.length; c++) {
      const used = Math.min(CHUNK_SLOTS, size - c * CHUNK_SLOTS);
      const chunk = this.chunks[c];
      const array =
        column === 'merchant' ? chunk.merchant : column === 'status' ? chunk.status : chunk.floats[column];
      yield new Uint8Array(array.buffer, array.byteOffset, used * array.BYTES_PER_ELEMENT);
    }
  }

  /** Rebuilds a table from snapshot columns; ids in slot order. */
  static fromColumns(
    merchantIdOf: (index: number) => string,
    ids: string[],
    readColumn: (column: FloatColumn | 'merchant' | 'status', into: Uint8Array) => void,
  ): ReservationTable {
    const table = new ReservationTable(merchantIdOf);
    const chunkCount = Math.ceil(ids.length / CHUNK_SLOTS);
    for (let c = 0; c < chunkCount; c++) table.chunks.push(newChunk());
    for (const column of ALL_COLUMNS) {
      for (let c = 0; c < chunkCount; c++) {
        const used = Math.min(CHUNK_SLOTS, ids.length - c * CHUNK_SLOTS);
        const chunk = table.chunks[c];
        const array =
          column === 'merchant' ? chunk.merchant : column === 'status' ? chunk.status : chunk.floats[column];
        readColumn(column, new Uint8Array(array.buffer, array.byteOffset, used * array.BYTES_PER_ELEMENT));
      }
    }
    for (let slot = 0; slot < ids.length; slot++) {
      table.ids.push(ids[slot]);
      table.slots[shardOf(ids[slot])].set(ids[slot], slot);
    }
    return table;
  }

  /**
   * The table as plain data in a canonical form, for the state hash: ids and each column trimmed to the
   * used slots (independent of chunk capacity), one contiguous typed array per column.
   */
  canonical(): unknown {
    const columns: Record<string, ArrayBufferView> = {};
    for (const column of ALL_COLUMNS) {
      const parts = [...this.columnBytes(column)];
      const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let offset = 0;
      for (const part of parts) {
        bytes.set(part, offset);
        offset += part.length;
      }
      columns[column] = bytes;
    }
    return { ids: this.ids, columns };
  }
}
