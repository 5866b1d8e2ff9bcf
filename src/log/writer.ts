import * as path from 'node:path';
import { assert, EngramError } from '../errors.ts';
import type { FileHandle, FileSystem } from '../storage/file-system.ts';
import { ioErrorCode } from '../storage/file-system.ts';
import { BinWriter } from '../util/bin.ts';
import type { FlushPolicy } from './flush-policy.ts';
import {
  COMMIT_END_MARK,
  COMMIT_MARKER_TYPE,
  COMMIT_PAYLOAD_BYTES,
  FRAME_HEADER_BYTES,
  LOG_FORMAT_VERSION,
  segmentName,
} from './format.ts';
import { encodeSegmentHeader, sealFrame, writeFrameHeader } from './frame.ts';
import { sealGroup } from './group-seal.ts';
import { SegmentPreallocator } from './preallocation.ts';

export interface LogWriterOptions {
  fs: FileSystem;
  dir: string;
  policy: FlushPolicy;
  /** Roll to a new segment once the current one reaches this size. */
  segmentBytesMax: number;
  /** Where recovery left the log: the segment to append to (undefined: create the first one). */
  tail: { segmentName: string; baseLsn: number; offset: number } | undefined;
  lastLsn: number;
  chain: number;
  epoch: number;
  /** Called after every successful group commit with the new durable LSN. */
  onDurable: (lsnDurable: number) => void;
  /** Called once when the write path fails; after it, every append throws. */
  onFailure: (error: EngramError) => void;
  /** Called after every group commit, for metrics. */
  onFlush?: (stats: FlushStats) => void;
  /** Use O_DSYNC writes where the file system supports them (default true). */
  syncWrites?: boolean;
  /** Called after a new segment was created (for compaction and metrics). */
  onSegmentRolled?: (segment: { name: string; baseLsn: number }) => void;
  /**
   * Prepare each next segment as a zero-filled file in the background (default true): group commits then
   * overwrite allocated blocks instead of appending, which makes their fdatasync cheaper (see
   * SegmentPreallocator).
   */
  preallocate?: boolean;
}

export interface FlushStats {
  records: number;
  bytes: number;
  durationMs: number;
  syncMs: number;
}

const INITIAL_BUFFER_BYTES = 1024 * 1024;
const COMMIT_MARKER_BYTES = FRAME_HEADER_BYTES + COMMIT_PAYLOAD_BYTES;
/**
 * With no flush in flight, a group this big is written at once rather than at the end of the event-loop
 * turn. Also the `interval` policy's bytes threshold: a memory-acked burst does not wait for the timer.
 */
const EAGER_FLUSH_BYTES = 64 * 1024;

/**
 * The group-commit writer. Records are encoded straight into an in-memory buffer (`beginRecord` /
 * `endRecord`); a flush writes everything buffered plus one commit marker with a single write and one
 * fdatasync, then reports the new durable LSN. One flush is in flight at a time; while it runs, new records
 * fill the other buffer, so under load each fsync covers everything that arrived during the previous one.
 *
 * Any I/O error is fatal to the writer (fsyncgate: the kernel may have dropped the dirty pages, so retrying
 * the fsync could "succeed" without the data): it stops, and `onFailure` reports it exactly once.
 */
export class LogWriter {
  private active = new BinWriter(INITIAL_BUFFER_BYTES);
  private spare = new BinWriter(INITIAL_BUFFER_BYTES);
  private activeRecords = 0;
  private activeFirstLsn = 0;
  private activeSinceMs = 0;
  private frameStart = -1;
  private frameType = 0;
  private frameVersion = 0;
  private frameFlags = 0;
  private chain: number;
  private handle: FileHandle | undefined;
  private segment: { name: string; baseLsn: number };
  private segmentOffset: number;
  /** Whether the current segment's remaining space was zero-filled ahead (see SegmentPreallocator). */
  private segmentPreallocated = false;
  private flushing = false;
  private flushingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private urgent = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  failure: EngramError | undefined;
  /** The LSN the next record gets. */
  nextLsn: number;
  lsnDurable: number;
  flushCount = 0;

