import * as path from 'node:path';
import { EngramError } from '../errors.ts';
import { crc32c } from '../log/crc32c.ts';
import { asBuffer, type FileSystem, readImmutableFile } from '../storage/file-system.ts';
import { deletePaced } from '../storage/paced-delete.ts';
import { writePaced } from '../storage/paced-write.ts';
import { readU64 } from '../util/bin.ts';
import type { Pace } from '../util/pace.ts';
import {
  ENGINE_VERSION,
  SNAPSHOT_CHUNK_BYTES_MAX,
  SNAPSHOT_FOOTER_BYTES,
  SNAPSHOT_FOOTER_MAGIC,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_FORMAT_VERSIONS_READ,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_MAGIC,
  SNAPSHOT_TEMP_SUFFIX,
  snapshotName,
} from './format.ts';

export interface SnapshotHeader {
  formatVersion: number;
  engineVersion: number;
  lsn: number;
  createdAtMs: number;
  stateHash: string;
  chain: number;
  /**
   * Where the log continues after `lsn` (segment and byte offset), when the builder knew it: recovery then
   * starts reading there. Absent in snapshots that did not record it (the reserved bytes were zero).
   */
  logPosition?: { segmentBaseLsn: number; offset: number };
}

function writeU64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32LE(value >>> 0, offset);
  buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

export function encodeSnapshotHeader(
  header: Omit<SnapshotHeader, 'formatVersion' | 'engineVersion'>,
): Buffer {
  const buf = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
  SNAPSHOT_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(SNAPSHOT_FORMAT_VERSION, 8);
  buf.writeUInt32LE(ENGINE_VERSION, 12);
  writeU64(buf, header.lsn, 16);
  buf.writeDoubleLE(header.createdAtMs, 24);
  Buffer.from(header.stateHash, 'hex').copy(buf, 32, 0, 8);
  buf.writeUInt32LE(header.chain, 40);
  if (header.logPosition) {
    buf.writeUInt32LE(header.logPosition.offset, 44);
    writeU64(buf, header.logPosition.segmentBaseLsn, 48);
  }
  buf.writeUInt32LE(crc32c(buf, 0, 60), 60);
  return buf;
}

export function parseSnapshotHeader(
  buf: Buffer,
): { ok: true; header: SnapshotHeader } | { ok: false; reason: string } {
  if (buf.length < SNAPSHOT_HEADER_BYTES) return { ok: false, reason: 'file shorter than a snapshot header' };
  if (!buf.subarray(0, 8).equals(SNAPSHOT_MAGIC))
    return { ok: false, reason: 'bad magic (not an Engram snapshot)' };
  if (crc32c(buf, 0, 60) !== buf.readUInt32LE(60)) return { ok: false, reason: 'header checksum mismatch' };
  const formatVersion = buf.readUInt32LE(8);
  if (!SNAPSHOT_FORMAT_VERSIONS_READ.includes(formatVersion)) {
    return {
      ok: false,
      reason: `unsupported snapshot format version ${formatVersion} (this build reads ${SNAPSHOT_FORMAT_VERSIONS_READ.join(' and ')})`,
    };
  }
  return {
    ok: true,
    header: {
      formatVersion,
      engineVersion: buf.readUInt32LE(12),
      lsn: readU64(buf, 16),
      createdAtMs: buf.readDoubleLE(24),
      stateHash: buf.subarray(32, 40).toString('hex'),
      chain: buf.readUInt32LE(40),
      logPosition:
        buf.readUInt32LE(44) > 0
          ? { segmentBaseLsn: readU64(buf, 48), offset: buf.readUInt32LE(44) }
          : undefined,
    },
  };
}

/**
 * Writes a snapshot crash-safely: to a temp file, fdatasync, rename over the final name, fsync the
 * directory. A crash at any point leaves either no snapshot or a complete, verified one under the name.
 */
