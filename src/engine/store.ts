import * as path from 'node:path';
import { AssertionFailure, assert, EngramError, invalidArgument, OverloadedError } from '../errors.ts';
import type { FlushPolicy } from '../log/flush-policy.ts';
import { DEFAULT_MEMORY_FLUSH_INTERVAL_MS } from '../log/flush-policy.ts';
import { openLog } from '../log/log.ts';
import { readAheadFor, type TornTail } from '../log/reader.ts';
import type { FlushStats, LogWriter } from '../log/writer.ts';
import { type SnapshotBuilt, snapshotsDir, walDir } from '../snapshot/build.ts';
import { listSnapshots, loadNewestValid, type SnapshotFallback } from '../snapshot/catalog.ts';
import { parseSnapshotName } from '../snapshot/format.ts';
import { type SnapshotPolicy, SnapshotScheduler } from '../snapshot/scheduler.ts';
import type { FileSystem } from '../storage/file-system.ts';
import { NodeFileSystem } from '../storage/node-file-system.ts';
import { type AckPoint, strongest } from './ack-point.ts';
import { DecideContextImpl } from './decide-context.ts';
import {
  type AnyEventDefs,
  type CommandInput,
  CommandRejected,
  type CommandResult,
  type StoreDefinition,
} from './definition.ts';
import { acquireDirLock } from './dir-lock.ts';
import { fingerprintA, fingerprintB } from './fingerprint.ts';
import type { IdempotencyLimits, IdempotencyWindow } from './idempotency.ts';
import { MaterializedState } from './materialized-state.ts';
import { encodeEvent, encodeRecordHeader } from './record.ts';
import { type CompiledCommand, compileDefinition, type Registry } from './registry.ts';
import { type Waiter, WaiterQueue } from './waiters.ts';

export interface StoreOptions {
  /** Data directory; the log lives in `<dir>/wal`. */
  dir: string;
  fs?: FileSystem;
  ackPoint?: AckPoint;
  /** Defaults: `immediate` for `disk`, `interval` of 10 ms for `memory`. */
  flushPolicy?: FlushPolicy;
  segmentBytesMax?: number;
  /**
   * Zero-fill each next log segment in the background so group commits overwrite allocated blocks
   * instead of appending (cheaper fdatasync; default true). Costs writing every log byte twice.
   */
  preallocateSegments?: boolean;
  /** Backpressure: bytes buffered or being flushed beyond which commands are refused as overloaded. */
  pendingBytesMax?: number;
  /** Backpressure: commands waiting for their ack point beyond which commands are refused. */
  pendingCommandsMax?: number;
  idempotency?: Partial<IdempotencyLimits>;
  /** Wall clock for decisions (ms); injectable for tests. */
  clock?: () => number;
  observer?: StoreObserver;
  onRecoveryProgress?: (bytesDone: number, bytesTotal: number) => void;
  /**
   * Automatic snapshots (every T or N log bytes) and log compaction. Without it, `snapshot()` still
   * works on demand, and the log is never compacted automatically.
   */
  snapshots?: SnapshotPolicy;
}

export type CommandOutcome =
  | 'ok'
  | 'duplicate'
  | 'conflict'
  | 'rejected'
  | 'invalid'
  | 'overloaded'
  | 'failed';

/** Hooks for metrics and logs. Called on the event loop; keep them cheap. */
export interface StoreObserver {
  onCommand?(command: string, outcome: CommandOutcome): void;
  /** Time from `execute()` to the ack point, for commands that waited on the disk. */
  onAck?(command: string, latencyMs: number): void;
  onFlush?(stats: FlushStats): void;
  onBackpressure?(reason: string): void;
  onFailure?(error: EngramError): void;
  onSnapshot?(built: SnapshotBuilt, compaction: { deleted: string[]; bytesFreed: number }): void;
  onSnapshotError?(error: EngramError): void;
}

