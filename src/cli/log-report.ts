import { EngramError } from '../errors.ts';
import { RESERVED_TYPE_MIN } from '../log/format.ts';
import { type LogRecord, scanLog, type TornTail } from '../log/reader.ts';
import {
  type LogDamage,
  planTruncateAfter,
  type RepairSegmentState,
  scanTolerant,
  type TruncatePlan,
} from '../log/repair.ts';
import type { FileSystem } from '../storage/file-system.ts';
import type { CliIo } from './io.ts';
import type { LogLocation } from './log-dir.ts';
import { withProgress } from './progress.ts';

export type LogStatus =
  /** Everything verified. */
  | 'clean'
  /** Verified up to a torn tail, which the next start cuts automatically (it was never acknowledged). */
  | 'torn_tail'
  /** Damage with committed data after it: Engram refuses to start. */
  | 'corrupt'
  /** A segment is missing: Engram refuses to start. */
  | 'log_gap';

export interface SegmentRow {
  name: string;
  baseLsn: number;
  /** Last committed (verified) LSN in the segment; baseLsn - 1 if none. */
  lastLsn: number;
  records: number;
  groups: number;
  fileBytes: number;
  /** End of the last committed (verified) group. */
  committedBytes: number;
  /** For a damaged log: whether the segment verified, holds the damage, or comes after it. */
  state: RepairSegmentState | undefined;
}

export interface LastRecord {
  lsn: number;
  type: number;
  /** The record's decision time (its payload's first f64), when it is a command record. */
  nowMs: number | undefined;
}

export interface LogReport {
  dir: string;
  status: LogStatus;
  segments: SegmentRow[];
  firstLsn: number;
  /** Last committed LSN (for a damaged log: the end of the verified prefix). */
  lastLsn: number;
  records: number;
  groups: number;
  recordsByType: Map<number, number>;
  lastRecord: LastRecord | undefined;
  tornTails: TornTail[];
  /** Why the log is refused (corrupt or log_gap), as `scanLog` reported it. */
  error: { code: string; message: string; file?: string; offset?: number } | undefined;
  /** Where the tolerant scan stopped (damaged logs only). */
  damage: LogDamage | undefined;
  /** The cut that keeps the whole verified prefix (damaged logs only), undefined if none is possible. */
  suggestedRepair: TruncatePlan | undefined;
}

/**
 * Verifies the whole log with `scanLog` (what recovery runs). If it refuses the log, the tolerant scanner
 * describes the verified prefix instead, with the damage and the repair that would keep all of it.
 */
export async function buildLogReport(fs: FileSystem, io: CliIo, location: LogLocation): Promise<LogReport> {
  let lastRecord: LastRecord | undefined;
  const onRecord = (record: LogRecord) => {
    lastRecord = { lsn: record.lsn, type: record.type, nowMs: recordTime(record) };
  };
  const dir = location.walDir;
  try {
    const scan = await withProgress(io, 'verifying', location.bytesTotal, (onProgress) =>
      scanLog(fs, dir, { verifyAll: true, onRecord, onProgress }),
    );
    const recordsByType = new Map<number, number>();
    for (const s of scan.segments)
      for (const [type, n] of s.recordsByType) recordsByType.set(type, (recordsByType.get(type) ?? 0) + n);
    return {
      dir,
      status: scan.tornTails.length > 0 ? 'torn_tail' : 'clean',
      segments: scan.segments.map((s) => ({
        name: s.name,
        baseLsn: s.baseLsn,
        lastLsn: s.lastLsn,
        records: s.records,
        groups: s.groups,
        fileBytes: s.fileBytes,
        committedBytes: s.committedBytes,
        state: undefined,
      })),
      firstLsn: scan.firstLsn,
      lastLsn: scan.lastLsn,
      records: sum(scan.segments.map((s) => s.records)),
      groups: sum(scan.segments.map((s) => s.groups)),
      recordsByType,
      lastRecord,
      tornTails: scan.tornTails,
      error: undefined,
      damage: undefined,
      suggestedRepair: undefined,
    };
  } catch (error) {
    if (!(error instanceof EngramError) || (error.code !== 'corruption' && error.code !== 'log_gap'))
      throw error;
    lastRecord = undefined;
    return damagedReport(fs, io, location, error, onRecord, () => lastRecord);
  }
}

async function damagedReport(
  fs: FileSystem,
  io: CliIo,
  location: LogLocation,
  error: EngramError,
  onRecord: (record: LogRecord) => void,
  lastRecord: () => LastRecord | undefined,
): Promise<LogReport> {
  const scan = await withProgress(io, 'locating damage', location.bytesTotal, (onProgress) =>
    scanTolerant(fs, location.walDir, { onRecord, onProgress }),
  );
  const recordsByType = new Map<number, number>();
  for (const s of scan.segments)
    for (const [type, n] of s.recordsByType) recordsByType.set(type, (recordsByType.get(type) ?? 0) + n);
  const planned = planTruncateAfter(scan, scan.lastLsn);
  return {
    dir: location.walDir,
    status: error.code === 'log_gap' ? 'log_gap' : 'corrupt',
    segments: scan.segments.map((s) => ({
      name: s.name,
      baseLsn: s.baseLsn,
      lastLsn: s.groups.at(-1)?.lastLsn ?? s.baseLsn - 1,
      records: s.records,
      groups: s.groups.length,
      fileBytes: s.fileBytes,
      committedBytes: s.verifiedBytes,
      state: s.state,
    })),
    firstLsn: scan.firstLsn,
    lastLsn: scan.lastLsn,
    records: sum(scan.segments.map((s) => s.records)),
    groups: sum(scan.segments.map((s) => s.groups.length)),
    recordsByType,
    lastRecord: lastRecord(),
    tornTails: [],
    error: {
      code: error.code,
      message: error.message,
      file: typeof error.details.file === 'string' ? error.details.file : undefined,
      offset: typeof error.details.offset === 'number' ? error.details.offset : undefined,
    },
    damage: scan.damage,
    suggestedRepair: planned.ok ? planned.plan : undefined,
  };
}

/** A command record starts with its decision time (f64 ms, see src/engine/record.ts). */
function recordTime(record: LogRecord): number | undefined {
  if (record.type >= RESERVED_TYPE_MIN || record.payloadEnd - record.payloadStart < 8) return undefined;
  return record.buf.readDoubleLE(record.payloadStart);
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
