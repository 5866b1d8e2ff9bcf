import { AssertionFailure } from '../errors.ts';
import { readU64 } from '../util/bin.ts';
import { crc32c, crc32cU32 } from './crc32c.ts';
import {
  alignUp,
  COMMIT_MARKER_TYPE,
  COMMIT_PAYLOAD_BYTES,
  COMMIT_PAYLOAD_BYTES_V1,
  FRAME_BYTES_MAX,
  FRAME_HEADER_BYTES,
  LOG_FORMAT_VERSION,
  LOG_FORMAT_VERSION_MIN,
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAGIC,
} from './format.ts';

/** A decoded frame header; the payload is `buf[payloadStart, payloadEnd)`. */
export interface FrameView {
  offset: number;
  lsn: number;
  type: number;
  version: number;
  flags: number;
  crc: number;
  payloadStart: number;
  payloadEnd: number;
  /** Offset of the next frame (aligned). */
  next: number;
}

let viewBuf: Uint8Array | undefined;
let view: DataView | undefined;
/** A DataView of `buf`, reused while callers keep passing the same buffer (the writer's, a segment's). */
function viewOf(buf: Uint8Array): DataView {
  if (buf !== viewBuf || view === undefined) {
    viewBuf = buf;
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return view;
}

/**
 * Writes a frame header at `start` for a payload already in `buf[start + 24, end)`, all but its CRC (the
 * writer seals a whole group's at once: group-seal.ts).
 */
export function writeFrameHeader(
  buf: Buffer,
  start: number,
  end: number,
  lsn: number,
  type: number,
  version: number,
  flags: number,
): void {
  const length = end - start;
  if (length < FRAME_HEADER_BYTES || length > FRAME_BYTES_MAX) {
    throw new AssertionFailure(`frame length ${length} out of range`);
  }
  const v = viewOf(buf);
  v.setUint32(start, length, true);
  v.setUint32(start + 8, lsn >>> 0, true);
  v.setUint32(start + 12, Math.floor(lsn / 0x1_0000_0000), true);
  v.setUint16(start + 16, type, true);
  v.setUint16(start + 18, version, true);
  v.setUint16(start + 20, flags, true);
  v.setUint16(start + 22, 0, true);
}

/** `writeFrameHeader` with the CRC too (commit markers, tools, tests); returns the CRC. */
export function sealFrame(...header: Parameters<typeof writeFrameHeader>): number {
  writeFrameHeader(...header);
  const [buf, start, end] = header;
  const crc = crc32c(buf, start + 8, end);
  viewOf(buf).setUint32(start + 4, crc, true);
  return crc;
}

export type FrameParse = { ok: true; frame: FrameView } | { ok: false; reason: string };

/**
 * Parses and verifies the frame at `offset` of `buf[0, end)`. Never throws on bad bytes. A data frame at or
 * below `checksumAfterLsn` is parsed without verifying its checksum (recovery does not read records a
 * snapshot covers; `engram verify` checks every frame); commit markers are always verified.
 */
export function parseFrame(buf: Buffer, offset: number, end: number, checksumAfterLsn = -1): FrameParse {
  const frame = newFrameView();
  const failure = readFrameInto(buf, offset, end, checksumAfterLsn, frame);
  return failure === undefined ? { ok: true, frame } : { ok: false, reason: failure };
}

export function newFrameView(): FrameView {
  return {
    offset: 0,
    lsn: 0,
    type: 0,
    version: 0,
    flags: 0,
    crc: 0,
    payloadStart: 0,
    payloadEnd: 0,
    next: 0,
  };
}

/**
 * `parseFrame` into a caller's FrameView (scans reuse a pool of them: one object per frame adds up over
 * millions): returns undefined when the frame is valid, else why not (then `out` is unspecified).
 */
export function readFrameInto(
  buf: Buffer,
  offset: number,
  end: number,
  checksumAfterLsn: number,
  out: FrameView,
): string | undefined {
  if (offset + FRAME_HEADER_BYTES > end) return 'incomplete frame header';
  const v = viewOf(buf);
  const length = v.getUint32(offset, true);
  if (length === 0) return 'zero frame length (end of written data)';
  if (length < FRAME_HEADER_BYTES || length > FRAME_BYTES_MAX) return `impossible frame length ${length}`;
  if (offset + length > end) return `frame of ${length} bytes runs past the end of the file`;
  const crc = v.getUint32(offset + 4, true);
  const lsn = v.getUint32(offset + 12, true) * 0x1_0000_0000 + v.getUint32(offset + 8, true);
  const type = v.getUint16(offset + 16, true);
  if (
    (lsn > checksumAfterLsn || type === COMMIT_MARKER_TYPE) &&
    crc32c(buf, offset + 8, offset + length) !== crc
  ) {
    return 'frame checksum mismatch';
  }
  if (v.getUint16(offset + 22, true) !== 0) return 'reserved frame bytes are not zero';
  out.offset = offset;
  out.lsn = lsn;
  out.type = type;
  out.version = v.getUint16(offset + 18, true);
  out.flags = v.getUint16(offset + 20, true);
  out.crc = crc;
  out.payloadStart = offset + FRAME_HEADER_BYTES;
  out.payloadEnd = offset + length;
  out.next = offset + alignUp(length);
  return undefined;
}

export interface CommitPayload {
  firstLsn: number;
  recordCount: number;
  chain: number;
  /** CRC-32C of the group's frame bytes; undefined in format-1 markers, which did not carry it. */
  groupCrc: number | undefined;
}

export function isCommitMarker(frame: FrameView): boolean {
  return frame.type === COMMIT_MARKER_TYPE;
}

export function readCommitPayload(buf: Buffer, frame: FrameView): CommitPayload | undefined {
  const size = frame.payloadEnd - frame.payloadStart;
  if (size !== COMMIT_PAYLOAD_BYTES && size !== COMMIT_PAYLOAD_BYTES_V1) return undefined;
  return {
    firstLsn: readU64(buf, frame.payloadStart),
    recordCount: buf.readUInt32LE(frame.payloadStart + 8),
    chain: buf.readUInt32LE(frame.payloadStart + 12),
    groupCrc: size === COMMIT_PAYLOAD_BYTES ? buf.readUInt32LE(frame.payloadStart + 16) : undefined,
  };
}

/**
 * Whether the `count` frames before `marker` are intact: by the group checksum when the marker has one (any
 * mismatch fails, even one only in padding), else frame by frame. What a snapshot covers (at or below
 * `checksumAfterLsn`) is not checked: a group wholly below it, or in a format-1 group, its frames below it.
 */
export function groupIntact(
  buf: Buffer,
  frames: readonly FrameView[],
  count: number,
  marker: FrameView,
  payload: CommitPayload,
  checksumAfterLsn: number,
): boolean {
  if (count === 0) return false;
  if (marker.lsn <= checksumAfterLsn) return true; // wholly covered by a snapshot: not read, not checked
  if (payload.groupCrc !== undefined)
    return crc32c(buf, frames[0].offset, marker.offset) === payload.groupCrc;
  for (let i = 0; i < count; i++) {
    const f = frames[i];
    if (f.lsn > checksumAfterLsn && crc32c(buf, f.offset + 8, f.payloadEnd) !== f.crc) return false;
  }
  return true;
}

/** Folds one frame CRC into a chain value: CRC-32C of its 4 little-endian bytes, continuing `chain`. */
export function chainStep(chain: number, frameCrc: number): number {
  return crc32cU32(frameCrc, chain);
}

export interface SegmentHeader {
  formatVersion: number;
  epoch: number;
  baseLsn: number;
  chain: number;
}

export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(header.formatVersion, 8);
  buf.writeUInt32LE(header.epoch, 12);
  buf.writeUInt32LE(header.baseLsn >>> 0, 16);
  buf.writeUInt32LE(Math.floor(header.baseLsn / 0x1_0000_0000), 20);
  buf.writeUInt32LE(header.chain, 24);
  buf.writeUInt32LE(crc32c(buf, 0, 28), 28);
  return buf;
}

export type SegmentHeaderParse = { ok: true; header: SegmentHeader } | { ok: false; reason: string };

export function parseSegmentHeader(buf: Buffer): SegmentHeaderParse {
  if (buf.length < SEGMENT_HEADER_BYTES) return { ok: false, reason: 'file shorter than a segment header' };
  if (!buf.subarray(0, 8).equals(SEGMENT_MAGIC))
    return { ok: false, reason: 'bad magic (not an Engram log segment)' };
  if (crc32c(buf, 0, 28) !== buf.readUInt32LE(28))
    return { ok: false, reason: 'segment header checksum mismatch' };
  const formatVersion = buf.readUInt32LE(8);
  if (formatVersion < LOG_FORMAT_VERSION_MIN || formatVersion > LOG_FORMAT_VERSION) {
    return {
      ok: false,
      reason: `unsupported log format version ${formatVersion} (this build reads ${LOG_FORMAT_VERSION_MIN}..${LOG_FORMAT_VERSION})`,
    };
  }
  return {
    ok: true,
    header: {
      formatVersion,
      epoch: buf.readUInt32LE(12),
      baseLsn: readU64(buf, 16),
      chain: buf.readUInt32LE(24),
    },
  };
}
