import * as path from 'node:path';
import { EngramError } from '../errors.ts';
import { asBuffer, type FileSystem } from '../storage/file-system.ts';
import { readU64 } from '../util/bin.ts';
import { crc32c } from './crc32c.ts';
import {
  alignUp,
  COMMIT_FRAME_SIZES,
  COMMIT_MARKER_TYPE,
  FRAME_ALIGNMENT,
  LOG_FORMAT_VERSION_PREALLOCATED,
  parseSegmentName,
  SEGMENT_HEADER_BYTES,
} from './format.ts';
import {
  chainStep,
  type FrameView,
  groupIntact,
  isCommitMarker,
  newFrameView,
  parseFrame,
  parseSegmentHeader,
  readCommitPayload,
  readFrameInto,
} from './frame.ts';
import { writtenEnd } from './preallocation.ts';
import { readSegment, readWrittenSegment, type SegmentBytes } from './segment-read.ts';

/** A committed record as recovery hands it out; `buf` is only valid during the callback. */
export interface LogRecord {
  lsn: number;
  type: number;
  version: number;
  flags: number;
  buf: Buffer;
  payloadStart: number;
  payloadEnd: number;
}

export interface SegmentInfo {
  name: string;
  path: string;
  baseLsn: number;
  epoch: number;
  /** Last committed LSN in this segment; baseLsn - 1 if none. */
  lastLsn: number;
  records: number;
  groups: number;
  fileBytes: number;
  /** End of the last committed group: where the next group goes. */
  committedBytes: number;
  /** Chain value after the last committed group. */
  chainEnd: number;
  recordsByType: Map<number, number>;
  /** Offset just past the last valid commit marker (where a LogPosition for `lastLsn` points). */
  endOfCommitted: number;
  /** Where the scan of this segment started, when a LogPosition let it skip the bytes before. */
  resumedAt?: number;
}

export interface TornTail {
  file: string;
  /** Offset to truncate to (0 with `deleteFile`: the whole segment was a torn creation). */
  offset: number;
  discardedBytes: number;
  /** Records that were fully written but never covered by a commit marker (never acknowledged). */
  uncommittedRecords: number;
  reason: string;
  deleteFile: boolean;
}

export interface ScanResult {
  segments: SegmentInfo[];
  /** First LSN the log still holds (after compaction); lastLsn + 1 if the log is empty. */
  firstLsn: number;
  lastLsn: number;
  chain: number;
  epoch: number;
  tornTails: TornTail[];
  /** Set when `resumeAt` was used: the scan skipped that segment's bytes before `offset`. */
  resumedAt?: { segment: string; offset: number };
}

/**
 * Where the log continues after the commit marker of `lsn`: byte `offset` of the segment starting at
 * `segmentBaseLsn`, with the chain value `chain` there. A snapshot records it, so recovery starts reading
 * where the snapshot ends instead of at the start of that segment.
 */
export interface LogPosition {
  segmentBaseLsn: number;
  offset: number;
  lsn: number;
  chain: number;
}

export interface SegmentReadAhead {
  name: string;
  content: Promise<SegmentBytes>;
}

/**
 * Starts reading the segment that holds `lsn + 1`, the first record a recovery from a snapshot at `lsn`
 * replays, so that the read overlaps with loading the snapshot. Undefined when there is no such segment.
 */
export async function readAheadFor(
  fs: FileSystem,
  dir: string,
  lsn: number,
): Promise<SegmentReadAhead | undefined> {
  const entries = (await fs.exists(dir)) ? await listSegments(fs, dir) : [];
  const segment = entries.findLast((e) => e.baseLsn <= lsn + 1);
  if (!segment) return undefined;
  const file = path.join(dir, segment.name);
  const content =
    segment === entries.at(-1)
      ? readWrittenSegment(fs, file)
      : fs.readFile(file).then((bytes) => ({ bytes: asBuffer(bytes), fileBytes: bytes.length }));
  content.catch(() => undefined); // awaited by the scan if it gets there; ignored otherwise
  return { name: segment.name, content };
}

