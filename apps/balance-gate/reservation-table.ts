/**
 * All reservations, stored by column: a KeyIndex from id to slot, and one typed-array column per field.
 *
 * Why not a Map of objects: an object per hold costs ~250 bytes of heap (object header, boxed doubles for
 * balances past 2^31, the decision's balances kept for retries), and ten million holds is the working set
 * this service is sized for; worse, ten million live objects make every major GC trace them, stalling
 * requests for tens of milliseconds. Here a hold is ~77 bytes of columns plus its id's bytes and ~25 bytes
 * of index, all in typed arrays the GC does not trace; columns and id bytes snapshot as raw bytes and load
 * with a copy each.
 *
 * Slots are assigned in apply order, so two tables built from the same records are identical (replay,
 * snapshot load and replicas agree). `get` returns a fresh view object; mutate through the methods.
 */
import { KeyIndex } from '../../src/collections/key-index.ts';
import { ByteSequence } from '../../src/engine/state-hash.ts';
import { typedArrayOver } from '../../src/util/bin.ts';
import { prefaultedMemory } from '../../src/util/prefaulted-memory.ts';
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

/** Bytes of one chunk's columns: the float columns, then merchant, then status (each 8-aligned). */
const CHUNK_BYTES = CHUNK_SLOTS * (8 * FLOAT_COLUMNS.length + 4 + 1);

/**
 * A chunk's columns, in one buffer, uninitialised: `add` writes every column of a slot before the slot
 * exists. `growing` (the table filled a chunk already) keeps the next chunks' memory faulted in ahead.
 */
function newChunk(growing: boolean): Chunk {
  const memory = prefaultedMemory.take(CHUNK_BYTES, { growing, zeroed: false });
  const floats = {} as Record<FloatColumn, Float64Array>;
  FLOAT_COLUMNS.forEach((name, k) => {
    floats[name] = typedArrayOver(Float64Array, memory.subarray(k * 8 * CHUNK_SLOTS), CHUNK_SLOTS);
  });
  const ints = memory.subarray(FLOAT_COLUMNS.length * 8 * CHUNK_SLOTS);
  return {
    floats,
    merchant: typedArrayOver(Int32Array, ints, CHUNK_SLOTS),
    status: typedArrayOver(Uint8Array, ints.subarray(4 * CHUNK_SLOTS), CHUNK_SLOTS),
  };
}

type Column = FloatColumn | 'merchant' | 'status';

function elementBytes(column: Column): number {
  return column === 'merchant' ? 4 : column === 'status' ? 1 : 8;
}

function columnOf(chunk: Chunk, column: Column): Int32Array | Uint8Array | Float64Array {
  return column === 'merchant' ? chunk.merchant : column === 'status' ? chunk.status : chunk.floats[column];
}

/** An id as its UTF-8 bytes `idBytes[idStart, idEnd)`, e.g. inside a log record being replayed. */
export interface IdBytes {
  idBytes: Uint8Array;
  idStart: number;
  idEnd: number;
}

/** What a row records of its merchant: its index and its balances right after the decision. */
export interface MerchantBalances {
  index: number;
  available: number;
  held: number;
  captured: number;
  credited: number;
}

/** Every column, in snapshot order. */
export const ALL_COLUMNS: readonly (FloatColumn | 'merchant' | 'status')[] = [
  'merchant',
  'status',
  ...FLOAT_COLUMNS,
];

export class ReservationTable {
  private readonly chunks: Chunk[] = [];

  /**
   * `merchantIdOf` resolves a merchant index (as stored) to its id; `ids` is the id → slot index (a
   * snapshot's, when loading one).
   */
  constructor(
    private readonly merchantIdOf: (index: number) => string,
    private readonly ids: KeyIndex = new KeyIndex(),
  ) {}

  get size(): number {
    return this.ids.size;
  }

  has(id: string): boolean {
    return this.ids.find(id) >= 0;
  }

  /** The slot of a reservation, or -1. */
  slotOf(id: string): number {
    return this.ids.find(id);
  }

  /**
   * Adds a reservation decided at `lsn`, with its merchant's balances right after the decision. Positional
   * (no object per call): replay adds millions in a row. The id is a string, or its UTF-8 bytes in a log
   * record (replay: no string is made).
   */
  add(
    id: string | IdBytes,
    merchant: MerchantBalances,
    amount: number,
    status: Status,
    sequence: number,
    expiresAtMs: number,
    ttlMs: number,
    lsn: number,
  ): number {
    const slot =
      typeof id === 'string' ? this.ids.add(id) : this.ids.addBytes(id.idBytes, id.idStart, id.idEnd);
    if ((slot & CHUNK_MASK) === 0) this.chunks.push(newChunk(this.chunks.length > 0));
    const chunk = this.chunks[slot >>> CHUNK_SHIFT];
    const i = slot & CHUNK_MASK;
    chunk.merchant[i] = merchant.index;
    chunk.status[i] = status;
    const f = chunk.floats;
    f.amount[i] = amount;
    f.sequence[i] = sequence;
    f.expiresAtMs[i] = expiresAtMs;
    f.ttlMs[i] = ttlMs;
    f.lsn[i] = lsn;
    f.availableAfter[i] = merchant.available;
    f.heldAfter[i] = merchant.held;
    f.capturedAfter[i] = merchant.captured;
    f.creditedAfter[i] = merchant.credited;
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
    return this.ids.key(slot);
  }