  /**
   * With O_DSYNC a group costs one write that returns when durable: one thread-pool round trip instead of
   * two (write, then fdatasync), each of which waits for the event loop to notice its completion.
   */
  private readonly syncWrites: boolean;
  private readonly preallocator: SegmentPreallocator | undefined;

  private constructor(private readonly options: LogWriterOptions) {
    this.syncWrites = options.fs.supportsSyncWrites === true && options.syncWrites !== false;
    this.preallocator =
      options.preallocate === false
        ? undefined
        : new SegmentPreallocator(options.fs, options.dir, options.segmentBytesMax, this.syncWrites);
    this.chain = options.chain;
    this.nextLsn = options.lastLsn + 1;
    this.lsnDurable = options.lastLsn;
    this.segment = options.tail
      ? { name: options.tail.segmentName, baseLsn: options.tail.baseLsn }
      : { name: segmentName(this.nextLsn), baseLsn: this.nextLsn };
    this.segmentOffset = options.tail?.offset ?? 0;
  }

  static async open(options: LogWriterOptions): Promise<LogWriter> {
    const writer = new LogWriter(options);
    await options.fs.mkdirp(options.dir);
    if (options.tail) {
      writer.handle = await options.fs.open(path.join(options.dir, options.tail.segmentName), 'readwrite', {
        syncWrites: writer.syncWrites,
      });
      // Free space past the last group means the segment was preallocated (recovery leaves it as it is).
      writer.segmentPreallocated = (await writer.handle.size()) > options.tail.offset;
    } else {
      await writer.createSegment(writer.nextLsn);
    }
    writer.preallocator?.prepare();
    return writer;
  }

  /** Bytes buffered or in flight: what backpressure bounds. */
  get pendingBytes(): number {
    return this.active.length + this.flushingBytes;
  }

  get segmentName(): string {
    return this.segment.name;
  }

  /** Starts a record: returns the buffer to encode the payload into. Must be followed by endRecord. */
  beginRecord(type: number, version: number, flags: number): BinWriter {
    if (this.failure) throw this.failure;
    assert(!this.closed, 'beginRecord after close');
    assert(this.frameStart < 0, 'beginRecord while another record is open');
    assert(type !== COMMIT_MARKER_TYPE, 'record type collides with the commit marker');
    const w = this.active;
    this.frameStart = w.pos;
    this.frameType = type;
    this.frameVersion = version;
    this.frameFlags = flags;
    w.ensure(FRAME_HEADER_BYTES);
    w.pos += FRAME_HEADER_BYTES;
    return w;
  }

  /** Abandons an open record (its encoding threw): the LSN is not consumed. */
  abortRecord(): void {
    if (this.frameStart < 0) return;
    this.active.pos = this.frameStart;
    this.frameStart = -1;
  }

  /** Seals the open record and returns its LSN. The record is durable once `lsnDurable >= lsn`. */
  endRecord(): number {
    assert(this.frameStart >= 0, 'endRecord without beginRecord');
    const w = this.active;
    const lsn = this.nextLsn++;
    // Its CRC is computed with the rest of its group's, when the group is written (appendCommitMarker).
    writeFrameHeader(w.buf, this.frameStart, w.pos, lsn, this.frameType, this.frameVersion, this.frameFlags);
    w.padTo(8);
    this.frameStart = -1;
    if (this.activeRecords === 0) {
      this.activeFirstLsn = lsn;
      this.activeSinceMs = performance.now();
    }
    this.activeRecords++;
    this.schedule();
    return lsn;
  }

  /** Asks for a flush as soon as possible, whatever the policy (a stronger per-command ack, or close). */
  flushSoon(): void {
    this.urgent = true;
    this.schedule();
  }

  /** Resolves once the next segment's preallocation has settled: true if a zero-filled spare is ready. */
  spareReady(): Promise<boolean> {
    return this.preallocator?.settled() ?? Promise.resolve(false);
  }

