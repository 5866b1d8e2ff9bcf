import type { FileSystem } from '../storage/file-system.ts';
import type { FlushPolicy } from './flush-policy.ts';
import {
  type LogPosition,
  type LogRecord,
  type ScanResult,
  type SegmentReadAhead,
  scanLog,
  type TornTail,
} from './reader.ts';
import { LogWriter, type LogWriterOptions } from './writer.ts';

export interface OpenLogOptions {
  fs: FileSystem;
  dir: string;
  policy: FlushPolicy;
  segmentBytesMax: number;
  /** See LogWriterOptions.preallocate (default true). */
  preallocate?: boolean;
  /** Records with lsn <= afterLsn are covered by a snapshot: not handed out, nor checksummed (see scanLog). */
  afterLsn?: number;
  /** Where the log continues after `afterLsn`, from the snapshot (see ScanOptions.resumeAt). */
  resumeAt?: LogPosition;
  readAhead?: SegmentReadAhead;
  onRecord: (record: LogRecord) => void;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  writer: Pick<LogWriterOptions, 'onDurable' | 'onFailure' | 'onFlush' | 'onSegmentRolled'>;
  /** Used when the log directory is empty and a snapshot says where history starts. */
  emptyLogStart?: { lastLsn: number; chain: number };
  /** Called after the scan, before anything is created: throw to refuse the log as it is. */
  checkScan?: (scan: ScanResult) => void;
}

export interface OpenedLog {
  writer: LogWriter;
  scan: ScanResult;
  /** The torn tails that were removed, for the start-up report. */
  truncated: TornTail[];
}

/**
 * Recovery, then the writer: verifies the log, hands every committed record to `onRecord`, cuts off a torn
 * tail (the only repair that opening does, since those bytes were never acknowledged) and opens the writer
 * where the last committed group ended. Corruption throws before anything is changed.
 */
export async function openLog(options: OpenLogOptions): Promise<OpenedLog> {
  const { fs, dir } = options;
  await fs.mkdirp(dir);
  const scan = await scanLog(fs, dir, {
    afterLsn: options.afterLsn,
    resumeAt: options.resumeAt,
    readAhead: options.readAhead,
    onRecord: options.onRecord,
    onProgress: options.onProgress,
  });
  options.checkScan?.(scan);
  for (const torn of scan.tornTails) await cutTornTail(fs, dir, torn);
  const last = scan.segments[scan.segments.length - 1];
  const empty = scan.segments.length === 0;
  const writer = await LogWriter.open({
    fs,
    dir,
    policy: options.policy,
    segmentBytesMax: options.segmentBytesMax,
    preallocate: options.preallocate,
    tail: last ? { segmentName: last.name, baseLsn: last.baseLsn, offset: last.committedBytes } : undefined,
    lastLsn: empty ? (options.emptyLogStart?.lastLsn ?? 0) : scan.lastLsn,
    chain: empty ? (options.emptyLogStart?.chain ?? 0) : scan.chain,
    epoch: scan.epoch,
    ...options.writer,
  });
  return { writer, scan, truncated: scan.tornTails };
}

async function cutTornTail(fs: FileSystem, dir: string, torn: TornTail): Promise<void> {
  if (torn.deleteFile) {
    await fs.unlink(torn.file);
    await fs.syncDir(dir);
    return;
  }
  const handle = await fs.open(torn.file, 'readwrite');
  try {
    await handle.truncate(torn.offset);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