  get(id: string): Reservation | undefined {
    const slot = this.ids.find(id);
    return slot < 0 ? undefined : this.view(slot, id);
  }

  /** A copy of the reservation in `slot` (`id`: its id, when the caller has it at hand). */
  view(slot: number, id: string = this.ids.key(slot)): Reservation {
    const chunk = this.chunks[slot >>> CHUNK_SHIFT];
    const i = slot & CHUNK_MASK;
    const f = chunk.floats;
    return {
      id,
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
    for (let slot = 0; slot < this.ids.size; slot++) yield this.view(slot);
  }

  /** The id index's persistent form (for snapshots): see KeyIndex.chunksForSnapshot. */
  idChunks(): ReturnType<KeyIndex['chunksForSnapshot']> {
    return this.ids.chunksForSnapshot();
  }

  /** The bytes of one column over slots [0, size), chunk by chunk (for snapshots). */
  *columnBytes(column: FloatColumn | 'merchant' | 'status'): IterableIterator<Uint8Array> {
    const size = this.ids.size;
    for (let c = 0; c < this.chunks.length; c++) {
      const used = Math.min(CHUNK_SLOTS, size - c * CHUNK_SLOTS);
      const array = columnOf(this.chunks[c], column);
      yield new Uint8Array(array.buffer, array.byteOffset, used * array.BYTES_PER_ELEMENT);
    }
  }

  /**
   * Rebuilds a table from snapshot columns (each the contiguous bytes of its used slots), given its id
   * index (slot order = snapshot order).
   */
  static fromColumns(
    merchantIdOf: (index: number) => string,
    ids: KeyIndex,
    columns: ReadonlyMap<string, Uint8Array>,
  ): ReservationTable {
    const table = new ReservationTable(merchantIdOf, ids);
    const rows = ids.size;
    for (const column of ALL_COLUMNS) {
      const source = columns.get(column);
      if (!source) throw new Error(`reservation column '${column}' is missing`);
      const bytes = rows * elementBytes(column);
      if (source.length !== bytes) {
        throw new Error(`reservation column '${column}' holds ${source.length} bytes, not ${rows} rows`);
      }
    }
    for (let start = 0; start < rows; start += CHUNK_SLOTS) {
      const used = Math.min(CHUNK_SLOTS, rows - start);
      const part = (column: Column) => {
        const size = elementBytes(column);
        return columns.get(column)!.subarray(start * size, (start + used) * size);
      };
      if (used < CHUNK_SLOTS) {
        // The last, partial chunk gets room to grow: a copy.
        const chunk = newChunk(false);
        for (const column of ALL_COLUMNS) {
          const array = columnOf(chunk, column);
          new Uint8Array(array.buffer, array.byteOffset, used * array.BYTES_PER_ELEMENT).set(part(column));
        }
        table.chunks.push(chunk);
        continue;
      }
      // A full chunk is never written past its rows: views of the snapshot's memory, no copy.
      const floats = {} as Record<FloatColumn, Float64Array>;
      for (const column of FLOAT_COLUMNS) floats[column] = typedArrayOver(Float64Array, part(column), used);
      table.chunks.push({
        merchant: typedArrayOver(Int32Array, part('merchant'), used),
        status: typedArrayOver(Uint8Array, part('status'), used),
        floats,
      });
    }
    return table;
  }

  /**
   * The table as plain data in a canonical form, for the state hash: ids in slot order and each column
   * trimmed to the used slots (independent of chunk capacity), hashed as one contiguous byte sequence per
   * column without being copied into one.
   */
  canonical(): unknown {
    const columns: Record<string, ByteSequence> = {};
    for (const column of ALL_COLUMNS) columns[column] = new ByteSequence([...this.columnBytes(column)]);
    const idChunks = [...this.ids.chunksForSnapshot()];
    const idLengths = new Uint32Array(this.ids.size);
    let slot = 0;
    for (const { count, offsets } of idChunks) {
      for (let i = 0; i < count; i++) idLengths[slot++] = offsets[i + 1] - offsets[i];
    }
    return { idBytes: new ByteSequence(idChunks.map((c) => c.bytes)), idLengths, columns };
  }
}
