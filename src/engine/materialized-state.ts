import { AssertionFailure } from '../errors.ts';
import type { LogRecord } from '../log/reader.ts';
import { plainDataCodec } from '../snapshot/plain-data-codec.ts';
import { BinReader, BinWriter, PieceWriter } from '../util/bin.ts';
import type { Pace } from '../util/pace.ts';
import type { AnyEventDefs, ApplyMeta, StoreDefinition } from './definition.ts';
import { DEFAULT_IDEMPOTENCY_LIMITS, type IdempotencyLimits, IdempotencyWindow } from './idempotency.ts';
import { RecordReader } from './record.ts';
import type { CompiledEvent, Registry } from './registry.ts';
import { hashState } from './state-hash.ts';

type AnyDefinition = StoreDefinition<any, AnyEventDefs<any>, any, any>;

export interface MaterializeOptions<S> {
  limits?: Partial<IdempotencyLimits>;
  /** The state to start from (default: the definition's initial state). */
  initialState?: S;
  /**
   * False for a copy nobody reads through (a snapshot builder, an inspection): indexes are derived and
   * never written to a snapshot, so building and maintaining them would only cost memory and time.
   * `indexes` is then undefined. Default true.
   */
  maintainIndexes?: boolean;
}

export interface FromImageOptions extends Omit<MaterializeOptions<never>, 'initialState'> {
  /** Reports the load's work as it goes (a resident worker's pacer). */
  pace?: Pace;
}

/**
 * The state a log materialises: application state, its indexes, the idempotency window and the position
 * (LSN, record time). The live store, recovery, the snapshot builder and (later) replicas all use this one
 * class, so there is exactly one definition of "apply a record".
 */
export class MaterializedState<S, I> {
  state: S;
  indexes: I;
  readonly idempotency: IdempotencyWindow;
  lsnApplied = 0;
  lastNowMs = 0;
  private readonly meta: ApplyMeta = { lsn: 0, nowMs: 0 };
  private readonly records: RecordReader;
  /** The definition's index maintenance, or undefined when indexes are not kept. */
  private readonly indexDef: AnyDefinition['indexes'];

  constructor(
    readonly definition: AnyDefinition,
    readonly registry: Registry,
    options: MaterializeOptions<S> = {},
  ) {
    this.records = new RecordReader(registry);
    this.state = options.initialState ?? definition.initialState();
    this.indexDef = options.maintainIndexes === false ? undefined : definition.indexes;
    this.indexes = (this.indexDef ? this.indexDef.build(this.state) : undefined) as I;
    this.idempotency = new IdempotencyWindow({ ...DEFAULT_IDEMPOTENCY_LIMITS, ...options.limits });
  }

  /** Applies decided events live. Throws if an apply throws (the caller must stop: state is half-changed). */
  applyEvents(events: readonly { type: string; data: unknown }[], lsn: number, nowMs: number): void {
    const meta = this.meta;
    meta.lsn = lsn;
    meta.nowMs = nowMs;
    const indexDef = this.indexDef;
    for (let i = 0; i < events.length; i++) {
      const event = events[i];
      this.registry.eventsByName.get(event.type)!.apply(this.state, event.data, meta);
      if (indexDef) indexDef.onEvent(this.indexes, event, this.state, meta);
    }
    this.lsnApplied = lsn;
    if (nowMs > this.lastNowMs) this.lastNowMs = nowMs;
  }

  /** Applies one committed record from the log (recovery, snapshot building, replicas). */
  replay(record: LogRecord): void {
    // Not assert(cond, `message`): the template would be built for every record replayed.
    if (record.lsn !== this.lsnApplied + 1) {
      throw new AssertionFailure(`replay out of order: LSN ${record.lsn} after ${this.lsnApplied}`);
    }
    this.meta.lsn = record.lsn;
    const decoded = this.records.read(record, this.applyReplayed);
    this.lsnApplied = record.lsn;
    if (!decoded) return;
    const header = this.records.header;
    if (header.nowMs > this.lastNowMs) this.lastNowMs = header.nowMs;
    if (header.key !== '') {
      this.idempotency.record(header.key, {
        lsn: record.lsn,
        nowMs: header.nowMs,
        fingerprintA: header.fingerprintA,
        fingerprintB: header.fingerprintB,
        commandId: decoded.command.id,
        result: decoded.command.resultCodec.decode(decoded.result, record.version),
      });
    }
  }

