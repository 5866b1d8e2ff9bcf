import * as path from 'node:path';
import type { AnyEventDefs, StoreDefinition } from '../engine/definition.ts';
import type { IdempotencyLimits } from '../engine/idempotency.ts';
import { type FromImageOptions, MaterializedState } from '../engine/materialized-state.ts';
import { compileDefinition } from '../engine/registry.ts';
import { EngramError } from '../errors.ts';
import { SEGMENT_HEADER_BYTES } from '../log/format.ts';
import { type LogPosition, type ScanResult, scanLog } from '../log/reader.ts';
import type { FileSystem } from '../storage/file-system.ts';
import { ReusedMapping } from '../storage/reused-mapping.ts';
import type { Pace } from '../util/pace.ts';
import { loadNewestValid, pruneSnapshots, type SnapshotFallback } from './catalog.ts';
import type { ReplayPacer } from './replay-pacer.ts';
import { writeSnapshotFile } from './snapshot-file.ts';

export interface BuildSnapshotOptions {
  fs: FileSystem;
  /** The store's data directory (`wal/` and `snapshots/` inside). */
  dataDir: string;
  definition: StoreDefinition<any, AnyEventDefs<any>, any, any>;
  idempotency?: Partial<IdempotencyLimits>;
  /** The LSN to snapshot at: a durable group end. */
  targetLsn: number;
  /** Snapshots to keep (the newest ones). */
  keep: number;
  clock?: () => number;
}

export interface SnapshotBuilt {
  lsn: number;
  file: string;
  bytes: number;
  stateHash: string;
  /** LSN of the snapshot this one started from (0: from the beginning of the log). */
  baseLsn: number;
  recordsReplayed: number;
  /** Of those, the ones replayed after this snapshot was asked for (a resident worker did the rest before). */
  recordsReplayedOnRequest: number;
  durationMs: number;
  fallbacks: SnapshotFallback[];
  /** LSN of the oldest snapshot still kept: log records at or below it are no longer needed. */
  oldestKeptLsn: number;
}

export function snapshotsDir(dataDir: string): string {
  return path.join(dataDir, 'snapshots');
}

export function walDir(dataDir: string): string {
  return path.join(dataDir, 'wal');
}

/**
 * Builds a point-in-time snapshot at `targetLsn` the way a standby would: from the newest valid snapshot
 * plus the durable log up to `targetLsn`, never from the live in-memory state. The live store keeps
 * writing meanwhile (it only appends after `targetLsn`), and the result is exactly the state at
 * `targetLsn` by construction. Runs in a worker thread in production (see checkpoint-worker.ts) or
 * in-process (tests, simulation).
 */
export function buildSnapshot(options: BuildSnapshotOptions): Promise<SnapshotBuilt> {
  return new Checkpointer(options).snapshot(options.targetLsn);
}

export type CheckpointerOptions = Omit<BuildSnapshotOptions, 'targetLsn'> & {
  /** Map the segment being written too (see ScanOptions.lastSegmentImmutable): for a follower of the live log. */
  mapLastSegment?: boolean;
  /** Paces the replays of `catchUp(lsn, { paced: true })` (a worker thread's: it blocks the thread). */
  pacer?: ReplayPacer;
};

/**
 * A standby's copy of the state, kept between snapshots (decision 017): it loads the newest valid snapshot
 * once, then follows the durable log with `catchUp`, so a snapshot costs only the replay since the last
 * call and the write, never a reload and a replay from the previous snapshot. Calls run one at a time, in
 * order. After a failure the copy is dropped and the next call starts again from the snapshots on disk.
 */
export class Checkpointer {
  private state: MaterializedState<any, any> | undefined;
  private baseLsn = 0;
  private fallbacks: SnapshotFallback[] = [];
  /** The snapshot file that holds exactly the current state, if one does (loaded or last written). */
  private fileOfState: { file: string; bytes: number; stateHash: string } | undefined;
  private chain = 0;
  private position: LogPosition | undefined;
  private replayedSinceSnapshot = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** A follower's log segments: the one being written is mapped once, not on every catch-up. */
  private readonly segments: ReusedMapping | undefined;

  constructor(private readonly options: CheckpointerOptions) {
    if (options.mapLastSegment) this.segments = new ReusedMapping(options.fs);
  }

  /** How often the follower mapped a log segment afresh and how often it reused a mapping. */
  get segmentMappings(): { mapped: number; reused: number } {
    return { ...(this.segments?.counts ?? { mapped: 0, reused: 0 }) };
  }

  /** LSN the kept state has reached (0 before the first call). */
  get lsnApplied(): number {
    return this.state?.lsnApplied ?? 0;
  }

  /**
   * Brings the kept state up to `lsn`, a durable group end; `paced`, at the pacer's share of the CPU (the
   * first call's snapshot load too).
   */
  catchUp(lsn: number, { paced = false }: { paced?: boolean } = {}): Promise<void> {
    return this.serially(() => this.replayTo(lsn, paced ? this.options.pacer : undefined));
  }