export interface RecoveryReport {
  lastLsn: number;
  /** First LSN the log still holds (earlier ones are covered by the snapshot). */
  firstLsn: number;
  /** The snapshot recovery started from, if any. */
  snapshot: { file: string; lsn: number; bytes: number; loadMs: number; createdAtMs: number } | undefined;
  /** Newer snapshots that failed verification and were skipped, with the reason. */
  snapshotFallbacks: SnapshotFallback[];
  recordsReplayed: number;
  replayMs: number;
  /** Whole recovery: snapshot load + log replay. */
  totalMs: number;
  segments: number;
  tornTails: TornTail[];
  /** The log position the snapshot recorded, where replay started reading (if it could be used). */
  resumedAt?: { segment: string; offset: number };
}

export interface ExecuteOptions {
  /** Strengthens (never weakens) the store's ack point for this command. */
  ack?: AckPoint;
}

export type BatchItemResult<R> = { ok: true; result: R } | { ok: false; error: Error };

/** Receives a batch's outcomes from `executeEach`, item by item, before they are acknowledged. */
export interface BatchSink<R> {
  decided(result: R, index: number): void;
  /** The item was not decided: rejected, a conflict or invalid (the others go on). */
  refused(error: Error, index: number): void;
}

export const DEFAULT_SEGMENT_BYTES_MAX = 64 * 1024 * 1024;
export const DEFAULT_PENDING_BYTES_MAX = 64 * 1024 * 1024;
export const DEFAULT_PENDING_COMMANDS_MAX = 1_000_000;
/** Longest idempotency key accepted, in UTF-16 code units. */
export const IDEMPOTENCY_KEY_LENGTH_MAX = 256;

type Def<S, E extends AnyEventDefs<S>, C, I> = StoreDefinition<S, E, C, I>;

/**
 * An Engram store: state in memory, changed only by commands, each decided against current state into
 * events that are logged and applied. See DESIGN.md §2 for the write path; the one rule is that a
 * response never exposes state that has not reached the configured ack point.
 *
 * Single-threaded by design: decide and apply run on the event loop, in LSN order; only log I/O is
 * asynchronous. Commands are pipelined: a command sees the effects of earlier ones at once, and its own
 * acknowledgement waits until its record (and so every earlier one) reached the ack point.
 */
export class Store<S, E extends AnyEventDefs<S>, C extends Record<string, any>, I = undefined> {
  readonly definition: Def<S, E, C, I>;
  readonly ackPoint: AckPoint;
  readonly dir: string;
  private readonly registry: Registry;
  private m!: MaterializedState<S, I>;
  private writer!: LogWriter;
  private snapshots!: SnapshotScheduler;
  private readonly waiters = new WaiterQueue();
  private readonly ctx: DecideContextImpl<I>;
  private readonly clock: () => number;
  private readonly observer: StoreObserver;
  private readonly pendingBytesMax: number;
  private readonly pendingCommandsMax: number;
  private lastFlushMs = 1;
  private failure: EngramError | undefined;
  private closing = false;
  private releaseLock: () => Promise<void> = async () => {};
  recovery!: RecoveryReport;

  private constructor(definition: Def<S, E, C, I>, options: StoreOptions) {
    this.definition = definition;
    this.registry = compileDefinition(definition as unknown as Parameters<typeof compileDefinition>[0]);
    this.ackPoint = options.ackPoint ?? 'disk';
    this.dir = options.dir;
    this.ctx = new DecideContextImpl<I>(undefined as I);
    this.clock = options.clock ?? Date.now;
    this.observer = options.observer ?? {};
    this.pendingBytesMax = options.pendingBytesMax ?? DEFAULT_PENDING_BYTES_MAX;
    this.pendingCommandsMax = options.pendingCommandsMax ?? DEFAULT_PENDING_COMMANDS_MAX;
  }

  /** Recovers the store from `options.dir` (creating it if empty) and opens it for commands. */
  static async open<S, E extends AnyEventDefs<S>, C extends Record<string, any>, I = undefined>(
    definition: Def<S, E, C, I>,
    options: StoreOptions,
  ): Promise<Store<S, E, C, I>> {
    const store = new Store(definition, options);
    const fs = options.fs ?? new NodeFileSystem();
    const release = await acquireDirLock(fs, options.dir);
    try {
      await store.recover(options, fs);
    } catch (error) {
      await release();
      throw error;
    }
    store.releaseLock = release;
    return store;
  }

