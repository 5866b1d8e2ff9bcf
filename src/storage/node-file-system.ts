import { constants, promises as fsp } from 'node:fs';
import * as path from 'node:path';
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

  async readFile(filePath: string): Promise<Uint8Array> {
    return fsp.readFile(filePath);
  }
}