  /** Writes a snapshot at `targetLsn`, a durable group end at or after the kept state's LSN. */
  snapshot(targetLsn: number): Promise<SnapshotBuilt> {
    return this.serially(async () => {
      const startMs = performance.now();
      const replayedBefore = this.replayedSinceSnapshot;
      await this.replayTo(targetLsn);
      const state = this.state!;
      const { fs, dataDir, keep } = this.options;
      let file = this.fileOfState;
      if (!file) {
        const stateHash = state.stateHash();
        const written = await writeSnapshotFile(
          fs,
          snapshotsDir(dataDir),
          {
            lsn: targetLsn,
            createdAtMs: (this.options.clock ?? Date.now)(),
            stateHash,
            chain: this.chain,
            logPosition: this.position
              ? { segmentBaseLsn: this.position.segmentBaseLsn, offset: this.position.offset }
              : undefined,
          },
          state.encodeImage(),
        );
        file = { file: written.file, bytes: written.bytes, stateHash };
        this.fileOfState = file;
      }
      const kept = await pruneSnapshots(fs, snapshotsDir(dataDir), keep);
      const built: SnapshotBuilt = {
        lsn: targetLsn,
        ...file,
        baseLsn: this.baseLsn,
        recordsReplayed: this.replayedSinceSnapshot,
        recordsReplayedOnRequest: this.replayedSinceSnapshot - replayedBefore,
        durationMs: performance.now() - startMs,
        fallbacks: this.fallbacks,
        oldestKeptLsn: kept.at(-1)?.lsn ?? targetLsn,
      };
      this.baseLsn = targetLsn;
      this.replayedSinceSnapshot = 0;
      this.fallbacks = [];
      return built;
    });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work).catch((error: unknown) => {
      this.state = undefined;
      this.segments?.release();
      throw error;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async replayTo(targetLsn: number, pacer?: ReplayPacer): Promise<void> {
    const { fs, dataDir } = this.options;
    if (!this.state) await this.load(targetLsn, pacer);
    const state = this.state!;
    if (state.lsnApplied >= targetLsn) {
      if (state.lsnApplied === targetLsn) return;
      throw new EngramError(
        'invalid_argument',
        `cannot snapshot at LSN ${targetLsn}: the checkpointer's state is already at LSN ${state.lsnApplied}`,
        { lsn: targetLsn },
      );
    }
    let replayed = 0;
    const afterLsn = state.lsnApplied;
    await this.segments?.revalidate();
    pacer?.begin();
    const scan = await scanLog(this.segments?.fs ?? fs, walDir(dataDir), {
      afterLsn,
      untilLsn: targetLsn,
      resumeAt: this.position,
      lastSegmentImmutable: this.options.mapLastSegment,
      onRecord: (record) => {
        state.replay(record);
        replayed++;
        pacer?.tick();
      },
    });
    state.endReplay();
    this.replayedSinceSnapshot += replayed;
    if (state.lsnApplied !== targetLsn) {
      throw new EngramError(
        'log_gap',
        `cannot build a snapshot at LSN ${targetLsn}: the log and snapshots reach only LSN ${state.lsnApplied} ` +
          `(log holds ${scan.firstLsn}..${scan.lastLsn}, base snapshot ${this.baseLsn})`,
        { lsn: targetLsn },
      );
    }
    this.chain = scan.chain;
    const at = positionAt(scan, targetLsn);
    this.position = at ? { ...at, lsn: targetLsn, chain: scan.chain } : undefined;
    this.fileOfState = undefined;
  }

  /**
   * Loads the newest snapshot at or below `targetLsn`; paced by `pacer` (checksums, window, the state codec's
   * loops): a resident worker's load faults in up to a gigabyte of fresh memory, and at full speed that
   * stretched the store's log writes (decision 017).
   */
  private async load(targetLsn: number, pacer?: ReplayPacer): Promise<void> {
    const { fs, dataDir, definition } = this.options;
    const registry = compileDefinition(definition);
    const limits = this.options.idempotency ?? {};
    const pace = pacer && ((units: number) => pacer.tick(units));
    pacer?.begin();
    const { loaded, fallbacks } = await loadNewestValid(
      fs,
      snapshotsDir(dataDir),
      (s) =>
        s.header.lsn <= targetLsn
          ? MaterializedState.fromImage(
              definition,
              registry,
              s.payload,
              s.header.lsn,
              unindexed(limits, pace),
            )
          : undefined,
      pace,
    );
    this.fallbacks = fallbacks;
    this.position = undefined;
    this.replayedSinceSnapshot = 0;
    if (loaded?.value) {
      const { header, file, fileBytes } = loaded.snapshot;
      this.state = loaded.value;
      this.baseLsn = header.lsn;
      this.chain = header.chain;
      this.fileOfState = { file, bytes: fileBytes, stateHash: header.stateHash };
      if (header.logPosition) this.position = { ...header.logPosition, lsn: header.lsn, chain: header.chain };
    } else {
      this.state = new MaterializedState(definition, registry, unindexed(limits));
      this.baseLsn = 0;
      this.fileOfState = undefined;
    }
  }
}

/** A snapshot builder's copy is never read through indexes, and snapshots do not hold them. */
function unindexed(limits: Partial<IdempotencyLimits>, pace?: Pace): FromImageOptions {
  return { limits, pace, maintainIndexes: false };
}

/** The log position just past `lsn`, if the scan ended exactly there (it stops at the target LSN). */
function positionAt(scan: ScanResult, lsn: number): { segmentBaseLsn: number; offset: number } | undefined {
  const segment = scan.segments.at(-1);
  if (!segment || segment.lastLsn !== lsn || segment.endOfCommitted <= SEGMENT_HEADER_BYTES) return undefined;
  return { segmentBaseLsn: segment.baseLsn, offset: segment.endOfCommitted };
}