  private async recover(options: StoreOptions, fs: FileSystem): Promise<void> {
    const startMs = performance.now();
    const limits = options.idempotency ?? {};
    // The log segment replay starts with is read while the newest snapshot loads.
    const newest = (await listSnapshots(fs, snapshotsDir(options.dir)))[0];
    const readAhead = await readAheadFor(fs, walDir(options.dir), newest?.lsn ?? 0);
    const { loaded, fallbacks } = await this.loadSnapshot(fs, options.dir, limits);
    const loadMs = performance.now() - startMs;
    this.m =
      loaded?.state ?? new MaterializedState<S, I>(this.definition as never, this.registry, { limits });
    this.ctx.indexes = this.m.indexes;
    const snapshotLsn = loaded?.header.lsn ?? 0;
    const replayStartMs = performance.now();
    let replayed = 0;
    const opened = await openLog({
      fs,
      dir: walDir(options.dir),
      policy: options.flushPolicy ?? defaultPolicy(this.ackPoint),
      segmentBytesMax: options.segmentBytesMax ?? DEFAULT_SEGMENT_BYTES_MAX,
      preallocate: options.preallocateSegments,
      afterLsn: snapshotLsn,
      readAhead,
      resumeAt:
        loaded?.header.logPosition !== undefined
          ? { ...loaded.header.logPosition, lsn: snapshotLsn, chain: loaded.header.chain }
          : undefined,
      onRecord: (record) => {
        if (record.lsn !== this.m.lsnApplied + 1)
          throw this.historyGap(options.dir, snapshotLsn, record.lsn, fallbacks);
        this.m.replay(record);
        replayed++;
      },
      onProgress: options.onRecoveryProgress,
      emptyLogStart: loaded ? { lastLsn: snapshotLsn, chain: loaded.header.chain } : undefined,
      checkScan: (scan) => {
        if (scan.segments.length > 0 && scan.firstLsn > snapshotLsn + 1) {
          throw this.historyGap(options.dir, snapshotLsn, scan.firstLsn, fallbacks);
        }
        // Snapshots existed but none verifies: the log must hold all they covered, from LSN 1.
        const covered = Math.max(0, ...fallbacks.map((f) => parseSnapshotName(path.basename(f.file)) ?? 0));
        if (
          !loaded &&
          covered > 0 &&
          (scan.segments.length === 0 || scan.firstLsn > 1 || scan.lastLsn < covered)
        ) {
          throw this.historyGap(
            options.dir,
            0,
            scan.segments.length > 0 ? scan.firstLsn : Number.NaN,
            fallbacks,
          );
        }
      },
      writer: this.writerEvents(),
    });
    this.m.endReplay();
    this.writer = opened.writer;
    const { scan } = opened;
    if (this.m.lsnApplied !== this.writer.nextLsn - 1) {
      await this.writer.close();
      throw new EngramError(
        'log_gap',
        `snapshot at LSN ${snapshotLsn} is ahead of the log, which ends at LSN ${this.writer.nextLsn - 1}: the log lost ` +
          'records the snapshot covers. Restore the log from a replica or backup, or move the snapshot aside to start from an older one.',
        { snapshotLsn, logLastLsn: this.writer.nextLsn - 1 },
      );
    }
    const replayMs = performance.now() - replayStartMs;
    this.recovery = {
      lastLsn: this.m.lsnApplied,
      firstLsn: scan.segments.length > 0 ? scan.firstLsn : snapshotLsn + 1,
      snapshot: loaded
        ? {
            file: loaded.file,
            lsn: snapshotLsn,
            bytes: loaded.fileBytes,
            loadMs,
            createdAtMs: loaded.header.createdAtMs,
          }
        : undefined,
      snapshotFallbacks: fallbacks,
      recordsReplayed: replayed,
      replayMs,
      totalMs: performance.now() - startMs,
      segments: scan.segments.length,
      tornTails: opened.truncated,
      resumedAt: scan.resumedAt,
    };
    this.snapshots = new SnapshotScheduler(
      {
        fs,
        dataDir: options.dir,
        definition: this.definition as never,
        idempotency: limits,
        lsnDurable: () => this.writer.lsnDurable,
        onSnapshot: (built, compaction) => this.observer.onSnapshot?.(built, compaction),
        onSnapshotError: (error) => this.observer.onSnapshotError?.(error),
      },
      options.snapshots ?? {},
      loaded ? { lsn: snapshotLsn, createdAtMs: loaded.header.createdAtMs } : undefined,
      options.snapshots !== undefined,
    );
  }