  /** After a run of `replay` calls: lets go of the log buffer the last record was read from. */
  endReplay(): void {
    this.records.release();
  }

  /** Created once: replay calls it per event without allocating a closure per record. */
  private readonly applyReplayed = (event: CompiledEvent, data: unknown): void => {
    const meta = this.meta;
    meta.nowMs = this.records.header.nowMs;
    event.apply(this.state, data, meta);
    const indexDef = this.indexDef;
    if (indexDef) {
      const replayed = this.replayedEvent;
      replayed.type = event.name;
      replayed.data = data;
      indexDef.onEvent(this.indexes, replayed, this.state, meta);
      replayed.data = undefined;
    }
  };

  /** The event handed to index maintenance during replay, reused: one object per event adds up. */
  private readonly replayedEvent: { type: string; data: unknown } = { type: '', data: undefined };

  /** Canonical hash of the state and the idempotency window (indexes are derived, so excluded). */
  stateHash(): string {
    const window = [...this.idempotency.entries].map(([key, e]) => [
      key,
      e.lsn,
      e.nowMs,
      e.fingerprintA,
      e.fingerprintB,
      e.commandId,
      this.encodedResult(e.commandId, e.result),
    ]);
    return hashState([this.state, window]);
  }

  private encodedResult(commandId: number, result: unknown): string {
    const w = new BinWriter(64);
    this.registry.commandsById.get(commandId)!.resultCodec.encode(result, w);
    return w.buf.toString('base64', 0, w.pos);
  }

  /**
   * The snapshot payload (definition name, record time, idempotency window, state) as pieces to be written
   * in order: large typed-array values (a table's columns, its key arenas) are referenced, not copied
   * (PieceWriter), so the state must stay unchanged until they are written.
   */
  encodeImage(): Uint8Array[] {
    const w = new PieceWriter();
    w.string(this.definition.name);
    w.f64(this.lastNowMs);
    w.u32(this.idempotency.size);
    for (const [key, e] of this.idempotency.entries) {
      w.string(key);
      w.f64(e.lsn);
      w.f64(e.nowMs);
      w.u32(e.fingerprintA);
      w.u32(e.fingerprintB);
      w.u16(e.commandId);
      this.registry.commandsById.get(e.commandId)!.resultCodec.encode(e.result, w);
    }
    (this.definition.stateCodec ?? plainDataCodec).encode(this.state, w);
    return w.pieces();
  }

  /** Rebuilds the state a snapshot image holds, at `lsn`; indexes (if kept) are rebuilt from the state. */
  static fromImage<S, I>(
    definition: AnyDefinition,
    registry: Registry,
    payload: Buffer,
    lsn: number,
    options: FromImageOptions = {},
  ): MaterializedState<S, I> {
    const { pace, ...materialize } = options;
    const r = new BinReader(payload);
    const name = r.string();
    if (name !== definition.name) {
      throw new Error(`snapshot holds a '${name}' store, not '${definition.name}'`);
    }
    const lastNowMs = r.f64();
    const windowSize = r.u32();
    const entries: [string, Parameters<IdempotencyWindow['record']>[1]][] = [];
    for (let i = 0; i < windowSize; i++) {
      const key = r.string();
      const entryLsn = r.f64();
      const nowMs = r.f64();
      const fingerprintA = r.u32();
      const fingerprintB = r.u32();
      const commandId = r.u16();
      const command = registry.commandsById.get(commandId);
      if (!command) throw new Error(`snapshot window entry for unknown command type ${commandId}`);
      const result = command.resultCodec.decode(r, command.version);
      entries.push([key, { lsn: entryLsn, nowMs, fingerprintA, fingerprintB, commandId, result }]);
      if (pace !== undefined && (i & PACE_EVERY_MASK) === PACE_EVERY_MASK) pace(PACE_EVERY_MASK + 1);
    }
    const state = (definition.stateCodec ?? plainDataCodec).decode(r, 1, { pace }) as S;
    if (r.remaining !== 0) throw new Error(`snapshot payload has ${r.remaining} unread bytes`);
    const materialized = new MaterializedState<S, I>(definition, registry, {
      ...materialize,
      initialState: state,
    });
    for (const [key, entry] of entries) materialized.idempotency.entries.set(key, entry);
    materialized.lsnApplied = lsn;
    materialized.lastNowMs = lastNowMs;
    return materialized;
  }
}

/** A paced load reports its window entries in blocks of this many (each about a record's replay). */
const PACE_EVERY_MASK = 255;