  /** Resolves when everything appended so far is durable (or rejects with the write path's failure). */
  async sync(): Promise<void> {
    if (this.failure) throw this.failure;
    const target = this.nextLsn - 1;
    while (this.lsnDurable < target) {
      if (this.failure) throw this.failure;
      this.flushSoon();
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.failure) await this.sync();
      // A flush that made everything durable may still be rolling to a new segment: wait for it, so no
      // file is created after close() and a failure of that roll is reported, not swallowed.
      while (this.flushing && !this.failure)
        await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    } finally {
      this.closed = true;
      this.clearTimers();
      const handle = this.handle;
      this.handle = undefined;
      await handle?.close().catch(() => undefined);
      await this.preallocator?.close();
    }
  }

  private schedule(): void {
    if (this.flushing || this.activeRecords === 0 || this.failure) return;
    const policy = this.options.policy;
    if (this.active.length >= EAGER_FLUSH_BYTES && policy.kind !== 'batch') {
      // Start the write now, mid-burst: the disk works on this group while the event loop keeps deciding
      // the rest of the burst, instead of deciding everything first and then idling during the fsync.
      this.startFlush();
      return;
    }
    if (this.urgent || policy.kind === 'immediate') {
      this.clearTimer();
      if (!this.immediate) this.immediate = setImmediate(() => this.startFlush());
      return;
    }
    if (policy.kind === 'batch' && this.active.length >= policy.maxBytes) {
      this.clearTimer();
      if (!this.immediate) this.immediate = setImmediate(() => this.startFlush());
      return;
    }
    if (this.timer) return;
    const waitMs = policy.kind === 'batch' ? policy.maxDelayMs : policy.intervalMs;
    const elapsedMs = performance.now() - this.activeSinceMs;
    this.timer = setTimeout(() => this.startFlush(), Math.max(0, waitMs - elapsedMs));
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private clearTimers(): void {
    this.clearTimer();
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
  }

  private startFlush(): void {
    this.immediate = undefined;
    this.clearTimer();
    if (this.flushing || this.activeRecords === 0 || this.failure) return;
    assert(this.frameStart < 0, 'flush with an open record');
    this.urgent = false;
    const group = this.active;
    const records = this.activeRecords;
    const firstLsn = this.activeFirstLsn;
    const lastLsn = this.nextLsn - 1;
    this.active = this.spare;
    this.active.reset();
    this.activeRecords = 0;
    this.chain = this.appendCommitMarker(group, firstLsn, lastLsn, records);
    this.flushing = true;
    this.flushingBytes = group.length;
    void this.flush(group, records, lastLsn);
  }

  /** Seals the group's frames (their CRCs, the chain, the group CRC) and appends the commit marker. */
  private appendCommitMarker(group: BinWriter, firstLsn: number, lastLsn: number, records: number): number {
    // The seal checks the structure too (lengths, consecutive LSNs) before the bytes go to disk.
    const { frames, chain, groupCrc } = sealGroup(group.buf, group.pos, firstLsn, this.chain);
    assert(frames === records, 'the group holds a different number of frames than were appended');
    const start = group.pos;
    group.ensure(COMMIT_MARKER_BYTES);
    group.pos += FRAME_HEADER_BYTES;
    group.u64(firstLsn);
    group.u32(records);
    group.u32(chain);
    group.u32(groupCrc);
    group.u32(COMMIT_END_MARK);
    sealFrame(group.buf, start, group.pos, lastLsn, COMMIT_MARKER_TYPE, 1, 0);
    group.padTo(8);
    return chain;
  }

  private async flush(group: BinWriter, records: number, lastLsn: number): Promise<void> {
    const startMs = performance.now();
    let syncMs = 0;
    try {
      const handle = this.handle;
      assert(handle, 'flush without an open segment');
      const syncStartMs = performance.now();
      await handle.write(group.buf, 0, group.length, this.segmentOffset);
      if (!this.syncWrites) await handle.datasync();
      syncMs = performance.now() - syncStartMs;
    } catch (error) {
      this.fail(error, 'writing or syncing a log group');
      return;
    }
    this.segmentOffset += group.length;
    const bytes = group.length;
    this.spare = group;
    this.flushingBytes = 0;
    this.flushCount++;
    assert(lastLsn > this.lsnDurable, 'durable LSN must increase');
    this.lsnDurable = lastLsn;
    this.options.onFlush?.({ records, bytes, durationMs: performance.now() - startMs, syncMs });
    this.options.onDurable(lastLsn);
    if (
      this.segmentOffset >= this.options.segmentBytesMax ||
      (!this.segmentPreallocated && this.preallocator?.isReady === true)
    ) {
      // `flushing` stays set while rolling, so no group is written to a segment that is being replaced.
      // A segment that was not preallocated (a new log's first, or one recovery truncated) is left as soon
      // as a preallocated one is ready: its appends cost more on every group commit.
      try {
        await this.rollSegment();
      } catch (error) {
        this.fail(error, 'creating a new log segment');
        return;
      }
    }
    this.flushing = false;
    this.wakeIdleWaiters();
    this.schedule();
  }

  private async rollSegment(): Promise<void> {
    const old = this.handle;
    this.handle = undefined;
    await old?.close();
    // Not nextLsn: records decided during the flush are buffered with LSNs from lsnDurable + 1, and they
    // are the first ones this segment will hold.
    await this.createSegment(this.lsnDurable + 1);
  }

  /**
   * Creates the segment starting at `baseLsn`: its header is durable and its name is in the directory
   * before any record is written to it. From the prepared spare when one is ready (header written under
   * the spare's name, then renamed: a crash leaves either no segment or one with a valid header), else as
   * a new, empty file.
   */
  private async createSegment(baseLsn: number): Promise<void> {
    const { fs, dir, epoch } = this.options;
    const name = segmentName(baseLsn);
    const file = path.join(dir, name);
    const header = encodeSegmentHeader({
      formatVersion: LOG_FORMAT_VERSION,
      epoch,
      baseLsn,
      chain: this.chain,
    });
    const spare = this.preallocator?.take();
    let handle: FileHandle;
    if (spare && this.preallocator) {
      try {
        await spare.write(header, 0, header.length, 0);
        await spare.datasync();
      } finally {
        await spare.close();
      }
      // rename replaces silently, and a segment's name is taken only once: no file may hold it yet.
      assert(!(await fs.exists(file)), 'a segment with this base LSN already exists');
      await fs.rename(this.preallocator.file, file);
      await fs.syncDir(dir);
      handle = await fs.open(file, 'readwrite', { syncWrites: this.syncWrites });
      this.segmentPreallocated = true;
    } else {
      handle = await fs.open(file, 'create', { syncWrites: this.syncWrites });
      await handle.write(header, 0, header.length, 0);
      await handle.datasync();
      await fs.syncDir(dir);
      this.segmentPreallocated = false;
    }
    this.handle = handle;
    this.segment = { name, baseLsn };
    this.segmentOffset = header.length;
    this.options.onSegmentRolled?.(this.segment);
    this.preallocator?.prepare();
  }

  private fail(error: unknown, what: string): void {
    if (this.failure) return;
    const code = ioErrorCode(error) ?? 'unknown';
    this.failure = new EngramError(
      'storage_io',
      `log write path failed while ${what} (${code}: ${(error as Error)?.message ?? error}). Writes are stopped and ` +
        'every pending command failed; nothing after LSN ' +
        `${this.lsnDurable} is durable. Fix the disk (space, hardware) and restart: recovery replays the log.`,
      { ioCode: code, lsnDurable: this.lsnDurable, segment: this.segment.name },
      error,
    );
    this.flushing = false;
    this.clearTimers();
    void this.preallocator?.close();
    this.options.onFailure(this.failure);
    this.wakeIdleWaiters();
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    if (waiters.length === 0) return;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