  /**
   * The newest snapshot that loads, as state plus its file's facts. Its payload (possibly gigabytes) is
   * reachable afterwards only through what the state itself keeps of it (a state codec may keep views of
   * its bytes, see decision 005), not through this call's scope.
   */
  private async loadSnapshot(fs: FileSystem, dir: string, limits: Partial<IdempotencyLimits>) {
    const { loaded, fallbacks } = await loadNewestValid(fs, snapshotsDir(dir), (snapshot) =>
      MaterializedState.fromImage<S, I>(
        this.definition as never,
        this.registry,
        snapshot.payload,
        snapshot.header.lsn,
        {
          limits,
        },
      ),
    );
    if (!loaded) return { loaded: undefined, fallbacks };
    const { file, header, fileBytes } = loaded.snapshot;
    return { loaded: { state: loaded.value, file, header, fileBytes }, fallbacks };
  }

  /**
   * The writer's callbacks, made outside `recover`: a closure keeps its whole scope alive, and recover's
   * scope holds recovery-time data the store must not keep for its lifetime.
   */
  private writerEvents() {
    return {
      onDurable: (lsn: number) => this.onDurable(lsn),
      onFailure: (error: EngramError) => this.onFailure(error),
      onFlush: (stats: FlushStats) => {
        this.lastFlushMs = stats.durationMs;
        this.snapshots?.onLogBytes(stats.bytes);
        this.observer.onFlush?.(stats);
      },
    };
  }

  /** The refusal to start on partial history: records between the snapshot and the log are missing. */
  private historyGap(
    dir: string,
    snapshotLsn: number,
    firstLsn: number,
    fallbacks: SnapshotFallback[],
  ): EngramError {
    return new EngramError(
      'log_gap',
      `cannot recover '${this.definition.name}' from ${dir}: ` +
        (Number.isNaN(firstLsn) ? 'the log holds no records, ' : `the log continues at LSN ${firstLsn}, `) +
        'but ' +
        (snapshotLsn > 0
          ? `the newest usable snapshot is at LSN ${snapshotLsn}`
          : 'no usable snapshot exists') +
        (Number.isNaN(firstLsn)
          ? ', so history is missing. '
          : `, so records ${snapshotLsn + 1}..${firstLsn - 1} are missing. `) +
        (fallbacks.length > 0
          ? `Skipped snapshots: ${fallbacks.map((f) => `${f.file} (${f.reason})`).join('; ')}. `
          : '') +
        'Restore the missing snapshot or log segments from a backup or a replica; Engram will not start on partial history.',
      { firstLsn, snapshotLsn },
    );
  }

  // ---- writes ------------------------------------------------------------------------------------------

  /**
   * Decides, records and applies one command; resolves with its result once the record reached the ack
   * point. A retry with the same idempotency key resolves with the recorded result; the same key with
   * different content rejects with `idempotency_conflict`. Rejects with `overloaded` (retry later) when
   * too much is waiting for the disk, and with `storage_io` after a write-path failure.
   */
  execute<K extends keyof C & string>(
    name: K,
    command: CommandInput<C[K]>,
    options?: ExecuteOptions,
  ): Promise<CommandResult<C[K]>> {
    const startMs = this.observer.onAck ? performance.now() : 0;
    let lsn: number;
    let value: unknown;
    try {
      const compiled = this.admit(name);
      lsn = this.decideAndRecord(compiled, command);
      value = this.lastValue;
    } catch (error) {
      this.countFailure(name, error);
      return Promise.reject(error);
    }
    return this.acknowledge(lsn, value, name, options?.ack, startMs) as Promise<CommandResult<C[K]>>;
  }

