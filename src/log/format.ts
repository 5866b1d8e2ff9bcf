/**
 * The on-disk format of the Engram write-ahead log, byte by byte (all integers little-endian).
 *
 * A log directory holds segment files named `wal-<baseLsn, 20 decimal digits>.log`, ordered by base LSN.
 *
 * Segment header (SEGMENT_HEADER_BYTES = 32):
 *   0  8  magic "ENGRAMWL"
 *   8  4  format version (LOG_FORMAT_VERSION)
 *  12  4  epoch (bumped by failover; 0 for a single node)
 *  16  8  base LSN: the first LSN this segment may contain
 *  24  4  chain value at the start of this segment (see commit markers)
 *  28  4  CRC-32C of bytes [0, 28)
 *
 * Then frames, each starting at an 8-byte aligned offset (FRAME_ALIGNMENT):
 *   0  4  frame length in bytes, header included, padding excluded (>= FRAME_HEADER_BYTES)
 *   4  4  CRC-32C of bytes [8, frame length)
 *   8  8  LSN
 *  16  2  type (RecordType; COMMIT_MARKER_TYPE for commit markers)
 *  18  2  type version
 *  20  2  flags (FLAG_IGNORABLE: replay may skip the record if its type is unknown)
 *  22  2  reserved, 0
 *  24  .  payload
 *   .  .  zero padding to the next multiple of 8
 *
 * Every group commit (one write + fdatasync) ends with a commit marker frame whose LSN is the last record's
 * LSN and whose payload is (COMMIT_PAYLOAD_BYTES = 24; format version 1 had only the first 16):
 *   0  8  first LSN of the group
 *   8  4  record count of the group
 *  12  4  chain value: CRC-32C over the 4-byte LE CRCs of the group's frames, seeded with the previous
 *         group's chain value (or the segment header's). It ties every group to all groups before it.
 *  16  4  group checksum: CRC-32C of every byte of the group's frames (headers and padding included), from
 *         the first frame's offset to the marker's. Recovery checks a group with one native call instead of
 *         one per frame, and falls back to the frame checksums to find damage.
 *  20  4  end mark COMMIT_END_MARK (format 3; 0 in formats 1-2): the last bytes of every group's write,
 *         none of them zero, nor made zero by one flipped bit
 *
 * A record is committed iff it is followed by a valid commit marker covering it. Records after the last
 * valid commit marker were never acknowledged at the `disk` ack point and form the torn tail.
 *
 * Format 3 segments may be preallocated: created as a file of zeros (SegmentPreallocator), so a segment ends
 * in zeros after its last commit marker. Zeros to the end of the file are space never written, not a torn
 * tail; and since a complete group's write ends in the non-zero end mark, where the written bytes stop
 * (the last non-zero byte) is where a cut-off write stopped, as the end of the file is for an append.
 * Formats 1-2 (appended, markers ending in zeros) are judged by the end of the file alone.
 */
import { lsnFileName, parseLsnFileName } from '../util/lsn-file-name.ts';

export const SEGMENT_MAGIC = Buffer.from('ENGRAMWL', 'latin1');
export const LOG_FORMAT_VERSION = 3;
/** First format whose segments may be preallocated (zero tails) and whose markers end in COMMIT_END_MARK. */
export const LOG_FORMAT_VERSION_PREALLOCATED = 3;
/** Every byte 0xA5 (four bits set): a single bit flip cannot make one zero. */
export const COMMIT_END_MARK = 0xa5a5a5a5;
/** Oldest segment format this build reads (version 1: commit markers without the group checksum). */
export const LOG_FORMAT_VERSION_MIN = 1;
export const SEGMENT_HEADER_BYTES = 32;
export const FRAME_HEADER_BYTES = 24;
export const FRAME_ALIGNMENT = 8;
export const COMMIT_MARKER_TYPE = 0xffff;
export const COMMIT_PAYLOAD_BYTES = 24;
export const COMMIT_PAYLOAD_BYTES_V1 = 16;
/** Commit marker frame sizes, newest first (a frame's length tells which it is). */
export const COMMIT_FRAME_SIZES = [24 + COMMIT_PAYLOAD_BYTES, 24 + COMMIT_PAYLOAD_BYTES_V1] as const;
export const FLAG_IGNORABLE = 0x1;
/** A frame larger than this is corruption or a bug: no record may be that big. */
export const FRAME_BYTES_MAX = 64 * 1024 * 1024;
/** Types at and above this are reserved for the engine itself. */
export const RESERVED_TYPE_MIN = 0xff00;

export const SEGMENT_PREFIX = 'wal-';
export const SEGMENT_SUFFIX = '.log';

export function segmentName(baseLsn: number): string {
  return lsnFileName(SEGMENT_PREFIX, baseLsn, SEGMENT_SUFFIX);
}

/** The base LSN of a segment file name, or undefined if the name is not a segment's. */
export function parseSegmentName(name: string): number | undefined {
  return parseLsnFileName(name, SEGMENT_PREFIX, SEGMENT_SUFFIX);
}

export function alignUp(value: number): number {
  return Math.ceil(value / FRAME_ALIGNMENT) * FRAME_ALIGNMENT;
}
