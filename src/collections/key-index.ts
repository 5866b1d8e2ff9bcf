/**
 * String keys → dense slots (0, 1, 2, ... in insertion order), for tables of tens of millions of rows.
 *
 * Why not a `Map<string, number>`: each entry costs a heap string plus a hash-table entry (~100 bytes for a
 * 25-character key), and every one of them is a live object the major GC must trace: with ten million keys
 * that is seconds of marking and pauses of tens of milliseconds on the request path. Here keys are UTF-8
 * bytes in chunked arenas and the hash table is an `Int32Array` of `[hash, slot + 1]` pairs (open
 * addressing, linear probing, load factor at most 1/2), so the GC sees a few hundred typed arrays whatever
 * the key count, and a key costs its bytes + 4 (offset) + ~21 (table).
 *
 * The table is split 256 ways by the hash's top byte: growing one shard rehashes 1/256 of the keys (well
 * under a millisecond at ten million), where a single table would stall every request while it doubled.
 * Growth needs no key bytes: the pair carries the full 32-bit hash.
 *
 * Keys and slots are never removed (the tables this serves keep every row: see ReservationTable).
 */

import type { Pace } from '../util/pace.ts';
import { PREFAULT_MIN_BYTES, prefaultedMemory } from '../util/prefaulted-memory.ts';

const CHUNK_BITS = 16;
/** Keys per arena chunk; a chunk's offsets are relative to its own arena, so arenas stay small. */
export const KEY_CHUNK_SLOTS = 1 << CHUNK_BITS;
/** `fromChunks` paces every 4,096 keys of each pass: some 0.5 ms of work (most of it first-touch faults). */
const PACE_MASK = 4095;
const PACE_UNITS = 512;
const CHUNK_MASK = KEY_CHUNK_SLOTS - 1;
const SHARD_BITS = 8;
const SHARD_COUNT = 1 << SHARD_BITS;
const SHARD_SHIFT = 32 - SHARD_BITS;
const INITIAL_SHARD_CAPACITY = 16;
const INITIAL_ARENA_BYTES = 4096;
/** A chunk's offsets (KEY_CHUNK_SLOTS + 1 u32s), padded to 8 bytes; its arena follows in the same buffer. */
const OFFSETS_BYTES = (KEY_CHUNK_SLOTS + 2) * 4;
/** Merge order: 256 shards x 256 regions of each shard's table. */
const MERGE_BUCKETS = SHARD_COUNT * 256;

interface Chunk {
  /** Key bytes of this chunk's slots, back to back. */
  arena: Buffer;
  /** offsets[i]..offsets[i + 1] are the bytes of slot (chunk base + i). */
  offsets: Uint32Array;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/** murmur3's finaliser: spreads every input bit over the top byte (shard) and the low bits (position). */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** One murmur3 (x86, 32-bit) body round: mixes a 4-byte little-endian word into `h`. */
function mixWord(h: number, word: number): number {
  let k = Math.imul(word, C1);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, C2);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3's tail round (1-3 bytes left, or 0) then its finaliser. */
function mixTail(h: number, tail: number): number {
  let k = Math.imul(tail, C1);
  k = (k << 15) | (k >>> 17);
  return fmix(h ^ Math.imul(k, C2));
}

/**
 * The hash of a key's UTF-8 bytes: murmur3 (x86, 32-bit) seeded by the length; int32. Ids are 20-40 bytes
 * and hashed on every lookup. `hash` below computes the same from an ASCII string's char codes.
 *
 * Not the cheaper multiply-xorshift per word used before: on ids that differ only in their last digits
 * (`payout-2026-11-23-${i}`) it gave 16x the equal 32-bit hashes of a random function (243,702 pairs
 * against 15,396 expected over 11.5M keys), each one a key comparison on lookup; murmur3 gives 15,418.
 */
export function hashKeyBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = end - start;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    h = mixWord(h, bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
  }
  let tail = 0;
  for (let shift = 0; i < end; i++, shift += 8) tail |= bytes[i] << shift;
  return mixTail(h, tail);
}

