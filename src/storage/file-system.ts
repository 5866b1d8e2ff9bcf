/**
 * The storage seam. Everything durable in Engram goes through this interface, so the same log, recovery
 * and snapshot code runs on the real disk (`NodeFileSystem`) and on the seeded fault-injecting simulator
 * (`SimFileSystem`).
 *
 * Contract:
 * - Paths are absolute or relative to the process working directory, `/`-separated.
 * - `write` writes the whole range or rejects; a short write is an error, never silently accepted.
 * - Data written is durable only after `datasync()` on that handle resolves. A new file's directory entry
 *   (create, rename, unlink) is durable only after `syncDir()` of its parent resolves.
 * - Any rejection from `write`, `datasync` or `syncDir` is an I/O fault (EIO, ENOSPC, ...): the caller must
 *   treat the handle's durable content as unknown and stop using it (fsyncgate: never retry the sync).
 * - Methods may be called concurrently on different handles; on one handle the caller serialises writes.
 */
export interface FileHandle {
  /** Writes `length` bytes of `data` starting at `dataOffset`, at file `position`. */
  write(data: Uint8Array, dataOffset: number, length: number, position: number): Promise<void>;
  /** Reads up to `length` bytes at `position` into `into` at `intoOffset`; returns the bytes read (0 at EOF). */
  read(into: Uint8Array, intoOffset: number, length: number, position: number): Promise<number>;
  /** Makes every completed write on this handle durable (fdatasync). */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export type OpenMode =
  /** Read only; the file must exist. */
  | 'read'
  /** Read and write; the file must exist. */
  | 'readwrite'
  /** Read and write; the file must not exist yet (exclusive create). */
  | 'create';

export interface OpenOptions {
  /**
   * Every `write` on the handle resolves only once its data is durable (O_DSYNC), as if followed by
   * `datasync()`. Only honoured where `supportsSyncWrites` is true.
   */
  syncWrites?: boolean;
}

export interface FileSystem {
  /** Whether `open(..., { syncWrites: true })` is supported. */
  readonly supportsSyncWrites?: boolean;
  open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle>;
  /** Entry names (not paths) in `dir`, unsorted; [] if the directory does not exist. */
  list(dir: string): Promise<string[]>;
  mkdirp(dir: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Makes the directory's entries (creates, renames, unlinks) durable (fsync on the directory). */
  syncDir(dir: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** Whole file content, in a buffer the caller owns (not shared with the file system). */
  readFile(path: string): Promise<Uint8Array>;
  /**
   * Whole file content as a private copy-on-write mapping, or undefined when this file system cannot map
   * files (then use `readFile`). Only for a file nobody writes or truncates while the mapping lives: a
   * snapshot, a sealed log segment (decision 015). Its pages are the page cache's until written.
   */
  mapImmutableFile?(path: string): Uint8Array | undefined;
  /**
   * Whether a thread of this process may still have the file mapped (true when it cannot tell). Such a
   * file must not be truncated: a page past its new end is a SIGBUS wherever it is next touched.
   */
  mayBeMapped?(path: string): Promise<boolean>;
}

/**
 * `inner` with some of its calls replaced: every call not in `overrides` goes to `inner` as it is, so a
 * wrapper (a mapping cache, a test's call log) names only what it changes.
 */
export function forwardingFileSystem(inner: FileSystem, overrides: Partial<FileSystem>): FileSystem {
  return {
    supportsSyncWrites: inner.supportsSyncWrites,
    open: (path, mode, options) => inner.open(path, mode, options),
    list: (dir) => inner.list(dir),
    mkdirp: (dir) => inner.mkdirp(dir),
    rename: (from, to) => inner.rename(from, to),
    unlink: (path) => inner.unlink(path),
    syncDir: (dir) => inner.syncDir(dir),
    exists: (path) => inner.exists(path),
    readFile: (path) => inner.readFile(path),
    mapImmutableFile: inner.mapImmutableFile && ((path) => inner.mapImmutableFile!(path)),
    mayBeMapped: inner.mayBeMapped && ((path) => inner.mayBeMapped!(path)),
    ...overrides,
  };
}

/** The error code of a Node-style I/O error, if any (`EIO`, `ENOSPC`, `ENOENT`...). */
export function ioErrorCode(error: unknown): string | undefined {
  if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string')
    return error.code;
  return undefined;
}

/**
 * A file that nobody writes or truncates while its bytes are in use (a snapshot, a sealed log segment):
 * mapped when the file system can map files, read otherwise (decision 015).
 */
export async function readImmutableFile(fs: FileSystem, path: string): Promise<Uint8Array> {
  return fs.mapImmutableFile?.(path) ?? fs.readFile(path);
}

/** A Buffer over the same memory (no copy): file contents are read once, and snapshots can be gigabytes. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
