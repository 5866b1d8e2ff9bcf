import type { FileHandle, FileSystem, OpenMode } from '../file-system.ts';

/**
 * Wraps a FileSystem so a test decides when each datasync completes and whether it fails: the way to
 * observe exactly what the engine does while a flush is in flight.
 */
export class ControlledFileSystem implements FileSystem {
  /** When true, datasync calls wait until `release()`. */
  hold = false;
  /** When set, the next datasync (after release) fails with this error code. */
  failNextSync: string | undefined;
  private waiting: (() => void)[] = [];
  datasyncCalls = 0;

  constructor(private readonly inner: FileSystem) {}

  release(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }

  get heldSyncs(): number {
    return this.waiting.length;
  }

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    const handle = await this.inner.open(path, mode);
    const self = this;
    return {
      write: (data, off, len, pos) => handle.write(data, off, len, pos),
      read: (into, off, len, pos) => handle.read(into, off, len, pos),
      truncate: (len) => handle.truncate(len),
      size: () => handle.size(),
      close: () => handle.close(),
      async datasync() {
        self.datasyncCalls++;
        if (self.hold) await new Promise<void>((resolve) => self.waiting.push(resolve));
        if (self.failNextSync) {
          const code = self.failNextSync;
          self.failNextSync = undefined;
          throw Object.assign(new Error(`injected ${code}`), { code });
        }
        await handle.datasync();
      },
    };
  }

  list(dir: string) {
    return this.inner.list(dir);
  }
  mkdirp(dir: string) {
    return this.inner.mkdirp(dir);
  }
  rename(from: string, to: string) {
    return this.inner.rename(from, to);
  }
  unlink(path: string) {
    return this.inner.unlink(path);
  }
  syncDir(dir: string) {
    return this.inner.syncDir(dir);
  }
  exists(path: string) {
    return this.inner.exists(path);
  }
  readFile(path: string) {
    return this.inner.readFile(path);
  }
}