  /**
   * Executes many commands of one type under a single acknowledgement (one waiter, one promise): the
   * cheapest way to push a batch through the log. Each item gets its own result or error; an item's error
   * (rejected, conflict, invalid) does not affect the others.
   */
  executeMany<K extends keyof C & string>(
    name: K,
    commands: readonly CommandInput<C[K]>[],
    options?: ExecuteOptions,
  ): Promise<BatchItemResult<CommandResult<C[K]>>[]> {
    const results: BatchItemResult<CommandResult<C[K]>>[] = new Array(commands.length);
    const sink: BatchSink<CommandResult<C[K]>> = {
      decided: (result, i) => {
        results[i] = { ok: true, result };
      },
      refused: (error, i) => {
        results[i] = { ok: false, error };
      },
    };
    return this.executeEach(name, commands, sink, options).then(() => results);
  }

  /**
   * `executeMany` for a caller that turns each outcome into something smaller at once, such as the bytes of
   * its answer: item i's outcome goes to `sink` as soon as it is decided, in order, and the promise resolves
   * once the whole batch reached the ack point. It rejects, never throws: `overloaded` or a closed store before
   * anything is decided, `storage_io` when the batch's group cannot be made durable, and a broken invariant or
   * a sink that threw; after a rejection nothing the sink saw may be shown to anyone. Nothing is kept per item meanwhile, so a batch of thousands waits for the
   * disk as one buffer instead of as thousands of live objects that every young-generation GC copies.
   */
  executeEach<K extends keyof C & string>(
    name: K,
    commands: readonly CommandInput<C[K]>[],
    sink: BatchSink<CommandResult<C[K]>>,
    options?: ExecuteOptions,
  ): Promise<void> {
    const startMs = this.observer.onAck ? performance.now() : 0;
    let compiled: CompiledCommand;
    try {
      compiled = this.admit(name);
    } catch (error) {
      this.countFailure(name, error);
      return Promise.reject(error);
    }
    let maxLsn = 0;
    try {
      for (let i = 0; i < commands.length; i++) {
        let lsn: number;
        try {
          lsn = this.decideAndRecord(compiled, commands[i]);
        } catch (error) {
          if (error instanceof AssertionFailure || this.failure) throw error;
          this.countFailure(name, error);
          sink.refused(error as Error, i);
          continue;
        }
        if (lsn > maxLsn) maxLsn = lsn;
        sink.decided(this.lastValue as CommandResult<C[K]>, i);
      }
    } catch (error) {
      // A broken invariant, a write path that failed, or a sink that threw: the batch fails as a whole (the
      // items recorded before it stay recorded, as a retry will find), always as a rejection, never a throw.
      return Promise.reject(error);
    }
    return this.acknowledge(maxLsn, undefined, name, options?.ack, startMs) as Promise<void>;
  }

  /** Every command recorded so far is durable when this resolves. */
  sync(): Promise<void> {
    return this.writer.sync();
  }

  private lastValue: unknown;

  private admit(name: string): CompiledCommand {
    if (this.failure) throw this.failure;
    if (this.closing) throw new EngramError('store_closed', `store '${this.definition.name}' is closed`);
    const compiled = this.registry.commandsByName.get(name);
    if (!compiled) {
      throw invalidArgument(
        `unknown command '${name}'; this store defines: ${[...this.registry.commandsByName.keys()].join(', ')}`,
      );
    }
    const pendingBytes = this.writer.pendingBytes;
    if (pendingBytes > this.pendingBytesMax || this.waiters.size > this.pendingCommandsMax) {
      this.observer.onBackpressure?.(pendingBytes > this.pendingBytesMax ? 'bytes' : 'commands');
      const retryAfterMs = Math.max(1, Math.ceil(this.lastFlushMs * 2));
      throw new OverloadedError(
        `store '${this.definition.name}' is overloaded: ${pendingBytes} bytes and ${this.waiters.size} commands are ` +
          `waiting for the disk (limits ${this.pendingBytesMax} bytes, ${this.pendingCommandsMax} commands). ` +
          `Retry after ${retryAfterMs} ms.`,
        retryAfterMs,
        { pendingBytes, pendingCommands: this.waiters.size },
      );
    }
    return compiled;
  }

