/**
 * Memory for tables that grow, faulted in on libuv's thread pool before the event loop needs it.
 *
 * On these VMs the first write to a page of fresh memory costs 11–24 µs: the guest's page fault plus the
 * host's (decisions 008 and 010). A growing balance-gate store writes about 150 bytes of fresh memory per
 * reservation: 77 bytes of columns, the id's bytes and offset, and hash tables that double. Those faults
 * were a quarter of the event loop's time at saturation. Reading /dev/zero into a buffer makes the kernel
 * fault the buffer's pages in the reading thread, so a read on the thread pool moves them off the event loop.
 *
 * A table asks for memory by size. When it says it is growing, `SPARES` more buffers of that size are
 * faulted in for its next requests. Sizes repeat: a table's chunks all have one size, and the 256 shards of a
 * key index double through the same sizes at about the same time. Only the `MAX_SIZES` sizes asked for most
 * recently keep spares, so the memory held in advance stays bounded (about 2 × 5 MiB of column chunks plus
 * smaller key chunks and hash tables for one growing store).
 */
import { openSync, read } from 'node:fs';

/** Buffers of one size kept faulted in ahead of the requests, at least. */
const SPARES = 2;
/**
 * ... or as many as fit in this many bytes: a key index's 256 shards outgrow one size within a fraction of
 * a second, and one read faults in spares for many of them (a read per spare would queue dozens of reads
 * on the thread pool ahead of the log's writes).
 */
const BATCH_BYTES = 1024 * 1024;
/** Sizes that keep spares; the least recently asked for loses them first. */
const MAX_SIZES = 8;
/** Below 4 pages, a read on the thread pool costs the event loop about what the faults would. */
export const PREFAULT_MIN_BYTES = 16 * 1024;

export interface MemoryRequest {
  /** The table is growing: keep buffers of this size faulted in for its next requests. */
  growing: boolean;
  /** The caller needs zeros (spares are zeros either way; a fresh buffer is then allocated zeroed). */
  zeroed: boolean;
}

export interface PrefaultStats {
  /** Requests served from a faulted-in spare. */
  spares: number;
  /** Requests served with fresh memory (no spare of that size was ready). */
  fresh: number;
  /** Spares faulted in so far. */
  prefaulted: number;
  /** Bytes of spares ready now. */
  readyBytes: number;
}

export class PrefaultedMemory {
  /** By size, in order of the last request (oldest first). */
  private readonly ready = new Map<number, Buffer[]>();
  private readonly inFlight = new Map<number, number>();
  /** The open zero source; null once it failed (then nothing is prefaulted). */
  private fd: number | null | undefined;
  private readonly counts = { spares: 0, fresh: 0, prefaulted: 0 };

  /** `zeroSource`: a file whose reads give zeros (a test passes one that does not exist). */
  constructor(private readonly zeroSource = '/dev/zero') {}

  /** `bytes` of memory (zeros if asked), a faulted-in spare when one of that size is ready. */
  take(bytes: number, request: MemoryRequest): Buffer {
    const list = this.ready.get(bytes);
    const spare = list?.pop();
    if (list) {
      this.ready.delete(bytes);
      this.ready.set(bytes, list);
    }
    if (request.growing && bytes >= PREFAULT_MIN_BYTES) this.topUp(bytes);
    if (spare) {
      this.counts.spares++;
      return spare;
    }
    this.counts.fresh++;
    return request.zeroed ? Buffer.alloc(bytes) : Buffer.allocUnsafeSlow(bytes);
  }

  stats(): PrefaultStats {
    let readyBytes = 0;
    for (const [bytes, list] of this.ready) readyBytes += bytes * list.length;
    return { ...this.counts, readyBytes };
  }

  private topUp(bytes: number): void {
    let list = this.ready.get(bytes);
    if (!list) {
      list = [];
      this.ready.set(bytes, list);
      if (this.ready.size > MAX_SIZES) this.ready.delete(this.ready.keys().next().value as number);
    }
    const fd = this.zeroFd();
    if (fd === null) return;
    const pending = this.inFlight.get(bytes) ?? 0;
    const missing = Math.max(SPARES, Math.floor(BATCH_BYTES / bytes)) - list.length - pending;
    if (missing > 0 && pending === 0) this.prefault(fd, bytes, missing);
  }

  /** Faults in `count` spares of `bytes` with one read (they share one ArrayBuffer). */
  private prefault(fd: number, bytes: number, count: number): void {
    this.inFlight.set(bytes, count);
    // Uninitialised: the read writes every byte (a short read discards the buffer).
    const buffer = Buffer.allocUnsafeSlow(bytes * count);
    read(fd, buffer, 0, buffer.length, null, (error, bytesRead) => {
      this.inFlight.set(bytes, 0);
      if (error) {
        this.fd = null;
        return;
      }
      // A size that lost its spares meanwhile is no longer asked for: let the buffer go.
      const list = this.ready.get(bytes);
      if (bytesRead !== buffer.length || !list) return;
      for (let k = 0; k < count; k++) list.push(buffer.subarray(k * bytes, (k + 1) * bytes));
      this.counts.prefaulted += count;
    });
  }

  private zeroFd(): number | null {
    if (this.fd === undefined) {
      try {
        this.fd = openSync(this.zeroSource, 'r');
      } catch {
        this.fd = null;
      }
    }
    return this.fd;
  }
}

/** The process's one instance: every table shares its spares. */
export const prefaultedMemory = new PrefaultedMemory();
