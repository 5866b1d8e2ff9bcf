import * as path from 'node:path';
import type { AnyEventDefs, StoreDefinition } from '../engine/definition.ts';
import type { IdempotencyLimits } from '../engine/idempotency.ts';
import { MaterializedState } from '../engine/materialized-state.ts';
import { compileDefinition } from '../engine/registry.ts';
import { EngramError } from '../errors.ts';
import { SEGMENT_HEADER_BYTES } from '../log/format.ts';
import { type ScanResult, scanLog } from '../log/reader.ts';
import type { FileSystem } from '../storage/file-system.ts';
import { loadNewestValid, pruneSnapshots, type SnapshotFallback } from './catalog.ts';
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
export async function buildSnapshot(options: BuildSnapshotOptions): Promise<SnapshotBuilt> {
  const startMs = performance.now();
  const { fs, dataDir, definition, targetLsn } = options;
  const registry = compileDefinition(definition);
  const limits = options.idempotency ?? {};
  const { loaded, fallbacks } = await loadNewestValid(fs, snapshotsDir(dataDir), (s) =>
    s.header.lsn <= targetLsn
      ? MaterializedState.fromImage(definition, registry, limits, s.payload, s.header.lsn)
      : undefined,
  );
  const base = loaded?.value ?? new MaterializedState(definition, registry, limits);
  const baseLsn = loaded?.value ? loaded.snapshot.header.lsn : 0;
  if (baseLsn === targetLsn && loaded) {
    return {
      lsn: targetLsn,
      file: loaded.snapshot.file,
      bytes: loaded.snapshot.fileBytes,
      stateHash: loaded.snapshot.header.stateHash,
      baseLsn,
      recordsReplayed: 0,
      durationMs: performance.now() - startMs,
      fallbacks,
      oldestKeptLsn: (await pruneSnapshots(fs, snapshotsDir(dataDir), options.keep)).at(-1)?.lsn ?? targetLsn,
    };
  }
  let replayed = 0;
  const scan = await scanLog(fs, walDir(dataDir), {
    afterLsn: baseLsn,
    untilLsn: targetLsn,
    onRecord: (record) => {
      base.replay(record);
      replayed++;
    },
  });
  base.endReplay();
  if (base.lsnApplied !== targetLsn) {
    throw new EngramError(
      'log_gap',
      `cannot build a snapshot at LSN ${targetLsn}: the log and snapshots reach only LSN ${base.lsnApplied} ` +
        `(log holds ${scan.firstLsn}..${scan.lastLsn}, base snapshot ${baseLsn})`,
      { lsn: targetLsn },
    );
  }
  const stateHash = base.stateHash();
  const written = await writeSnapshotFile(
    fs,
    snapshotsDir(dataDir),
    {
      lsn: targetLsn,
      createdAtMs: (options.clock ?? Date.now)(),
      stateHash,
      chain: scan.chain,
      logPosition: positionAt(scan, targetLsn),
    },
    base.encodeImage(),
  );
  const kept = await pruneSnapshots(fs, snapshotsDir(dataDir), options.keep);
  return {
    lsn: targetLsn,
    file: written.file,
    bytes: written.bytes,
    stateHash,
    baseLsn,
    recordsReplayed: replayed,
    durationMs: performance.now() - startMs,
    fallbacks,
    oldestKeptLsn: kept.at(-1)?.lsn ?? targetLsn,
  };
}

/** The log position just past `lsn`, if the scan ended exactly there (it stops at the target LSN). */
function positionAt(scan: ScanResult, lsn: number): { segmentBaseLsn: number; offset: number } | undefined {
  const segment = scan.segments.at(-1);
  if (!segment || segment.lastLsn !== lsn || segment.endOfCommitted <= SEGMENT_HEADER_BYTES) return undefined;
  return { segmentBaseLsn: segment.baseLsn, offset: segment.endOfCommitted };
}