  /** Returns the LSN whose ack point the caller must wait for, and leaves the result in `lastValue`. */
  private decideAndRecord(compiled: CompiledCommand, command: unknown): number {
    const def = compiled.def;
    const key = def.key ? def.key(command) : undefined;
    let fpA = 0;
    let fpB = 0;
    if (key !== undefined) {
      if (typeof key !== 'string' || key.length === 0 || key.length > IDEMPOTENCY_KEY_LENGTH_MAX) {
        throw invalidArgument(
          `command '${compiled.name}': idempotency key must be a string of 1..${IDEMPOTENCY_KEY_LENGTH_MAX} characters`,
        );
      }
      const text = def.fingerprint ? def.fingerprint(command) : JSON.stringify(command);
      fpA = fingerprintA(text);
      fpB = fingerprintB(text);
      const entry = this.m.idempotency.get(key);
      if (entry) {
        if (entry.commandId !== compiled.id || entry.fingerprintA !== fpA || entry.fingerprintB !== fpB) {
          throw new EngramError(
            'idempotency_conflict',
            `idempotency key '${key}' was already used at LSN ${entry.lsn} for a different request; ` +
              'use a new key for a new request, or resend exactly the original one',
            { key, lsn: entry.lsn },
          );
        }
        this.observer.onCommand?.(compiled.name, 'duplicate');
        this.lastValue = entry.result;
        return entry.lsn;
      }
    }
    const writer = this.writer;
    const lsn = writer.nextLsn;
    const nowMs = Math.max(this.clock(), this.m.lastNowMs);
    const seed = (Math.random() * 0x1_0000_0000) >>> 0;
    this.ctx.reset(lsn, nowMs, seed);
    const decision = def.decide(this.m.state, command, this.ctx);
    const events = decision.events;
    if (decision.unrecorded) {
      if (events.length !== 0) {
        throw new AssertionFailure(`command '${compiled.name}' returned events in an unrecorded decision`);
      }
      this.observer.onCommand?.(compiled.name, 'duplicate');
      this.lastValue = decision.result;
      return this.m.lsnApplied;
    }
    const w = writer.beginRecord(compiled.id, compiled.version, 0);
    try {
      encodeRecordHeader(w, nowMs, seed, fpA, fpB, key ?? '');
      w.u32(events.length);
      for (let i = 0; i < events.length; i++) {
        const event = this.registry.eventsByName.get(events[i].type);
        if (!event)
          throw invalidArgument(`command '${compiled.name}' emitted unknown event type '${events[i].type}'`);
        encodeEvent(w, event, events[i].data);
      }
      // Only a keyed command's result is ever read back (to answer a retry after a restart).
      if (key !== undefined) compiled.resultCodec.encode(decision.result, w);
    } catch (error) {
      writer.abortRecord();
      throw error;
    }
    const recorded = writer.endRecord();
    assert(recorded === lsn, 'record LSN differs from the one decide was given');
    try {
      this.m.applyEvents(events, lsn, nowMs);
    } catch (error) {
      // A failing apply leaves state half-changed: a programming error. Stop the store rather than serve it.
      this.onFailure(
        new EngramError(
          'store_failed',
          `apply failed at LSN ${lsn}: ${(error as Error).message}`,
          { lsn },
          error,
        ),
      );
      throw error;
    }
    if (key !== undefined) {
      this.m.idempotency.record(key, {
        lsn,
        nowMs,
        fingerprintA: fpA,
        fingerprintB: fpB,
        commandId: compiled.id,
        result: decision.result,
      });
    }
    this.observer.onCommand?.(compiled.name, 'ok');
    this.lastValue = decision.result;
    return lsn;
  }

  private acknowledge(
    lsn: number,
    value: unknown,
    commandName: string | undefined,
    commandAck: AckPoint | undefined,
    startMs: number,
  ): Promise<unknown> {
    const ack = strongest(this.ackPoint, commandAck);
    if (ack === 'memory' || lsn <= this.writer.lsnDurable) return Promise.resolve(value);
    if (this.ackPoint === 'memory') this.writer.flushSoon();
    return new Promise((resolve, reject) => {
      this.waiters.push({ lsn, value, resolve, reject, startMs, commandName });
    });
  }

