import * as path from 'node:path';
import { assert, invalidArgument } from '../errors.ts';
import { asBuffer, type FileSystem } from '../storage/file-system.ts';
import { readU64 } from '../util/bin.ts';
import {
  alignUp,
  FRAME_ALIGNMENT,
  FRAME_BYTES_MAX,
  FRAME_HEADER_BYTES,
  LOG_FORMAT_VERSION_PREALLOCATED,
  SEGMENT_HEADER_BYTES,
} from './format.ts';
import {
  chainStep,
  type FrameView,
  groupIntact,
  isCommitMarker,
  parseFrame,
  parseSegmentHeader,
  readCommitPayload,
} from './frame.ts';
import { writtenEnd } from './preallocation.ts';
import { type LogRecord, listSegments } from './reader.ts';

/**
 * Repair: the explicit, consented way out of log corruption (DESIGN.md §4). Opening a log never does this;
 * it only cuts torn tails, which were never acknowledged.
 *
 * `scanTolerant` walks the log like `scanLog` (frame checksums, LSN sequence, commit markers, the chain
 * across groups and segments) but, instead of refusing, stops at the first thing that does not verify and
 * reports it. Everything before that point is a chain of verified groups; the log may be cut after any of
 * them, and only there, because a group is all-or-nothing: its commit marker is what acknowledged it.
 * Nothing after the damage can be kept, since the chain that ties it to the verified prefix is broken.
 */

/** A committed group that verified: cutting the log right after it leaves a valid log. */
export interface VerifiedGroup {
  firstLsn: number;
  lastLsn: number;
  /** Offset of the group's first frame in its segment. */
  startOffset: number;
  /** Offset right after the group's commit marker (padding included): the segment's length if cut here. */
  endOffset: number;
}

export type RepairSegmentState =
  /** Every byte verified. */
  | 'verified'
  /** The damage is in this segment: it verified up to `verifiedBytes`. */
  | 'damaged'
  /** After the damage: not verified (its chain cannot be tied to the verified prefix). */
  | 'unverified';

export interface RepairSegment {
  name: string;
  file: string;
  baseLsn: number;
  fileBytes: number;
  state: RepairSegmentState;
  groups: VerifiedGroup[];
  records: number;
  recordsByType: Map<number, number>;
  /** End of the verified data: the last verified group's end, or the header's end (0 if it did not verify). */
  verifiedBytes: number;
}

export interface LogDamage {
  file: string;
  /** Where verification stopped: the frame (or header field) that does not verify. */
  offset: number;
  reason: string;
}

export interface TolerantScan {
  dir: string;
  /** Every segment file, in base LSN order. */
  segments: RepairSegment[];
  /** First LSN of the log (base of the first segment); 1 for an empty directory. */
  firstLsn: number;
  /** Last LSN of the verified prefix (firstLsn - 1 if no group verified). */
  lastLsn: number;
  /** The first thing that did not verify; undefined when the whole log verified. */
  damage: LogDamage | undefined;
  /**
   * Best effort, past the verified prefix: frames whose own checksum still holds, with an LSN above
   * `lastLsn`. They cannot be kept, but they tell the operator how much a cut loses.
   */
  unverified: { records: number; lsnMax: number | undefined; bytes: number };
}