export async function writeSnapshotFile(
  fs: FileSystem,
  dir: string,
  header: Omit<SnapshotHeader, 'formatVersion' | 'engineVersion'>,
  payload: Uint8Array | readonly Uint8Array[],
): Promise<{ file: string; bytes: number }> {
  const pieces = payload instanceof Uint8Array ? [payload] : payload;
  let payloadBytes = 0;
  for (const piece of pieces) payloadBytes += piece.length;
  await fs.mkdirp(dir);
  const file = path.join(dir, snapshotName(header.lsn));
  const temp = `${file}${SNAPSHOT_TEMP_SUFFIX}`;
  // A failed earlier attempt at this LSN: as big as a snapshot, so freed paced like one (see deletePaced).
  if (await fs.exists(temp)) await deletePaced(fs, temp);
  // O_DSYNC, chunk by chunk: each write is on disk when it returns, so no gigabyte of dirty pages builds up
  // for one final fdatasync, which would hold up the log's group commits on the same disk meanwhile.
  const handle = await fs.open(temp, 'create', { syncWrites: true });
  let position = 0;
  try {
    const head = encodeSnapshotHeader(header);
    await handle.write(head, 0, head.length, position);
    position += head.length;
    // The payload contiguous (a mapped snapshot is used where it lies), its chunks' checksums after it.
    const checksums: number[] = [];
    for (const chunk of payloadChunks(pieces, SNAPSHOT_CHUNK_BYTES_MAX)) {
      checksums.push(crc32c(chunk));
      await writePaced(handle, chunk, 0, chunk.length, position);
      position += chunk.length;
    }
    const tail = Buffer.alloc(4 * checksums.length + SNAPSHOT_FOOTER_BYTES);
    for (let i = 0; i < checksums.length; i++) tail.writeUInt32LE(checksums[i], 4 * i);
    const footer = 4 * checksums.length;
    SNAPSHOT_FOOTER_MAGIC.copy(tail, footer);
    writeU64(tail, payloadBytes, footer + 8);
    tail.writeUInt32LE(crc32c(tail, 0, footer), footer + 16);
    tail.writeUInt32LE(crc32c(tail, footer, footer + 20), footer + 20);
    await handle.write(tail, 0, tail.length, position);
    position += tail.length;
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, file);
  await fs.syncDir(dir);
  return { file, bytes: position };
}

/**
 * The payload cut into chunks of `chunkBytes` (the last one shorter). A chunk inside one piece is a view of
 * it; one that spans pieces is copied into a staging buffer, reused for the next such chunk (so each must be
 * written before the next is taken): the pieces of an image are columns of a few hundred KiB, and copying
 * them into one 4 MiB buffer at a time costs no fresh memory.
 */
function* payloadChunks(pieces: readonly Uint8Array[], chunkBytes: number): Generator<Uint8Array> {
  let staging: Uint8Array | undefined;
  let filled = 0;
  for (const piece of pieces) {
    let at = 0;
    while (at < piece.length) {
      if (filled === 0 && piece.length - at >= chunkBytes) {
        yield piece.subarray(at, at + chunkBytes);
        at += chunkBytes;
        continue;
      }
      staging ??= new Uint8Array(chunkBytes);
      const n = Math.min(chunkBytes - filled, piece.length - at);
      staging.set(piece.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === chunkBytes) {
        yield staging;
        filled = 0;
      }
    }
  }
  if (filled > 0) yield staging!.subarray(0, filled);
}

export interface LoadedSnapshot {
  file: string;
  header: SnapshotHeader;
  payload: Buffer;
  fileBytes: number;
}

type Invalid = (reason: string, offset: number) => EngramError;

/**
 * Reads and verifies a whole snapshot file; throws EngramError('snapshot_invalid') naming what is wrong.
 * Mapped when the file system can map files: a restart then costs no fresh memory for the snapshot.
 * `pace` is called after each chunk verified (a paced load's).
 */
export async function readSnapshotFile(fs: FileSystem, file: string, pace?: Pace): Promise<LoadedSnapshot> {
  const buf = asBuffer(await readImmutableFile(fs, file));
  const invalid: Invalid = (reason, offset) =>
    new EngramError('snapshot_invalid', `snapshot ${file} is invalid at offset ${offset}: ${reason}`, {
      file,
      offset,
    });
  const parsed = parseSnapshotHeader(buf);
  if (!parsed.ok) throw invalid(parsed.reason, 0);
  const payload =
    parsed.header.formatVersion === 1 ? verifiedPayloadV1(buf, invalid) : verifiedPayload(buf, invalid, pace);
  return { file, header: parsed.header, payload, fileBytes: buf.length };
}