  private countFailure(name: string, error: unknown): void {
    const observer = this.observer.onCommand;
    if (!observer) return;
    if (error instanceof CommandRejected) observer(name, 'rejected');
    else if (error instanceof OverloadedError) observer(name, 'overloaded');
    else if (error instanceof EngramError && error.code === 'idempotency_conflict')
      observer(name, 'conflict');
    else if (error instanceof EngramError && error.code === 'invalid_argument') observer(name, 'invalid');
    else observer(name, 'failed');
  }

  // ---- reads -------------------------------------------------------------------------------------------

  /**
   * Runs `fn` on the current state now, and resolves with its value once everything it observed reached
   * the store's ack point: a read never exposes state a crash could take back.
   */
  read<T>(fn: (state: Readonly<S>, indexes: I) => T): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const value = fn(this.m.state, this.m.indexes);
    const lsn = this.m.lsnApplied;
    if (this.ackPoint === 'memory' || lsn <= this.writer.lsnDurable) return Promise.resolve(value);
    return new Promise((resolve, reject) => {
      this.waiters.push({ lsn, value, resolve, reject, startMs: 0, commandName: undefined });
    });
  }

  /** Reads the current state immediately, including changes not yet at the ack point. */
  readStale<T>(fn: (state: Readonly<S>, indexes: I) => T): T {
    return fn(this.m.state, this.m.indexes);
  }

  get lsnApplied(): number {
    return this.m.lsnApplied;
  }

  get idempotency(): IdempotencyWindow {
    return this.m.idempotency;
  }

  get lsnDurable(): number {
    return this.writer.lsnDurable;
  }

  /** Bytes and commands waiting for the disk, for metrics and admission control upstream. */
  get pending(): { bytes: number; commands: number } {
    return { bytes: this.writer.pendingBytes, commands: this.waiters.size };
  }

  get failed(): EngramError | undefined {
    return this.failure;
  }

  /** Canonical hash of the state and the idempotency window (indexes are derived, so excluded). */
  stateHash(): string {
    return this.m.stateHash();
  }

  // ---- snapshots ---------------------------------------------------------------------------------------

  /** Takes a snapshot at the current durable LSN now (or joins the one in progress), then compacts the log. */
  snapshot(): Promise<SnapshotBuilt> {
    if (this.failure) return Promise.reject(this.failure);
    return this.snapshots.snapshotNow();
  }

  /**
   * Settles once a resident snapshot worker (`SnapshotPolicy.worker.resident`) has replayed the log up to
   * the current durable LSN; at once without one. After a start the worker first loads the newest
   * snapshot and replays the log since, so the first snapshot after a start waits for that too.
   */
  snapshotWorkerCaughtUp(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return this.snapshots.followLog();
  }

  /** The last snapshot taken or loaded: LSN and wall-clock time (0 when there is none). */
  get lastSnapshot(): { lsn: number; atMs: number; inProgress: boolean } {
    return {
      lsn: this.snapshots.lastSnapshotLsn,
      atMs: this.snapshots.lastSnapshotLsn > 0 ? this.snapshots.lastSnapshotAtMs : 0,
      inProgress: this.snapshots.inProgress,
    };
  }

  // ---- durability events -------------------------------------------------------------------------------

  private onDurable(lsn: number): void {
    const onAck = this.observer.onAck;
    const nowMs = onAck ? performance.now() : 0;
    this.waiters.resolveUpTo(lsn, (waiter: Waiter) => {
      if (onAck && waiter.commandName !== undefined) onAck(waiter.commandName, nowMs - waiter.startMs);
      waiter.resolve(waiter.value);
    });
  }

  private onFailure(error: EngramError): void {
    if (this.failure) return;
    this.failure = error;
    this.waiters.drain((waiter) => waiter.reject(error));
    this.observer.onFailure?.(error);
  }

  // ---- lifecycle ---------------------------------------------------------------------------------------

  /** Stops accepting commands, makes everything recorded durable, resolves the waiters and closes the log. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    try {
      await this.snapshots.close();
      await this.writer.close();
    } finally {
      await this.releaseLock();
    }
    if (this.failure) throw this.failure;
  }
}

function defaultPolicy(ackPoint: AckPoint): FlushPolicy {
  return ackPoint === 'memory'
    ? { kind: 'interval', intervalMs: DEFAULT_MEMORY_FLUSH_INTERVAL_MS }
    : { kind: 'immediate' };
}
