import * as fsSync from 'node:fs';
import { constants, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { mapFile, mayBeMapped } from './file-mapping.ts';
import type { FileHandle, FileSystem, OpenMode, OpenOptions } from './file-system.ts';

const OPEN_FLAGS: Record<OpenMode, number> = {
  read: constants.O_RDONLY,
  readwrite: constants.O_RDWR,
  create: constants.O_RDWR | constants.O_CREAT | constants.O_EXCL,
};

class NodeFileHandle implements FileHandle {
  constructor(private readonly handle: fsp.FileHandle) {}

  async write(data: Uint8Array, dataOffset: number, length: number, position: number): Promise<void> {
    let written = 0;
    // A short write is legal for write(2); loop until the range is written or an error is raised.
    while (written < length) {
      const { bytesWritten } = await this.handle.write(
        data,
        dataOffset + written,
        length - written,
        position + written,
      );
      if (bytesWritten === 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
      written += bytesWritten;
    }
  }

  async read(into: Uint8Array, intoOffset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(into, intoOffset, length, position);
    return bytesRead;
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** The real filesystem (node:fs). */
export class NodeFileSystem implements FileSystem {
  readonly supportsSyncWrites = true;

  async open(filePath: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle> {
    const flags = OPEN_FLAGS[mode] | (options?.syncWrites ? constants.O_DSYNC : 0);
    return new NodeFileHandle(await fsp.open(filePath, flags, 0o644));
  }

  async list(dir: string): Promise<string[]> {
    try {
      return await fsp.readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async mkdirp(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
  }

  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  }

  unlink(filePath: string): Promise<void> {
    return fsp.unlink(filePath);
  }

  async syncDir(dir: string): Promise<void> {
    const handle = await fsp.open(path.resolve(dir), constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async exists(filePath: string): Promise<boolean> {
    try {
      await fsp.access(filePath);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Opened and sized synchronously (an open and an fstat: microseconds), so that the reads are in libuv's
   * pool as soon as this returns: with an awaited open and stat, a read started ahead of time (the next log
   * segment while recovery parses this one in one synchronous pass) did not even begin until the main
   * thread was free again, and replay then waited for the whole read at every segment.
   */
  async readFile(filePath: string): Promise<Uint8Array> {
    const fd = fsSync.openSync(filePath, constants.O_RDONLY);
    try {
      const size = fsSync.fstatSync(fd).size;
      if (size < PARALLEL_READ_MIN_BYTES) return await readWhole(fd);
      return await readInParallel(fd, size);
    } finally {
      fsSync.closeSync(fd);
    }
  }

  mapImmutableFile(filePath: string): Uint8Array | undefined {
    return mapFile(filePath);
  }

  mayBeMapped(filePath: string): Promise<boolean> {
    return mayBeMapped(filePath);
  }
}

function readWhole(fd: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    fsSync.readFile(fd, (error, data) => (error ? reject(error) : resolve(data))),
  );
}

function readAt(fd: number, into: Buffer, at: number, length: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fsSync.read(fd, into, at, length, at, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead))),
  );
}

/** Files at least this big (snapshots, log segments) are read by several concurrent reads. */
const PARALLEL_READ_MIN_BYTES = 16 * 1024 * 1024;
const PARALLEL_READ_PIECE_BYTES = 8 * 1024 * 1024;

/**
 * Reads `size` bytes as 8 MiB reads all issued at once: fs.readFile issues one 512 KiB read at a time, and a
 * virtual disk with a cold cache then delivers ~400 MB/s where four concurrent reads get ~1.6 GB/s (measured
 * on a 1 GB file after dropping the page cache). All at once, not a few readers each issuing its next piece
 * when the last one ends: libuv's pool (4 threads) runs them four at a time without the main thread, so a read
 * started ahead (the next log segment while recovery parses this one in one synchronous pass) is done when it
 * is needed; with four readers only the first four pieces were, and replay waited ~190 ms per segment for the
 * rest. A file that shrank meanwhile yields what could be read.
 */
async function readInParallel(fd: number, size: number): Promise<Uint8Array> {
  const buf = Buffer.allocUnsafe(size);
  let end = size;
  const readPiece = async (start: number) => {
    const stop = Math.min(start + PARALLEL_READ_PIECE_BYTES, size);
    for (let at = start; at < stop && at < end; ) {
      const bytesRead = await readAt(fd, buf, at, stop - at);
      if (bytesRead === 0) {
        end = Math.min(end, at);
        return;
      }
      at += bytesRead;
    }
  };
  const pieces: Promise<void>[] = [];
  for (let start = 0; start < size; start += PARALLEL_READ_PIECE_BYTES) pieces.push(readPiece(start));
  // Every piece settles before the file may close: a failed one must not leave others reading into `buf`.
  const failed = (await Promise.allSettled(pieces)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return end === size ? buf : buf.subarray(0, end);
}

class BlockingNodeFileHandle implements FileHandle {
  /** -1 once closed: the number may be reused by the next open, so a closed handle must never touch it. */
  private fd: number;

  constructor(fd: number) {
    this.fd = fd;
  }

  private open(): number {
    if (this.fd < 0) throw Object.assign(new Error('EBADF: file handle is closed'), { code: 'EBADF' });
    return this.fd;
  }

  async write(data: Uint8Array, dataOffset: number, length: number, position: number): Promise<void> {
    const fd = this.open();
    let written = 0;
    while (written < length) {
      const n = fsSync.writeSync(fd, data, dataOffset + written, length - written, position + written);
      if (n === 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
      written += n;
    }
  }

  async read(into: Uint8Array, intoOffset: number, length: number, position: number): Promise<number> {
    return fsSync.readSync(this.open(), into, intoOffset, length, position);
  }

  async datasync(): Promise<void> {
    fsSync.fdatasyncSync(this.open());
  }

  async truncate(length: number): Promise<void> {
    fsSync.ftruncateSync(this.open(), length);
  }

  async size(): Promise<number> {
    return fsSync.fstatSync(this.open()).size;
  }

  async close(): Promise<void> {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    fsSync.closeSync(fd);
  }
}

/**
 * node:fs with every call done synchronously on the calling thread, behind the same promise API: for
 * background threads (the checkpoint worker). libuv's thread pool is one per process, four threads shared
 * by every thread's asynchronous fs calls, and a snapshot's four concurrent 8 MiB reads filled it: the
 * store's group commits queued behind them (fdatasyncs of 200+ ms seen while a worker loaded a 1.2 GB
 * snapshot). A blocking call stalls only the worker, which has nothing else to do.
 */
export class BlockingNodeFileSystem implements FileSystem {
  readonly supportsSyncWrites = true;

  async open(filePath: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle> {
    const flags = OPEN_FLAGS[mode] | (options?.syncWrites ? constants.O_DSYNC : 0);
    return new BlockingNodeFileHandle(fsSync.openSync(filePath, flags, 0o644));
  }

  async list(dir: string): Promise<string[]> {
    try {
      return fsSync.readdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async mkdirp(dir: string): Promise<void> {
    fsSync.mkdirSync(dir, { recursive: true });
  }

  async rename(from: string, to: string): Promise<void> {
    fsSync.renameSync(from, to);
  }

  async unlink(filePath: string): Promise<void> {
    fsSync.unlinkSync(filePath);
  }

  async syncDir(dir: string): Promise<void> {
    const fd = fsSync.openSync(path.resolve(dir), constants.O_RDONLY);
    try {
      fsSync.fsyncSync(fd);
    } finally {
      fsSync.closeSync(fd);
    }
  }

  async exists(filePath: string): Promise<boolean> {
    return fsSync.existsSync(filePath);
  }

  /** In 64 MiB reads: `readFileSync` refuses files over 2 GiB, and a large store's snapshot is one. */
  async readFile(filePath: string): Promise<Uint8Array> {
    const fd = fsSync.openSync(filePath, constants.O_RDONLY);
    try {
      const size = fsSync.fstatSync(fd).size;
      const buf = Buffer.allocUnsafe(size);
      let at = 0;
      while (at < size) {
        const n = fsSync.readSync(fd, buf, at, Math.min(BLOCKING_READ_PIECE_BYTES, size - at), at);
        if (n === 0) break;
        at += n;
      }
      return at === size ? buf : buf.subarray(0, at);
    } finally {
      fsSync.closeSync(fd);
    }
  }

  mapImmutableFile(filePath: string): Uint8Array | undefined {
    return mapFile(filePath);
  }

  mayBeMapped(filePath: string): Promise<boolean> {
    return mayBeMapped(filePath);
  }
}

const BLOCKING_READ_PIECE_BYTES = 64 * 1024 * 1024;
