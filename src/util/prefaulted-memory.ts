/**
 * Memory for tables that grow, faulted in by a helper thread before the event loop needs it.
 *
 * On these VMs the first write to a page of fresh memory costs 11–24 µs: the guest's page fault plus the
 * host's (decisions 008 and 010). A growing balance-gate store writes about 150 bytes of fresh memory per
 * reservation: 77 bytes of columns, the id's bytes and offset, and hash tables that double. Those faults
 * were a fifth to a quarter of the event loop's time at saturation. A helper thread writes one byte of
 * every page of a SharedArrayBuffer (it is zeros already), and the event loop then uses the memory without
 * a fault. Pages the kernel filled instead (a read of /dev/zero on the thread pool) still cost the first
 * user access about 5 µs each here, a third of the saving lost (decision 010).
 *
 * A table asks for memory by size. When it says it is growing, spares of that size are faulted in for its
 * next requests. Sizes repeat: a table's chunks all have one size, and the 256 shards of a key index double
 * through the same sizes at about the same time. Only the `MAX_SIZES` sizes asked for most recently keep
 * spares, so the memory held in advance stays bounded (about 2 × 5 MiB of column chunks plus smaller key
 * chunks and hash tables for one growing store).
 */
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';

/** Buffers of one size kept faulted in ahead of the requests, at least. */
const SPARES = 2;
/**
 * ... or as many as fit in this many bytes: a key index's 256 shards outgrow one size within a fraction of
 * a second, and one message to the helper faults in spares for many of them.
 */
const BATCH_BYTES = 1024 * 1024;
/** Sizes that keep spares; the least recently asked for loses them first. */
const MAX_SIZES = 8;
/** Below 4 pages, the round trip to the helper costs the event loop about what the faults would. */
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
  /**
   * Bytes of spares handed out so far. The helper's isolate allocated them, so the caller's
   * `process.memoryUsage().arrayBuffers` does not count them: a heap figure must add them.
   */
  spareBytes: number;
}

/**
 * The helper: allocates the memory asked for, writes a byte of every page (zeros stay zeros) and sends it.
 * It allocates too: a SharedArrayBuffer below glibc's mmap threshold is zeroed by calloc, which is the very
 * first touch this thread is there to take off the event loop. (Memory it allocates counts toward its own
 * GC's external memory, so its references to spares it sent go soon; a test checks that they are freed.)
 */
const FAULTER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
// Background work: the lowest priority for this thread, so it never takes time slices from the event loop.
try { require('node:os').setPriority(0, 19); } catch {}
parentPort.on('message', ({ id, bytes }) => {
  const memory = new SharedArrayBuffer(bytes);
  const view = new Uint8Array(memory);
  for (let i = 0; i < view.length; i += 4096) view[i] = 0;
  workerData.answers.postMessage({ id, memory });
});`;

interface Batch {
  bytes: number;
  count: number;
}

export class PrefaultedMemory {
  /** By size, in order of the last request (oldest first). */
  private readonly ready = new Map<number, Buffer[]>();
  /** Batches the helper is making, by message id; at most one per size. */
  private readonly batches = new Map<number, Batch>();
  private readonly sizesInFlight = new Set<number>();
  private nextBatch = 0;
  /** The helper thread; null when it cannot run (then nothing is prefaulted). */
  private faulter: Worker | null | undefined;
  /** Where the helper's spares arrive: read synchronously in `take`, so a burst of growth that never yields
   * to the event loop (a recovery's replay) still gets the spares faulted in meanwhile. */
  private answers: MessagePort | undefined;
  private readonly counts = { spares: 0, fresh: 0, prefaulted: 0, spareBytes: 0 };
  private suspended = 0;

  /** `helper: false` never starts the helper thread (as when it cannot start): every request is fresh. */
  constructor(private readonly options: { helper: boolean } = { helper: true }) {}

  /**
   * Stops faulting in spares until the returned function is called (calls nest): for growth that should
   * not have a helper beside it, such as a snapshot's rebuild in a worker next to the store's event loop.
   */
  suspend(): () => void {
    this.suspended++;
    let resumed = false;
    return () => {
      if (!resumed) this.suspended--;
      resumed = true;
    };
  }

  /** `bytes` of memory (zeros if asked), a faulted-in spare when one of that size is ready. */
  take(bytes: number, request: MemoryRequest): Buffer {
    this.receiveSpares();
    const list = this.ready.get(bytes);
    const spare = list?.pop();
    if (list) {
      this.ready.delete(bytes);
      this.ready.set(bytes, list);
    }
    if (request.growing && bytes >= PREFAULT_MIN_BYTES && this.suspended === 0) this.topUp(bytes);
    if (spare) {
      this.counts.spares++;
      this.counts.spareBytes += bytes;
      return spare;
    }
    this.counts.fresh++;
    return request.zeroed ? Buffer.alloc(bytes) : Buffer.allocUnsafeSlow(bytes);
  }

  stats(): PrefaultStats {
    this.receiveSpares();
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
    const missing = Math.max(SPARES, Math.floor(BATCH_BYTES / bytes)) - list.length;
    if (missing <= 0 || this.sizesInFlight.has(bytes)) return;
    const faulter = this.helper();
    if (!faulter) return;
    const id = this.nextBatch++;
    this.batches.set(id, { bytes, count: missing });
    this.sizesInFlight.add(bytes);
    faulter.postMessage({ id, bytes: bytes * missing });
  }

  private receiveSpares(): void {
    if (this.answers === undefined || this.batches.size === 0) return;
    for (
      let m = receiveMessageOnPort(this.answers);
      m !== undefined;
      m = receiveMessageOnPort(this.answers)
    ) {
      const answer = m.message as { id: number; memory: SharedArrayBuffer };
      this.faulted(answer.id, answer.memory);
    }
  }

  private faulted(id: number, memory: SharedArrayBuffer): void {
    const batch = this.batches.get(id);
    if (!batch) return;
    this.batches.delete(id);
    const { bytes, count } = batch;
    this.sizesInFlight.delete(bytes);
    // A size that lost its spares meanwhile is no longer asked for: let the memory go.
    const list = this.ready.get(bytes);
    if (!list) return;
    for (let k = 0; k < count; k++) list.push(Buffer.from(memory, k * bytes, bytes));
    this.counts.prefaulted += count;
  }

  private helper(): Worker | null {
    if (this.faulter === undefined) {
      this.faulter = null;
      if (!this.options.helper) return null;
      try {
        const { port1, port2 } = new MessageChannel();
        const worker = new Worker(FAULTER_SOURCE, {
          eval: true,
          workerData: { answers: port2 },
          transferList: [port2],
        });
        // Nobody listens on it: spares are read when asked for (receiveSpares), so it holds no event loop.
        this.answers = port1;
        // It must never take a process down (on error, prefaulting stops) nor keep one alive (unref after
        // the listeners, which ref it again).
        worker.on('error', () => {
          this.faulter = null;
        });
        worker.unref();
        this.faulter = worker;
      } catch {
        this.faulter = null;
      }
    }
    return this.faulter;
  }
}

/** The process's one instance: every table shares its spares. */
export const prefaultedMemory = new PrefaultedMemory();