export class KeyIndex {
  private readonly shards: Int32Array[] = Array.from(
    { length: SHARD_COUNT },
    () => new Int32Array(INITIAL_SHARD_CAPACITY * 2),
  );
  private readonly shardCounts = new Int32Array(SHARD_COUNT);
  private readonly chunks: Chunk[] = [];
  private count = 0;
  /** UTF-8 bytes of the last non-ASCII key hashed (ASCII keys are compared as they are). */
  private encoded: Buffer = Buffer.alloc(256);
  private encodedLength = 0;
  private lastAscii = true;
  /** The last key hashed had an unpaired surrogate: UTF-8 cannot hold it, so it is never a key. */
  private lastMalformed = false;
  /**
   * Keys added by `addBytes` (replay) not yet in the main table: a small open-addressing table of the same
   * `[hash, slot + 1]` pairs, merged in bulk when `pendingMax` keys have gathered.
   */
  private pending: Int32Array | undefined;
  private pendingCount = 0;
  /**
   * The merge's counting-sort arrays, kept from one merge to the next: allocated per merge (about 1 MB),
   * they were fresh memory every time, and a first-touched page costs 12-16 µs on these VMs (decision 008).
   */
  private mergeScratch:
    | { perShard: Int32Array; buckets: Int32Array; bucketOf: Int32Array; order: Int32Array }
    | undefined;
  /** Set when a merge found a duplicate that addBytes let in: the index is inconsistent from then on. */
  private broken: Error | undefined;

  /** `pendingMax`: keys `addBytes` gathers before merging them into the main table (a test sets it low). */
  constructor(private readonly pendingMax = 32_768) {
    if (!(pendingMax >= 1 && pendingMax <= 2 ** 17 && Number.isInteger(pendingMax))) {
      throw new RangeError('pendingMax must be an integer in 1..131072');
    }
  }

  /** The last key looked up and its hash: `add` right after a missed `find` hashes nothing. */
  private lastKey: string | undefined;
  private lastHash = 0;

  get size(): number {
    return this.count;
  }

