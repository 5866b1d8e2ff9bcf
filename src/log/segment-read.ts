import { asBuffer, type FileHandle, type FileSystem, readImmutableFile } from '../storage/file-system.ts';
import { LOG_FORMAT_VERSION_PREALLOCATED, SEGMENT_HEADER_BYTES } from './format.ts';
import { parseSegmentHeader } from './frame.ts';
import { writtenEnd } from './preallocation.ts';

/** A segment's bytes as a scan gets them: all of them, or all but zeros at the end of the file. */
export interface SegmentBytes {
  bytes: Buffer;
  /** The file's size; more than `bytes.length` when trailing zeros were left unread. */
  fileBytes: number;
}

/**
 * Zeros kept past a segment's last written byte. A frame may end in zero bytes (padding, a field that is
 * zero): with this margin, far more than any commit marker, a frame a scan accepts lies wholly in what is read.
 */
export const KEPT_ZERO_BYTES = 64 * 1024;
const BACKWARD_CHUNK_BYTES = 1024 * 1024;
const READ_PIECE_BYTES = 8 * 1024 * 1024;

/**
 * A segment's bytes. A sealed one (any but the last) is mapped when the file system can map files: no
 * writer appends to it or truncates it while the store runs, and a mapped file costs no fresh memory
 * (decision 015). The last one is being written (and may be cut at a torn tail), so it is read, without
 * its never-written end (`readWrittenSegment`).
 */
export async function readSegment(fs: FileSystem, file: string, mayChange: boolean): Promise<SegmentBytes> {
  if (mayChange) return readWrittenSegment(fs, file);
  const bytes = asBuffer(await readImmutableFile(fs, file));
  return { bytes, fileBytes: bytes.length };
}

/**
 * The log's last segment, read up to `KEPT_ZERO_BYTES` past its last non-zero byte. A preallocated segment
 * (format 3) is zeros after its last commit, usually most of its 64 MiB, and a scan treats zeros to the
 * end of the file as never written. Read whole into fresh memory and then checked, those zeros cost a
 * restart here about 165 ms and 60 ms of a 1.5 s replay. They are checked instead through one reused 1 MiB
 * buffer, from the end of the file backwards until written bytes are found, and never kept. What is left
 * unread is all zeros, so a scan of the shorter buffer finds the same records, the same written end and
 * the same damage. Older formats (where zeros at the end are a torn write) and files without a valid header
 * are read whole.
 */
export async function readWrittenSegment(fs: FileSystem, file: string): Promise<SegmentBytes> {
  const handle = await fs.open(file, 'read');
  try {
    const fileBytes = await handle.size();
    let end = fileBytes;
    if (fileBytes > SEGMENT_HEADER_BYTES && (await isPreallocatedFormat(handle))) {
      const chunk = Buffer.allocUnsafe(Math.min(BACKWARD_CHUNK_BYTES, fileBytes - SEGMENT_HEADER_BYTES));
      end = SEGMENT_HEADER_BYTES;
      for (let stop = fileBytes; stop > SEGMENT_HEADER_BYTES; ) {
        const start = Math.max(SEGMENT_HEADER_BYTES, stop - chunk.length);
        const piece = chunk.subarray(0, stop - start);
        // The file shrank meanwhile (a writer closing cuts its spare space): read what it now holds.
        if ((await readUpTo(handle, piece, start)) < piece.length) return wholeFile(fs, file);
        const written = writtenEnd(piece, 0);
        if (written > 0) {
          end = start + written;
          break;
        }
        stop = start;
      }
      end = Math.min(fileBytes, end + KEPT_ZERO_BYTES);
    }
    const bytes = Buffer.allocUnsafe(end);
    const pieces: Promise<number>[] = [];
    for (let at = 0; at < end; at += READ_PIECE_BYTES) {
      const piece = bytes.subarray(at, Math.min(end, at + READ_PIECE_BYTES));
      pieces.push(readUpTo(handle, piece, at).then((n) => (n < piece.length ? at + n : end)));
    }
    // Every piece settles before the file closes: a failed one must not leave others reading into `bytes`.
    const results = await Promise.allSettled(pieces);
    let readEnd = end;
    for (const r of results) {
      if (r.status === 'rejected') throw r.reason;
      readEnd = Math.min(readEnd, r.value);
    }
    // As `readFile` does, a file that shrank meanwhile yields what could be read.
    return readEnd < end ? { bytes: bytes.subarray(0, readEnd), fileBytes: readEnd } : { bytes, fileBytes };
  } finally {
    await handle.close();
  }
}

async function isPreallocatedFormat(handle: FileHandle): Promise<boolean> {
  const header = Buffer.allocUnsafe(SEGMENT_HEADER_BYTES);
  if ((await readUpTo(handle, header, 0)) < header.length) return false;
  const parsed = parseSegmentHeader(header);
  return parsed.ok && parsed.header.formatVersion >= LOG_FORMAT_VERSION_PREALLOCATED;
}

/** Reads into all of `into` from `position` unless the file ends first; returns the bytes read. */
async function readUpTo(handle: FileHandle, into: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const n = await handle.read(into, done, into.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

async function wholeFile(fs: FileSystem, file: string): Promise<SegmentBytes> {
  const bytes = asBuffer(await fs.readFile(file));
  return { bytes, fileBytes: bytes.length };
}
