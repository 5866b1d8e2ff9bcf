/**
 * The on-disk format of an Engram snapshot file (`snap-<lsn, 20 digits>.snap`), little-endian:
 *
 * Header (SNAPSHOT_HEADER_BYTES = 64):
 *   0  8  magic "ENGRAMSN"
 *   8  4  format version (SNAPSHOT_FORMAT_VERSION)
 *  12  4  engine version (ENGINE_VERSION: major * 65536 + minor)
 *  16  8  snapshot LSN: the state is exactly the result of applying records 1..LSN
 *  24  8  created at (ms since the epoch, f64)
 *  32  8  state hash (hashState of [state, idempotency window], 16 hex digits as 8 bytes)
 *  40  4  log chain value at LSN
 *  44  4  byte offset in its segment just past LSN's commit marker (0: not recorded)
 *  48  8  base LSN of that segment (0: not recorded)
 *  56  4  reserved, 0
 *  60  4  CRC-32C of bytes [0, 60)
 Format 2 (written since decision 015):
 * The payload, P bytes, contiguous from offset 64, so that a mapped file's payload is used where it lies.
 * Chunk checksums: one u32 CRC-32C per SNAPSHOT_CHUNK_BYTES_MAX of payload (the last chunk shorter), that
 *   is ceil(P / SNAPSHOT_CHUNK_BYTES_MAX) of them.
 * Footer (SNAPSHOT_FOOTER_BYTES = 24): magic "ENGRAMSE" (8), u64 P (8), CRC-32C of the chunk checksums (4),
 *   CRC-32C of the footer's first 20 bytes (4).
 * The file is exactly 64 + P + 4 * chunks + 24 bytes.
 *
 * Format 1 (still read): after the header, chunks, each a u32 length (1..SNAPSHOT_CHUNK_BYTES_MAX), a u32
 * CRC-32C of the bytes, and the bytes; an end marker u32 0; a footer of magic "ENGRAMSE" (8), u64 chunk
 * count (8), u32 payload bytes modulo 2^32 (4), CRC-32C of the footer's first 20 bytes (4). Its payload is
 * moved together over the chunk headers when read, which writes every page of it.
 *
 * The payload (the chunks concatenated) is: the definition name (string), the last record time (f64),
 * the idempotency window, then the state in the definition's `stateCodec`.
 */
import { lsnFileName, parseLsnFileName } from '../util/lsn-file-name.ts';

export const SNAPSHOT_MAGIC = Buffer.from('ENGRAMSN', 'latin1');
export const SNAPSHOT_FOOTER_MAGIC = Buffer.from('ENGRAMSE', 'latin1');
/** The format written. */
export const SNAPSHOT_FORMAT_VERSION = 2;
/** The formats read. */
export const SNAPSHOT_FORMAT_VERSIONS_READ: readonly number[] = [1, 2];
export const ENGINE_VERSION = (0 << 16) | 1;
export const SNAPSHOT_HEADER_BYTES = 64;
export const SNAPSHOT_FOOTER_BYTES = 24;
export const SNAPSHOT_CHUNK_BYTES_MAX = 4 * 1024 * 1024;

const PREFIX = 'snap-';
const SUFFIX = '.snap';
export const SNAPSHOT_TEMP_SUFFIX = '.tmp';

export function snapshotName(lsn: number): string {
  return lsnFileName(PREFIX, lsn, SUFFIX);
}

export function parseSnapshotName(name: string): number | undefined {
  return parseLsnFileName(name, PREFIX, SUFFIX);
}