  /** The slot of `key`, or -1. */
  find(key: string): number {
    if (this.broken) throw this.broken;
    const h = this.hash(key);
    if (this.lastMalformed) return -1;
    if (this.pendingCount > 0) {
      const pending = this.findPending(h, key);
      if (pending >= 0) return pending;
    }
    const table = this.shards[h >>> SHARD_SHIFT];
    const mask = (table.length >> 1) - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const entry = table[2 * i + 1];
      if (entry === 0) return -1;
      if (table[2 * i] === h && this.equals(entry - 1, key)) return entry - 1;
    }
  }

  has(key: string): boolean {
    return this.find(key) >= 0;
  }

  /** Adds a key that is not present and returns its slot (the next one); throws if it is present. */
  add(key: string): number {
    if (this.broken) throw this.broken;
    const h = key === this.lastKey ? this.lastHash : this.hash(key);
    if (this.lastMalformed) {
      throw new TypeError(
        `key ${JSON.stringify(key)} holds an unpaired surrogate (not valid Unicode); keys must be well-formed strings`,
      );
    }
    if (this.pendingCount > 0 && this.findPending(h, key) >= 0) {
      throw new Error(`key '${key}' is already in the index`);
    }
    return this.insert(h, key);
  }

  /**
   * `add` for a key given as its UTF-8 bytes (`bytes[start, end)`, e.g. straight from a log record): no
   * string is made. The bytes must be the encoding of a well-formed string, as BinWriter.string writes it.
   * For replay, whose keys are known to be new: a key already in the main table is only caught when the
   * pending keys are merged, and that breaks the index (every later call throws), since the slot was given.
   */
  addBytes(bytes: Uint8Array, start: number, end: number): number {
    if (this.broken) throw this.broken;
    this.lastKey = undefined;
    // The bytes go straight into the new slot's place in the arena and are hashed there: one copy per key
    // (a copy into `encoded` and another into the arena were a third of replay's time in this method).
    // The slot counts only once the key is known to be new; a refused key's bytes are overwritten later.
    const slot = this.count;
    const length = end - start;
    const chunk = this.chunkWithRoom(slot, length);
    const at = chunk.offsets[slot & CHUNK_MASK];
    const arena = chunk.arena;
    for (let k = 0; k < length; k++) arena[at + k] = bytes[start + k];
    chunk.offsets[(slot & CHUNK_MASK) + 1] = at + length;
    const h = hashKeyBytes(arena, at, at + length);
    if (this.findPendingSlot(h, slot) >= 0) {
      throw new Error(`key '${arena.toString('utf8', at, at + length)}' is already in the index`);
    }
    // Into the small pending table (in cache): checking the main table now would be a cache and TLB miss
    // per key at tens of millions of keys; the merge checks them in table order instead.
    this.count = slot + 1;
    this.insertPending(h, slot);
    if (this.pendingCount >= this.pendingMax) this.mergePending();
    return slot;
  }

  /** The pending slot holding the same bytes as `slot` (hash `h`), or -1. */
  private findPendingSlot(h: number, slot: number): number {
    const table = this.pending;
    if (table === undefined) return -1;
    const mask = (table.length >> 1) - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const entry = table[2 * i + 1];
      if (entry === 0) return -1;
      if (table[2 * i] === h && this.sameKeys(entry - 1, slot)) return entry - 1;
    }
  }

  /** Slot of `key`, the key hashed last (with hash `h`), among pending keys, or -1. */
  private findPending(h: number, key: string): number {
    const table = this.pending;
    if (table === undefined) return -1;
    const mask = (table.length >> 1) - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const entry = table[2 * i + 1];
      if (entry === 0) return -1;
      if (table[2 * i] === h && this.equals(entry - 1, key)) return entry - 1;
    }
  }

  private insertPending(h: number, slot: number): void {
    if (this.pending === undefined) {
      let pairs = 2; // a power of two (probing masks the position), at least twice the keys it holds
      while (pairs < this.pendingMax * 2) pairs *= 2;
      this.pending = new Int32Array(pairs * 2);
    }
    const table = this.pending;
    const mask = (table.length >> 1) - 1;
    let i = h & mask;
    while (table[2 * i + 1] !== 0) i = (i + 1) & mask;
    table[2 * i] = h;
    table[2 * i + 1] = slot + 1;
    this.pendingCount++;
  }

  /**
   * Moves the pending keys into the main table, shard by shard and, within a shard, in table order: the
   * accesses sweep each shard's table forwards instead of landing at random. A key already there is a
   * duplicate (it was added twice without the check `add` makes): that throws.
   */
  private mergePending(): void {
    const pending = this.pending;
    if (pending === undefined || this.pendingCount === 0) return;
    this.mergeScratch ??= {
      perShard: new Int32Array(SHARD_COUNT),
      buckets: new Int32Array(MERGE_BUCKETS + 1),
      bucketOf: new Int32Array(pending.length >> 1),
      order: new Int32Array(this.pendingMax),
    };
    const { perShard, buckets, bucketOf, order } = this.mergeScratch;
    perShard.fill(0);
    buckets.fill(0);
    for (let j = 1; j < pending.length; j += 2)
      if (pending[j] !== 0) perShard[pending[j - 1] >>> SHARD_SHIFT]++;
    for (let shard = 0; shard < SHARD_COUNT; shard++) {
      while ((this.shardCounts[shard] + perShard[shard]) * 2 > this.shards[shard].length >> 1)
        this.grow(shard);
    }
    // Order the keys by shard and by the 1/256 of its table they land in (a counting sort: a comparison
    // sort cost as much as the inserts), so the inserts sweep each table a few KiB at a time.
    for (let j = 1; j < pending.length; j += 2) {
      if (pending[j] === 0) continue;
      const h = pending[j - 1];
      const shard = h >>> SHARD_SHIFT;
      const capacity = this.shards[shard].length >> 1;
      const shift = Math.max(0, 31 - Math.clz32(capacity) - 8);
      const bucket = shard * 256 + ((h & (capacity - 1)) >>> shift);
      bucketOf[j >> 1] = bucket;
      buckets[bucket + 1]++;
    }
    for (let b = 0; b < MERGE_BUCKETS; b++) buckets[b + 1] += buckets[b];
    const n = this.pendingCount;
    for (let j = 1; j < pending.length; j += 2) {
      if (pending[j] !== 0) order[buckets[bucketOf[j >> 1]]++] = j >> 1;
    }
    for (let k = 0; k < n; k++) {
      const at = order[k];
      if (!this.insertSlot(pending[2 * at], pending[2 * at + 1] - 1)) {
        // The index now holds a slot twice: unusable, and every later call says so.
        this.broken = new Error(
          `duplicate key '${this.key(pending[2 * at + 1] - 1)}' added to the index by addBytes; the index is unusable`,
        );
        throw this.broken;
      }
    }
    pending.fill(0);
    this.pendingCount = 0;
  }

  /** Inserts the key hashed last (`key`, or the bytes in `encoded` when undefined) with hash `h`. */
  private insert(h: number, key: string | undefined): number {
    const shard = h >>> SHARD_SHIFT;
    let table = this.shards[shard];
    if ((this.shardCounts[shard] + 1) * 2 > table.length >> 1) table = this.grow(shard);
    const mask = (table.length >> 1) - 1;
    let i = h & mask;
    for (; table[2 * i + 1] !== 0; i = (i + 1) & mask) {
      if (table[2 * i] === h && this.equals(table[2 * i + 1] - 1, key ?? '')) {
        const shown = key ?? this.encoded.toString('utf8', 0, this.encodedLength);
        throw new Error(`key '${shown}' is already in the index`);
      }
    }
    const slot = this.count;
    this.appendBytes(slot, key ?? '');
    table[2 * i] = h;
    table[2 * i + 1] = slot + 1;
    this.shardCounts[shard]++;
    this.count = slot + 1;
    return slot;
  }

  /** The key of a slot. */
  key(slot: number): string {
    const chunk = this.chunks[slot >>> CHUNK_BITS];
    const i = slot & CHUNK_MASK;
    return chunk.arena.toString('utf8', chunk.offsets[i], chunk.offsets[i + 1]);
  }

  /**
   * The keys as stored, chunk by chunk: each chunk's used offsets (count + 1 u32s, starting at 0) and its
   * key bytes. With `fromChunks`, the whole persistent form of the index.
   */
  *chunksForSnapshot(): IterableIterator<{ count: number; offsets: Uint32Array; bytes: Uint8Array }> {
    // Only chunks that hold keys: one can be opened for a key addBytes then refused.
    const used = Math.ceil(this.count / KEY_CHUNK_SLOTS);
    for (let c = 0; c < used; c++) {
      const count = Math.min(KEY_CHUNK_SLOTS, this.count - c * KEY_CHUNK_SLOTS);
      const { arena, offsets } = this.chunks[c];
      yield {
        count,
        offsets: offsets.subarray(0, count + 1),
        bytes: arena.subarray(0, offsets[count]),
      };
    }
  }

  /**
   * Rebuilds an index from `chunksForSnapshot` output (full chunks first, as written). The hash table is
   * rebuilt from the key bytes: it is derived data, so a snapshot does not carry it. Full chunks' arrays are
   * used in place (not copied): the caller must not change them afterwards. `pace` is called every few
   * thousand keys (a paced load's: the tables it fills are fresh memory, hundreds of MiB for millions).
   */
  static fromChunks(
    chunks: Iterable<{ count: number; offsets: Uint32Array; bytes: Uint8Array }>,
    pace?: Pace,
  ): KeyIndex {
    const index = new KeyIndex();
    for (const part of chunks) {
      if (index.count % KEY_CHUNK_SLOTS !== 0 || part.count > KEY_CHUNK_SLOTS || part.count < 1) {
        throw new Error(`key chunk of ${part.count} keys after ${index.count} keys: chunks must be full`);
      }
      const { offsets, bytes } = part;
      if (offsets.length !== part.count + 1 || offsets[0] !== 0 || offsets[part.count] !== bytes.length) {
        throw new Error('key chunk offsets do not match its bytes');
      }
      for (let i = 0; i < part.count; i++) {
        if (offsets[i + 1] < offsets[i]) throw new Error(`key chunk offsets decrease at key ${i}`);
      }
      if (part.count === KEY_CHUNK_SLOTS) {
        // A full chunk is never appended to: it keeps the caller's memory (a snapshot's, without a copy).
        index.chunks.push({ arena: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), offsets });
      } else {
        const chunkOffsets = new Uint32Array(KEY_CHUNK_SLOTS + 1);
        chunkOffsets.set(offsets);
        const arena = Buffer.allocUnsafe(Math.max(INITIAL_ARENA_BYTES, bytes.length));
        arena.set(bytes);
        index.chunks.push({ arena, offsets: chunkOffsets });
      }
      index.count += part.count;
    }
    // Hash every key first, so each shard's table is allocated once at its final size: growing them while
    // inserting rehashed every key about twice.
    const hashes = new Int32Array(index.count);
    const perShard = new Int32Array(SHARD_COUNT);
    for (let c = 0, slot = 0; c < index.chunks.length; c++) {
      const { arena, offsets } = index.chunks[c];
      const end = Math.min(index.count, slot + KEY_CHUNK_SLOTS);
      for (let i = 0; slot < end; i++, slot++) {
        const h = hashKeyBytes(arena, offsets[i], offsets[i + 1]);
        hashes[slot] = h;
        perShard[h >>> SHARD_SHIFT]++;
        if (pace !== undefined && (slot & PACE_MASK) === PACE_MASK) pace(PACE_UNITS);
      }
    }
    for (let shard = 0; shard < SHARD_COUNT; shard++) {
      let capacity = INITIAL_SHARD_CAPACITY;
      while ((perShard[shard] + 1) * 2 > capacity) capacity *= 2;
      index.shards[shard] = new Int32Array(capacity * 2);
    }
    // Then insert shard by shard ([hash, slot] pairs bucketed by shard, in slot order within one): each
    // shard's table stays in cache while it fills, instead of every insert missing into a random one of 256
    // tables, and the inserts read the pairs in order instead of each hash at a random place.
    const fill = new Int32Array(SHARD_COUNT);
    for (let shard = 1; shard < SHARD_COUNT; shard++) fill[shard] = fill[shard - 1] + 2 * perShard[shard - 1];
    const byShard = new Int32Array(2 * index.count);
    for (let slot = 0; slot < index.count; slot++) {
      const h = hashes[slot];
      const at = fill[h >>> SHARD_SHIFT];
      byShard[at] = h;
      byShard[at + 1] = slot;
      fill[h >>> SHARD_SHIFT] = at + 2;
      if (pace !== undefined && (slot & PACE_MASK) === PACE_MASK) pace(PACE_UNITS);
    }
    for (let k = 0; k < byShard.length; k += 2) {
      if (!index.insertSlot(byShard[k], byShard[k + 1])) {
        throw new Error(`duplicate key '${index.key(byShard[k + 1])}' in a key chunk`);
      }
      if (pace !== undefined && (k & (2 * PACE_MASK + 1)) === 2 * PACE_MASK) pace(PACE_UNITS);
    }
    return index;
  }

  /**
   * Puts a slot whose key bytes are stored into the main table (rebuild, pending merge); false if its key
   * is already there, which the caller reports.
   */
  private insertSlot(h: number, slot: number): boolean {
    const shard = h >>> SHARD_SHIFT;
    let table = this.shards[shard];
    if ((this.shardCounts[shard] + 1) * 2 > table.length >> 1) table = this.grow(shard);
    const mask = (table.length >> 1) - 1;
    let i = h & mask;
    for (; table[2 * i + 1] !== 0; i = (i + 1) & mask) {
      if (table[2 * i] === h && this.sameKeys(table[2 * i + 1] - 1, slot)) return false;
    }
    table[2 * i] = h;
    table[2 * i + 1] = slot + 1;
    this.shardCounts[shard]++;
    return true;
  }

  private grow(shard: number): Int32Array {
    const old = this.shards[shard];
    // An index past its first chunk is growing: its shards will double through this size again.
    const memory = prefaultedMemory.take(old.length * 8, {
      growing: this.count >= KEY_CHUNK_SLOTS,
      zeroed: true,
    });
    const next = new Int32Array(memory.buffer, memory.byteOffset, old.length * 2);
    const mask = (next.length >> 1) - 1;
    for (let j = 1; j < old.length; j += 2) {
      if (old[j] === 0) continue;
      const h = old[j - 1];
      let i = h & mask;
      while (next[2 * i + 1] !== 0) i = (i + 1) & mask;
      next[2 * i] = h;
      next[2 * i + 1] = old[j];
    }
    this.shards[shard] = next;
    return next;
  }

  /** Hashes `key` as its UTF-8 bytes; for a non-ASCII key, leaves those bytes in `encoded`. */
  private hash(key: string): number {
    const length = key.length;
    // hashKeyBytes over the char codes, which are the UTF-8 bytes when all are ASCII (checked after).
    let h = length;
    let all = 0;
    let i = 0;
    for (; i + 4 <= length; i += 4) {
      const c0 = key.charCodeAt(i);
      const c1 = key.charCodeAt(i + 1);
      const c2 = key.charCodeAt(i + 2);
      const c3 = key.charCodeAt(i + 3);
      all |= c0 | c1 | c2 | c3;
      h = mixWord(h, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24));
    }
    let tail = 0;
    for (let shift = 0; i < length; i++, shift += 8) {
      const c = key.charCodeAt(i);
      all |= c;
      tail |= c << shift;
    }
    let result: number;
    if (all < 0x80) {
      this.lastAscii = true;
      this.lastMalformed = false;
      result = mixTail(h, tail);
    } else {
      this.lastAscii = false;
      const bytes = Buffer.byteLength(key, 'utf8');
      if (bytes > this.encoded.length) this.encoded = Buffer.alloc(bytes * 2);
      this.encodedLength = this.encoded.write(key, 0, 'utf8');
      this.lastMalformed = this.encoded.toString('utf8', 0, this.encodedLength) !== key;
      result = hashKeyBytes(this.encoded, 0, this.encodedLength);
    }
    this.lastKey = key;
    this.lastHash = result;
    return result;
  }

  /** Whether slot's key equals `key` (hashed last, so `lastAscii`/`encoded` describe it). */
  private equals(slot: number, key: string): boolean {
    const chunk = this.chunks[slot >>> CHUNK_BITS];
    const i = slot & CHUNK_MASK;
    const start = chunk.offsets[i];
    const end = chunk.offsets[i + 1];
    const arena = chunk.arena;
    if (this.lastAscii) {
      if (end - start !== key.length) return false;
      for (let k = 0; k < key.length; k++) if (arena[start + k] !== key.charCodeAt(k)) return false;
      return true;
    }
    if (end - start !== this.encodedLength) return false;
    return arena.compare(this.encoded, 0, this.encodedLength, start, end) === 0;
  }

  private sameKeys(a: number, b: number): boolean {
    const ca = this.chunks[a >>> CHUNK_BITS];
    const cb = this.chunks[b >>> CHUNK_BITS];
    const ia = a & CHUNK_MASK;
    const ib = b & CHUNK_MASK;
    return (
      ca.arena.compare(cb.arena, cb.offsets[ib], cb.offsets[ib + 1], ca.offsets[ia], ca.offsets[ia + 1]) === 0
    );
  }

  /**
   * A chunk for the next KEY_CHUNK_SLOTS keys: offsets and arena in one buffer, uninitialised (offsets[0]
   * aside), the arena sized from the previous chunk's keys. Zeroing 256 KiB of offsets and doubling the arena
   * from 4 KiB to ~2 MiB (a copy into fresh memory each time) stalled the event loop for milliseconds at every
   * 65,536th key, where first-touched pages cost 12-16 µs each (see prefaulted-memory.ts).
   */
  private newChunk(): Chunk {
    const previous = this.chunks.at(-1);
    const previousBytes = previous ? previous.offsets[KEY_CHUNK_SLOTS] : 0;
    // Rounded up, so that chunks ask for the same few sizes and prefaulted spares fit them.
    const arenaBytes = roundUp(
      Math.max(INITIAL_ARENA_BYTES, previousBytes + (previousBytes >>> 4)),
      PREFAULT_MIN_BYTES,
    );
    const memory = prefaultedMemory.take(OFFSETS_BYTES + arenaBytes, {
      growing: previous !== undefined,
      zeroed: false,
    });
    const offsets = new Uint32Array(memory.buffer, memory.byteOffset, KEY_CHUNK_SLOTS + 1);
    offsets[0] = 0;
    return { arena: memory.subarray(OFFSETS_BYTES), offsets };
  }

  /** Appends the key's bytes (hashed last) as slot's. */
  private appendBytes(slot: number, key: string): void {
    const length = this.lastAscii ? key.length : this.encodedLength;
    const chunk = this.chunkWithRoom(slot, length);
    const i = slot & CHUNK_MASK;
    const start = chunk.offsets[i];
    const arena = chunk.arena;
    if (this.lastAscii) {
      for (let k = 0; k < length; k++) arena[start + k] = key.charCodeAt(k);
    } else {
      // A loop, not Buffer.copy: keys are tens of bytes, less than the cost of a call into C++.
      const encoded = this.encoded;
      for (let k = 0; k < length; k++) arena[start + k] = encoded[k];
    }
    chunk.offsets[i + 1] = start + length;
  }

  /** The chunk `slot` belongs to (created when it is the first slot of one), with `length` bytes free for it. */
  private chunkWithRoom(slot: number, length: number): Chunk {
    if (this.chunks.length === slot >>> CHUNK_BITS) this.chunks.push(this.newChunk());
    const chunk = this.chunks[slot >>> CHUNK_BITS];
    const start = chunk.offsets[slot & CHUNK_MASK];
    if (start + length > chunk.arena.length) {
      const grown = Buffer.allocUnsafe(Math.max(chunk.arena.length * 2, start + length));
      chunk.arena.copy(grown, 0, 0, start);
      chunk.arena = grown;
    }
    return chunk;
  }
}