export interface TolerantScanOptions {
  /** Called for every record of a verified group, in LSN order; `buf` is only valid during the call. */
  onRecord?: (record: LogRecord) => void;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

/**
 * Past the damage, a candidate frame's LSN must lie within this distance above the verified prefix: a
 * cheap filter that spares a checksum over garbage lengths at every aligned offset.
 */
const UNVERIFIED_LSN_WINDOW = 1_000_000_000_000;

export async function scanTolerant(
  fs: FileSystem,
  dir: string,
  options: TolerantScanOptions = {},
): Promise<TolerantScan> {
  const entries = await listSegments(fs, dir);
  const sizes = await Promise.all(entries.map((e) => fileSize(fs, path.join(dir, e.name))));
  const bytesTotal = sizes.reduce((a, b) => a + b, 0);
  const scan: TolerantScan = {
    dir,
    segments: [],
    firstLsn: entries.length > 0 ? entries[0].baseLsn : 1,
    lastLsn: entries.length > 0 ? entries[0].baseLsn - 1 : 0,
    damage: undefined,
    unverified: { records: 0, lsnMax: undefined, bytes: 0 },
  };
  let chain: number | undefined;
  let bytesDone = 0;
  for (let i = 0; i < entries.length; i++) {
    const file = path.join(dir, entries[i].name);
    const buf = asBuffer(await fs.readFile(file));
    const segment: RepairSegment = {
      name: entries[i].name,
      file,
      baseLsn: entries[i].baseLsn,
      fileBytes: buf.length,
      state: 'unverified',
      groups: [],
      records: 0,
      recordsByType: new Map(),
      verifiedBytes: 0,
    };
    scan.segments.push(segment);
    if (scan.damage) {
      countUnverified(scan, buf, SEGMENT_HEADER_BYTES);
    } else {
      const headerDamage = checkHeader(buf, segment, i === 0 ? undefined : scan.lastLsn, chain);
      if (headerDamage) {
        segment.state = 'damaged';
        scan.damage = { file, ...headerDamage };
        countUnverified(scan, buf, SEGMENT_HEADER_BYTES);
      } else {
        chain = walkGroups(scan, segment, buf, buf.readUInt32LE(24), options.onRecord);
        if (segment.verifiedBytes < buf.length) countUnverified(scan, buf, segment.verifiedBytes);
      }
    }
    bytesDone += buf.length;
    options.onProgress?.(bytesDone, bytesTotal);
  }
  return scan;
}

/** Checks the header and its continuity with the previous segment; returns the damage, if any. */
function checkHeader(
  buf: Buffer,
  segment: RepairSegment,
  previousLastLsn: number | undefined,
  previousChain: number | undefined,
): Omit<LogDamage, 'file'> | undefined {
  const parsed = parseSegmentHeader(buf);
  if (!parsed.ok) return { offset: 0, reason: `segment header: ${parsed.reason}` };
  const { baseLsn, chain } = parsed.header;
  if (baseLsn !== segment.baseLsn) {
    return { offset: 16, reason: `header base LSN ${baseLsn} does not match the file name` };
  }
  if (previousLastLsn !== undefined && baseLsn !== previousLastLsn + 1) {
    return {
      offset: 16,
      reason: `segment starts at LSN ${baseLsn} but the log before it ends at LSN ${previousLastLsn} (gap)`,
    };
  }
  if (previousChain !== undefined && chain !== previousChain) {
    return {
      offset: 24,
      reason: `segment chain ${chain} does not continue the previous segment (${previousChain})`,
    };
  }
  segment.verifiedBytes = SEGMENT_HEADER_BYTES;
  return undefined;
}

/** Verifies groups from the header on; stops at the first that does not verify. Returns the chain value. */
function walkGroups(
  scan: TolerantScan,
  segment: RepairSegment,
  buf: Buffer,
  chainStart: number,
  onRecord: TolerantScanOptions['onRecord'],
): number {
  let chain = chainStart;
  let frames: FrameView[] = [];
  let offset = SEGMENT_HEADER_BYTES;
  const preallocatable = buf.readUInt32LE(8) >= LOG_FORMAT_VERSION_PREALLOCATED;
  let groupStart = offset;
  const damaged = (at: number, reason: string): number => {
    segment.state = 'damaged';
    scan.damage = { file: segment.file, offset: at, reason };
    return chain;
  };
  while (offset < buf.length) {
    // Zeros to the end of the file after a complete group: a preallocated segment's unwritten space.
    if (frames.length === 0 && preallocatable && writtenEnd(buf, offset) === offset) break;
    const parsed = parseFrame(buf, offset, buf.length);
    if (!parsed.ok) return damaged(offset, parsed.reason);
    const frame = parsed.frame;
    if (!isCommitMarker(frame)) {
      const expected = (frames.length > 0 ? frames[frames.length - 1].lsn : scan.lastLsn) + 1;
      if (frame.lsn !== expected)
        return damaged(offset, `frame has LSN ${frame.lsn} where ${expected} was expected`);
      frames.push(frame);
      offset = frame.next;
      continue;
    }
    const payload = readCommitPayload(buf, frame);
    let next = chain;
    for (const f of frames) next = chainStep(next, f.crc);
    const matches =
      payload !== undefined &&
      frames.length > 0 &&
      payload.recordCount === frames.length &&
      payload.firstLsn === frames[0].lsn &&
      frame.lsn === frames[frames.length - 1].lsn &&
      payload.chain === next &&
      groupIntact(buf, frames, frames.length, frame, payload, -1);
    if (!matches) return damaged(offset, 'commit marker does not match its group');
    for (const f of frames) {
      segment.recordsByType.set(f.type, (segment.recordsByType.get(f.type) ?? 0) + 1);
      onRecord?.({
        lsn: f.lsn,
        type: f.type,
        version: f.version,
        flags: f.flags,
        buf,
        payloadStart: f.payloadStart,
        payloadEnd: f.payloadEnd,
      });
    }
    segment.groups.push({
      firstLsn: frames[0].lsn,
      lastLsn: frame.lsn,
      startOffset: groupStart,
      endOffset: frame.next,
    });
    segment.records += frames.length;
    segment.verifiedBytes = frame.next;
    scan.lastLsn = frame.lsn;
    chain = next;
    frames = [];
    offset = frame.next;
    groupStart = offset;
  }
  if (frames.length > 0) {
    return damaged(
      groupStart,
      `${frames.length} record(s) after the last commit marker were never committed`,
    );
  }
  segment.state = 'verified';
  return chain;
}

/** Counts frames that still checksum in `buf[from, end)`, with an LSN above the verified prefix. */
function countUnverified(scan: TolerantScan, buf: Buffer, from: number): void {
  scan.unverified.bytes += Math.max(0, buf.length - from);
  const lsnFloor = scan.lastLsn;
  let offset = alignUp(from);
  while (offset + FRAME_HEADER_BYTES <= buf.length) {
    const length = buf.readUInt32LE(offset);
    const plausible =
      length >= FRAME_HEADER_BYTES &&
      length <= FRAME_BYTES_MAX &&
      offset + length <= buf.length &&
      buf.readUInt16LE(offset + 22) === 0;
    const lsn = plausible ? readU64(buf, offset + 8) : 0;
    if (plausible && lsn > lsnFloor && lsn <= lsnFloor + UNVERIFIED_LSN_WINDOW) {
      const parsed = parseFrame(buf, offset, buf.length);
      if (parsed.ok) {
        if (!isCommitMarker(parsed.frame)) {
          scan.unverified.records++;
          scan.unverified.lsnMax = Math.max(scan.unverified.lsnMax ?? 0, lsn);
        }
        offset = parsed.frame.next;
        continue;
      }
    }
    offset += FRAME_ALIGNMENT;
  }
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
 * The LSNs after which the log may be cut, ascending: the end of every verified group, and the start of
 * the log (firstLsn - 1) when the first segment's header verified.
 */
export function cutPoints(scan: TolerantScan): number[] {
  const points: number[] = [];
  if (scan.segments.length > 0 && scan.segments[0].verifiedBytes > 0) points.push(scan.firstLsn - 1);
  for (const segment of scan.segments) for (const group of segment.groups) points.push(group.lastLsn);
  return points;
}

export interface TruncatePlan {
  dir: string;
  /** The log keeps every record with an LSN up to this one, and nothing after it. */
  lsn: number;
  /** The segment cut right after the group ending at `lsn`; undefined when it already ends there. */
  truncate: { file: string; keepBytes: number; fileBytes: number } | undefined;
  /** Later segments, deleted whole. */
  deletes: { file: string; bytes: number }[];
  /** Verified (committed) records with an LSN above `lsn` that the cut removes. */
  verifiedRecordsLost: number;
  /** Past the damage: records that still checksum but cannot be verified (best effort). */
  unverifiedRecordsLost: number;
  /** The highest LSN seen in what the cut removes, if any. */
  lsnMaxLost: number | undefined;
  /**
   * Records the cut removes, at least: LSNs are consecutive, so every LSN up to `lsnMaxLost` was a record,
   * including the ones too damaged to be counted. More may have been beyond what still checksums.
   */
  recordsLostMin: number;
  bytesRemoved: number;
}

export type PlanOutcome =
  | { ok: true; plan: TruncatePlan }
  /** `lsn` is not a valid cut; `below`/`above` are the nearest valid choices around it. */
  | { ok: false; reason: string; below: number | undefined; above: number | undefined };

/** Plans the removal of every record with LSN > `lsn`. Changes nothing. */
export function planTruncateAfter(scan: TolerantScan, lsn: number): PlanOutcome {
  const points = cutPoints(scan);
  if (!points.includes(lsn)) {
    const below = points.filter((p) => p < lsn).at(-1);
    const above = points.find((p) => p > lsn);
    let reason: string;
    if (points.length === 0) {
      reason = scan.segments.length === 0 ? 'the log is empty' : 'no part of the log verifies';
    } else if (lsn > scan.lastLsn) {
      reason = `LSN ${lsn} is past the verified log, which ends at LSN ${scan.lastLsn}`;
    } else {
      reason = `LSN ${lsn} is not the last LSN of a committed group (the log can only be cut after a commit marker)`;
    }
    return { ok: false, reason, below, above };
  }
  const at = holdingSegment(scan, lsn);
  const segment = scan.segments[at];
  const keepBytes = segment.groups.find((g) => g.lastLsn === lsn)?.endOffset ?? SEGMENT_HEADER_BYTES;
  const deletes = scan.segments.slice(at + 1).map((s) => ({ file: s.file, bytes: s.fileBytes }));
  let verifiedRecordsLost = 0;
  let lsnMaxLost: number | undefined;
  for (const s of scan.segments) {
    for (const group of s.groups) {
      if (group.lastLsn <= lsn) continue;
      verifiedRecordsLost += group.lastLsn - Math.max(group.firstLsn, lsn + 1) + 1;
      lsnMaxLost = Math.max(lsnMaxLost ?? 0, group.lastLsn);
    }
  }
  if (scan.unverified.lsnMax !== undefined) lsnMaxLost = Math.max(lsnMaxLost ?? 0, scan.unverified.lsnMax);
  const truncate =
    keepBytes < segment.fileBytes
      ? { file: segment.file, keepBytes, fileBytes: segment.fileBytes }
      : undefined;
  const bytesRemoved =
    (truncate ? truncate.fileBytes - truncate.keepBytes : 0) + deletes.reduce((a, d) => a + d.bytes, 0);
  return {
    ok: true,
    plan: {
      dir: scan.dir,
      lsn,
      truncate,
      deletes,
      verifiedRecordsLost,
      unverifiedRecordsLost: scan.unverified.records,
      lsnMaxLost,
      recordsLostMin: Math.max(verifiedRecordsLost + scan.unverified.records, (lsnMaxLost ?? lsn) - lsn),
      bytesRemoved,
    },
  };
}

/** Index of the segment holding the group that ends at `lsn` (the first segment for the log's start). */
function holdingSegment(scan: TolerantScan, lsn: number): number {
  for (let i = 0; i < scan.segments.length; i++) {
    if (scan.segments[i].groups.some((g) => g.lastLsn === lsn)) return i;
  }
  assert(lsn === scan.firstLsn - 1, `cut point ${lsn} has no segment`);
  return 0;
}

/** Whether the plan changes anything. */
export function planIsEmpty(plan: TruncatePlan): boolean {
  return plan.truncate === undefined && plan.deletes.length === 0;
}

/**
 * Carries out a plan. Later segments go first, newest first, so that a crash at any point leaves a
 * prefix of the log (never a hole), and running the same repair again finishes the job; then the segment
 * holding `lsn` is truncated. The truncated file and the directory are synced before this resolves.
 * Refuses (changing nothing) if any file's size differs from the scan: something is writing to the log.
 */
export async function applyTruncate(fs: FileSystem, plan: TruncatePlan): Promise<void> {
  const expected = [...plan.deletes.map((d) => ({ file: d.file, bytes: d.bytes }))];
  if (plan.truncate) expected.push({ file: plan.truncate.file, bytes: plan.truncate.fileBytes });
  for (const { file, bytes } of expected) {
    const now = await fileSize(fs, file);
    if (now !== bytes) {
      throw invalidArgument(
        `${file} is ${now} bytes but was ${bytes} when the log was scanned: something is writing to the log. ` +
          'Stop every process using this data directory, then run the repair again.',
        { file },
      );
    }
  }
  for (const d of [...plan.deletes].reverse()) await fs.unlink(d.file);
  if (plan.deletes.length > 0) await fs.syncDir(plan.dir);
  if (plan.truncate) {
    const handle = await fs.open(plan.truncate.file, 'readwrite');
    try {
      await handle.truncate(plan.truncate.keepBytes);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }
  await fs.syncDir(plan.dir);
}