/** Format 2: the footer first (it gives the payload's length), then the checksums, then every chunk. */
function verifiedPayload(buf: Buffer, invalid: Invalid, pace?: Pace): Buffer {
  const footer = buf.length - SNAPSHOT_FOOTER_BYTES;
  if (footer < SNAPSHOT_HEADER_BYTES)
    throw invalid('file ends before a footer (incomplete snapshot)', buf.length);
  if (!buf.subarray(footer, footer + 8).equals(SNAPSHOT_FOOTER_MAGIC)) {
    throw invalid('no footer magic at the end (incomplete snapshot, or trailing bytes)', footer);
  }
  if (crc32c(buf, footer, footer + 20) !== buf.readUInt32LE(footer + 20))
    throw invalid('footer checksum mismatch', footer);
  const payloadBytes = readU64(buf, footer + 8);
  const chunks = Math.ceil(payloadBytes / SNAPSHOT_CHUNK_BYTES_MAX);
  const checksums = SNAPSHOT_HEADER_BYTES + payloadBytes;
  if (checksums + 4 * chunks !== footer) {
    throw invalid(
      `the footer gives ${payloadBytes} payload bytes in ${chunks} chunks, which a ${buf.length}-byte file cannot hold`,
      footer,
    );
  }
  if (crc32c(buf, checksums, footer) !== buf.readUInt32LE(footer + 16)) {
    throw invalid('chunk checksum list does not match the footer', checksums);
  }
  for (let i = 0; i < chunks; i++) {
    const start = SNAPSHOT_HEADER_BYTES + i * SNAPSHOT_CHUNK_BYTES_MAX;
    const end = Math.min(start + SNAPSHOT_CHUNK_BYTES_MAX, checksums);
    if (crc32c(buf, start, end) !== buf.readUInt32LE(checksums + 4 * i)) {
      throw invalid(`chunk ${i} of ${chunks} checksum mismatch`, start);
    }
    pace?.((end - start) >>> CRC_BYTES_PER_US_LOG2);
  }
  return buf.subarray(SNAPSHOT_HEADER_BYTES, checksums);
}

/** CRC32C here checks about 2 KiB per microsecond: a paced load reports a chunk's check in those units. */
const CRC_BYTES_PER_US_LOG2 = 11;

/** Format 1: chunks with their headers inline; the payload is moved together over them. */
function verifiedPayloadV1(buf: Buffer, invalid: Invalid): Buffer {
  const parts: [start: number, end: number][] = [];
  let offset = SNAPSHOT_HEADER_BYTES;
  let total = 0;
  while (true) {
    if (offset + 4 > buf.length)
      throw invalid('file ends inside the chunk list (incomplete snapshot)', offset);
    const length = buf.readUInt32LE(offset);
    if (length === 0) break;
    if (length > SNAPSHOT_CHUNK_BYTES_MAX || offset + 8 + length > buf.length) {
      throw invalid(`chunk length ${length} is impossible or runs past the end`, offset);
    }
    if (crc32c(buf, offset + 8, offset + 8 + length) !== buf.readUInt32LE(offset + 4)) {
      throw invalid('chunk checksum mismatch', offset);
    }
    parts.push([offset + 8, offset + 8 + length]);
    total += length;
    offset += 8 + length;
  }
  const footer = offset + 4;
  if (footer + SNAPSHOT_FOOTER_BYTES !== buf.length)
    throw invalid('footer missing or trailing bytes', footer);
  if (!buf.subarray(footer, footer + 8).equals(SNAPSHOT_FOOTER_MAGIC))
    throw invalid('bad footer magic', footer);
  if (crc32c(buf, footer, footer + 20) !== buf.readUInt32LE(footer + 20))
    throw invalid('footer checksum mismatch', footer);
  if (readU64(buf, footer + 8) !== parts.length || buf.readUInt32LE(footer + 16) !== total >>> 0) {
    throw invalid('footer does not match the chunks', footer);
  }
  // The chunks' data, moved down over the chunk headers into one run: no second gigabyte-sized buffer.
  let end = SNAPSHOT_HEADER_BYTES;
  for (const [start, stop] of parts) {
    buf.copyWithin(end, start, stop);
    end += stop - start;
  }
  return buf.subarray(SNAPSHOT_HEADER_BYTES, end);
}