export interface ScanOptions {
  /**
   * Only records with lsn > afterLsn are handed to onRecord. Segments wholly at or below it are skipped
   * unread (a snapshot covers them), and records at or below it in the segment that reaches past it are
   * not checksummed (commit markers and the chain still are), unless `verifyAll`.
   */
  afterLsn?: number;
  /** Stop once this LSN is reached (building a snapshot at it while the log keeps growing). */
  untilLsn?: number;
  verifyAll?: boolean;
  /**
   * Start the segment holding `afterLsn + 1` here rather than at its first frame (ignored unless
   * `resumeAt.lsn === afterLsn`, and if the commit marker it names does not end exactly there).
   */
  resumeAt?: LogPosition;
  /**
   * The caller reads only up to a durable `untilLsn`, so even the last segment's bytes it reads are
   * immutable and it may be mapped (a checkpointer following the live log). Recovery must not set it: it
   * may cut the last segment at a torn tail.
   */
  lastSegmentImmutable?: boolean;
  /** A segment's content already being read (recovery starts it while the snapshot loads). */
  readAhead?: SegmentReadAhead;
  onRecord?: (record: LogRecord) => void;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

const SECTOR_BYTES = 512;

export async function listSegments(
  fs: FileSystem,
  dir: string,
): Promise<{ name: string; baseLsn: number }[]> {
  const names = await fs.list(dir);
  const segments: { name: string; baseLsn: number }[] = [];
  for (const name of names) {
    const baseLsn = parseSegmentName(name);
    if (baseLsn !== undefined) segments.push({ name, baseLsn });
  }
  return segments.sort((a, b) => a.baseLsn - b.baseLsn);
}

/**
 * Reads and verifies the whole log in `dir`: every frame checksum, the LSN sequence, every commit marker and
 * the chain across groups and segments. Committed records are handed to `onRecord` in LSN order.
 *
 * Damage after the last valid commit marker, where nothing valid follows, is a torn tail (reported, not
 * fixed: the writer truncates it when it opens). Damage followed by later committed data is corruption:
 * it throws an EngramError('corruption') naming the file and offset, and nothing is changed.
 */
export async function scanLog(fs: FileSystem, dir: string, options: ScanOptions = {}): Promise<ScanResult> {
  const afterLsn = options.afterLsn ?? 0;
  const untilLsn = options.untilLsn ?? Number.POSITIVE_INFINITY;
  const entries = await listSegments(fs, dir);
  const result: ScanResult = { segments: [], firstLsn: 1, lastLsn: 0, chain: 0, epoch: 0, tornTails: [] };
  const sizes = options.onProgress
    ? await Promise.all(entries.map((e) => fileSize(fs, path.join(dir, e.name))))
    : [];
  const bytesTotal = sizes.reduce((a, b) => a + b, 0);
  let bytesDone = 0;
  let expectedChain: number | undefined;
  if (entries.length > 0) {
    result.firstLsn = entries[0].baseLsn;
    result.lastLsn = entries[0].baseLsn - 1;
  }
  const readAhead = options.readAhead;
  const readAheadIndex = readAhead ? entries.findIndex((e) => e.name === readAhead.name) : -1;
  let prefetched: { index: number; read: Promise<SegmentBytes> } | undefined =
    readAhead && readAheadIndex >= 0 ? { index: readAheadIndex, read: readAhead.content } : undefined;
  for (let i = 0; i < entries.length; i++) {
    const file = path.join(dir, entries[i].name);
    const isLast = i === entries.length - 1;
    // A segment wholly covered by the snapshot need not be read: its last LSN is the next one's base - 1.
    if (!isLast && entries[i + 1].baseLsn - 1 <= afterLsn && options.verifyAll !== true) {
      result.lastLsn = entries[i + 1].baseLsn - 1;
      expectedChain = undefined;
      bytesDone += sizes[i] ?? 0;
      continue;
    }
    const { bytes: buf, fileBytes } = await (prefetched?.index === i
      ? prefetched.read
      : readSegment(fs, file, isLast && options.lastSegmentImmutable !== true));
    prefetched = undefined;
    if (!isLast) {
      // Read the next segment while this one is parsed: recovery is then bound by the CPU, not the disk too.
      const read = readSegment(
        fs,
        path.join(dir, entries[i + 1].name),
        i + 1 === entries.length - 1 && options.lastSegmentImmutable !== true,
      );
      read.catch(() => undefined); // awaited when used; left unread if the scan stops early
      prefetched = { index: i + 1, read };
    }
    const header = parseSegmentHeader(buf);
    if (!header.ok) {
      if (isLast && buf.length <= SEGMENT_HEADER_BYTES) {
        result.tornTails.push({
          file,
          offset: 0,
          discardedBytes: buf.length,
          uncommittedRecords: 0,
          reason: `segment creation was interrupted (${header.reason})`,
          deleteFile: true,
        });
        break;
      }
      throw corruption(file, 0, `segment header: ${header.reason}`);
    }
    const { baseLsn, epoch, chain } = header.header;
    if (baseLsn !== entries[i].baseLsn) {
      throw corruption(file, 16, `header base LSN ${baseLsn} does not match the file name`);
    }
    if (i > 0 && baseLsn !== result.lastLsn + 1) {
      throw new EngramError(
        'log_gap',
        `log gap: segment ${file} starts at LSN ${baseLsn} but the previous segment ends at LSN ${result.lastLsn}. ` +
          'A segment is missing or was deleted; restore it from a backup or a replica.',
        { file, lsn: baseLsn },
      );
    }
    if (expectedChain !== undefined && chain !== expectedChain) {
      throw corruption(
        file,
        24,
        `segment chain ${chain} does not continue the previous segment (${expectedChain})`,
      );
    }
    const info = scanSegment(
      file,
      buf,
      entries[i].name,
      baseLsn,
      epoch,
      chain,
      fileBytes,
      afterLsn,
      untilLsn,
      options.onRecord,
      options.verifyAll === true ? -1 : afterLsn,
      options.verifyAll !== true && options.resumeAt?.lsn === afterLsn ? options.resumeAt : undefined,
    );
    if (info.resumedAt !== undefined) result.resumedAt = { segment: file, offset: info.resumedAt };
    result.segments.push(info);
    result.lastLsn = info.lastLsn;
    result.chain = info.chainEnd;
    result.epoch = epoch;
    expectedChain = info.chainEnd;
    bytesDone += fileBytes;
    options.onProgress?.(bytesDone, bytesTotal);
    if (info.lastLsn >= untilLsn) break;
    // Format 3: zeros from the last commit marker to the end of the file were never written to (a
    // preallocated segment's free space), not a torn tail; and damage is judged up to where the written
    // bytes end, as an append's is up to the end of the file (see format.ts).
    const dataEnd =
      header.header.formatVersion >= LOG_FORMAT_VERSION_PREALLOCATED
        ? writtenEnd(buf, info.committedBytes)
        : buf.length;
    if (info.committedBytes < dataEnd) {
      const later: Buffer[] = [];
      for (let j = i + 1; j < entries.length; j++)
        later.push(asBuffer(await fs.readFile(path.join(dir, entries[j].name))));
      result.tornTails.push(classifyDamage(file, buf.subarray(0, dataEnd), info, later));
      for (let j = i + 1; j < entries.length; j++) {
        result.tornTails.push({
          file: path.join(dir, entries[j].name),
          offset: 0,
          discardedBytes: later[j - i - 1].length,
          uncommittedRecords: 0,
          reason: 'segment created after the torn tail holds no committed data',
          deleteFile: true,
        });
      }
      break;
    }
  }
  options.onProgress?.(bytesTotal, bytesTotal);
  return result;
}

async function fileSize(fs: FileSystem, file: string): Promise<number> {
  const handle = await fs.open(file, 'read');
  try {
    return await handle.size();
  } finally {
    await handle.close();
  }
}

/**
 * Damage Engram will not start on. `why` says why it cannot be a torn write: committed data follows it, or
 * it is in the final group but looks like a flipped bit (possibly in acknowledged data), not a cut-off write.
 */
function corruption(
  file: string,
  offset: number,
  reason: string,
  lsn?: number,
  why = 'committed data follows the damage',
): EngramError {
  return new EngramError(
    'corruption',
    `log corruption in ${file} at offset ${offset}: ${reason}. This is not a torn write (${why}), so Engram will ` +
      'not start on it. Restore the segment from a replica or backup, or, accepting the loss of every record ' +
      `after the damage, run \`engram repair <dir> --truncate-after ${lsn ?? '<lsn>'}\` (\`engram verify <dir>\` ` +
      'names the exact LSN).',
    { file, offset, lsn },
  );
}

/** The frames read since the last commit marker: `count` of the pooled `frames`, reused group after group. */
interface PendingGroup {
  frames: FrameView[];
  count: number;
}

function scanSegment(
  file: string,
  buf: Buffer,
  name: string,
  baseLsn: number,
  epoch: number,
  chainStart: number,
  fileBytes: number,
  afterLsn: number,
  untilLsn: number,
  onRecord: ScanOptions['onRecord'],
  checksumAfterLsn: number,
  start: LogPosition | undefined,
): SegmentInfo {
  const info: SegmentInfo = {
    name,
    path: file,
    baseLsn,
    epoch,
    lastLsn: baseLsn - 1,
    records: 0,
    groups: 0,
    fileBytes,
    committedBytes: SEGMENT_HEADER_BYTES,
    endOfCommitted: SEGMENT_HEADER_BYTES,
    chainEnd: chainStart,
    recordsByType: new Map(),
  };
  const group: PendingGroup = { frames: [], count: 0 };
  const marker = newFrameView();
  const record: LogRecord = { lsn: 0, type: 0, version: 0, flags: 0, buf, payloadStart: 0, payloadEnd: 0 };
  let offset = SEGMENT_HEADER_BYTES;
  if (start && start.segmentBaseLsn === baseLsn && resumable(buf, start)) {
    offset = start.offset;
    info.lastLsn = start.lsn;
    info.chainEnd = start.chain;
    info.committedBytes = start.offset;
    info.endOfCommitted = start.offset;
    info.resumedAt = start.offset;
  }
  while (offset < buf.length) {
    if (group.count === group.frames.length) group.frames.push(newFrameView());
    const frame = group.frames[group.count];
    // Data frames' checksums are checked per group, at its commit marker (groupIntact); markers' at once.
    if (readFrameInto(buf, offset, buf.length, Number.POSITIVE_INFINITY, frame) !== undefined) break;
    if (isCommitMarker(frame)) {
      copyFrame(frame, marker);
      if (!commitGroup(buf, marker, group, info, afterLsn, untilLsn, onRecord, record, checksumAfterLsn))
        break;
      info.committedBytes = marker.next;
      info.endOfCommitted = marker.next;
      if (info.lastLsn >= untilLsn) {
        // Stopping early: what follows is not examined, so it is not judged torn either.
        info.committedBytes = buf.length;
        break;
      }
      offset = marker.next;
    } else {
      const last = group.count > 0 ? group.frames[group.count - 1].lsn : info.lastLsn;
      if (frame.lsn !== last + 1) break;
      group.count++;
      offset = frame.next;
    }
  }
  return info;
}

function copyFrame(from: FrameView, to: FrameView): void {
  to.offset = from.offset;
  to.lsn = from.lsn;
  to.type = from.type;
  to.version = from.version;
  to.flags = from.flags;
  to.crc = from.crc;
  to.payloadStart = from.payloadStart;
  to.payloadEnd = from.payloadEnd;
  to.next = from.next;
}

/** Whether a valid commit marker for `at.lsn`, carrying `at.chain`, ends exactly at `at.offset`. */
function resumable(buf: Buffer, at: LogPosition): boolean {
  if (at.offset > buf.length) return false;
  return COMMIT_FRAME_SIZES.some((size) => {
    const markerStart = at.offset - alignUp(size);
    if (markerStart < SEGMENT_HEADER_BYTES) return false;
    const parsed = parseFrame(buf, markerStart, buf.length);
    if (!parsed.ok || !isCommitMarker(parsed.frame) || parsed.frame.lsn !== at.lsn) return false;
    return parsed.frame.next === at.offset && readCommitPayload(buf, parsed.frame)?.chain === at.chain;
  });
}

function commitGroup(
  buf: Buffer,
  marker: FrameView,
  group: PendingGroup,
  info: SegmentInfo,
  afterLsn: number,
  untilLsn: number,
  onRecord: ScanOptions['onRecord'],
  record: LogRecord,
  checksumAfterLsn: number,
): boolean {
  const payload = readCommitPayload(buf, marker);
  const frames = group.frames;
  const count = group.count;
  if (!payload || count === 0 || payload.recordCount !== count) return false;
  if (frames[0].lsn !== payload.firstLsn || frames[count - 1].lsn !== marker.lsn) return false;
  if (!groupIntact(buf, frames, count, marker, payload, checksumAfterLsn)) return false;
  let chain = info.chainEnd;
  for (let i = 0; i < count; i++) chain = chainStep(chain, frames[i].crc);
  if (chain !== payload.chain) return false;
  // Counts by type in runs (a group is mostly one type): two Map operations per record added up in replay.
  let runType = -1;
  let runLength = 0;
  for (let i = 0; i < count; i++) {
    const frame = frames[i];
    if (frame.type !== runType) {
      if (runLength > 0) info.recordsByType.set(runType, (info.recordsByType.get(runType) ?? 0) + runLength);
      runType = frame.type;
      runLength = 0;
    }
    runLength++;
    if (onRecord && frame.lsn > afterLsn && frame.lsn <= untilLsn) {
      record.lsn = frame.lsn;
      record.type = frame.type;
      record.version = frame.version;
      record.flags = frame.flags;
      record.buf = buf;
      record.payloadStart = frame.payloadStart;
      record.payloadEnd = frame.payloadEnd;
      onRecord(record);
    }
  }
  if (runLength > 0) info.recordsByType.set(runType, (info.recordsByType.get(runType) ?? 0) + runLength);
  info.records += count;
  info.groups += 1;
  info.lastLsn = marker.lsn;
  info.chainEnd = chain;
  group.count = 0;
  return true;
}

/**
 * Decides whether the bytes after the last committed group are a torn write (never acknowledged) or damage
 * to acknowledged data. The writer starts a group's write only after the previous group's fdatasync, so a
 * valid group *after* a damaged one proves the damaged one was durable: that is corruption. For the final
 * group, a torn write leaves whole sectors of old content (zeros, in an append-only file) or a frame running
 * past the end of the file; a complete frame whose checksum fails with no such sign is a flipped bit.
 */
function classifyDamage(file: string, buf: Buffer, info: SegmentInfo, laterSegments: Buffer[]): TornTail {
  const start = info.committedBytes;
  let offset = start;
  let uncommitted = 0;
  let reason = 'uncommitted records after the last commit marker';
  let completeButBad = false;
  while (offset < buf.length) {
    const parsed = parseFrame(buf, offset, buf.length);
    if (!parsed.ok) {
      reason = parsed.reason;
      completeButBad = parsed.reason === 'frame checksum mismatch' || parsed.reason.startsWith('reserved');
      break;
    }
    if (isCommitMarker(parsed.frame)) {
      reason = 'commit marker does not match its group';
      completeButBad = true;
      break;
    }
    uncommitted++;
    offset = parsed.frame.next;
  }
  const laterMarker = findCommitMarkerAfter(buf, offset + FRAME_ALIGNMENT, info.lastLsn);
  const laterData = laterSegments.some(
    (content) =>
      parseSegmentHeader(content).ok && writtenEnd(content, SEGMENT_HEADER_BYTES) > SEGMENT_HEADER_BYTES,
  );
  if (
    laterData ||
    (laterMarker !== undefined && laterMarker.next < buf.length && validFrameAt(buf, laterMarker.next))
  ) {
    throw corruption(file, offset, `${reason}, yet later groups were committed`, info.lastLsn);
  }
  if (uncommitted > 0 && markerWithDamagedLength(buf, offset, info.lastLsn)) {
    // The length field is the one part of a frame its checksum does not cover. A commit marker whose body
    // verifies at the standard size ends a complete group: the group was written whole, so this is a
    // flipped bit in what may have been acknowledged, not a write cut short.
    throw corruption(
      file,
      offset,
      `${reason}: the length of a commit marker whose body verifies`,
      info.lastLsn,
      'the group is complete; only its commit marker length is damaged',
    );
  }
  // A torn write's missing sectors lie inside the write that was cut: look for them only in the damaged
  // frame's own bytes (or up to the marker that ends its group), never in a later write's zeros.
  const damageEnd = completeButBad
    ? Math.min(buf.length, offset + alignUp(buf.readUInt32LE(offset)))
    : laterMarker
      ? laterMarker.offset
      : Math.min(buf.length, offset + 4096);
  if ((completeButBad || laterMarker) && !hasZeroSector(buf, offset, damageEnd)) {
    throw corruption(
      file,
      offset,
      `${reason} in the final group`,
      info.lastLsn,
      'the damaged frame is complete, with no unwritten sector: a flipped bit in data that may have been acknowledged',
    );
  }
  return {
    file,
    offset: start,
    discardedBytes: buf.length - start,
    uncommittedRecords: uncommitted,
    reason,
    deleteFile: false,
  };
}

function markerWithDamagedLength(buf: Buffer, offset: number, lastLsn: number): boolean {
  return COMMIT_FRAME_SIZES.some((size) => {
    if (offset + size > buf.length) return false;
    if (buf.readUInt32LE(offset) === size) return false;
    if (buf.readUInt16LE(offset + 16) !== COMMIT_MARKER_TYPE || buf.readUInt16LE(offset + 22) !== 0)
      return false;
    if (crc32c(buf, offset + 8, offset + size) !== buf.readUInt32LE(offset + 4)) return false;
    return readU64(buf, offset + 8) > lastLsn;
  });
}

function validFrameAt(buf: Buffer, offset: number): boolean {
  return parseFrame(buf, offset, buf.length).ok;
}

function findCommitMarkerAfter(buf: Buffer, from: number, lastLsn: number): FrameView | undefined {
  for (let offset = from; offset + 24 <= buf.length; offset += FRAME_ALIGNMENT) {
    // Cheap structural checks first: a checksum at every aligned offset of a large damaged file is slow.
    if (buf.readUInt16LE(offset + 16) !== COMMIT_MARKER_TYPE || buf.readUInt16LE(offset + 22) !== 0) continue;
    const parsed = parseFrame(buf, offset, buf.length);
    if (parsed.ok && isCommitMarker(parsed.frame) && parsed.frame.lsn > lastLsn) return parsed.frame;
  }
  return undefined;
}

function hasZeroSector(buf: Buffer, from: number, to: number): boolean {
  // A torn write loses whole sectors. A sector the damaged range touches is unwritten if it reads as zeros
  // from the damage start (or its own start) to its end, or to the end of the file: not merely where the
  // damaged frame's bytes happen to be zero (a record's small numbers are), with data after them.
  for (let s = Math.floor(from / SECTOR_BYTES) * SECTOR_BYTES; s < to; s += SECTOR_BYTES) {
    if (isZero(buf, Math.max(s, from), Math.min(buf.length, s + SECTOR_BYTES))) return true;
  }
  return false;
}

function isZero(buf: Buffer, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}
