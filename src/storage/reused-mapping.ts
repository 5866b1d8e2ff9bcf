import { type FileSystem, forwardingFileSystem } from './file-system.ts';

/**
 * A file system whose mappings are kept and handed out again: for a follower that maps the log's last
 * segment on every catch-up (decision 017). V8 counts each mapping as new external memory, and a fresh
 * 64 MiB mapping per second made a resident worker's isolate run a mark-compact every second (and unmap
 * the previous mapping when it was collected); the store's write p99 at 10k/s was 4.9-5.2 ms with the
 * follows against 3.0-4.3 ms without them. A private mapping's unwritten pages are the page cache's, so
 * bytes written to the file after it was mapped are seen through it, as long as the file's size is the
 * same: a mapping is reused only after `revalidate` has found the file at the size it was mapped at.
 */
export class ReusedMapping {
  private kept: { path: string; bytes: Uint8Array } | undefined;
  /** Mappings made and mappings handed out again, for tests and figures. */
  readonly counts = { mapped: 0, reused: 0 };
  /** `inner`, except that `mapImmutableFile` reuses the kept mapping of the same path. */
  readonly fs: FileSystem;

  constructor(private readonly inner: FileSystem) {
    const mapImmutableFile = inner.mapImmutableFile?.bind(inner);
    this.fs = forwardingFileSystem(inner, {
      mapImmutableFile: mapImmutableFile && ((path) => this.map(path, mapImmutableFile)),
    });
  }

  /** Before each use: keeps the mapping only if its file is still there, at the size it was mapped at. */
  async revalidate(): Promise<void> {
    const kept = this.kept;
    this.kept = undefined;
    if (!kept) return;
    let size = -1;
    try {
      const handle = await this.inner.open(kept.path, 'read');
      try {
        size = await handle.size();
      } finally {
        await handle.close();
      }
    } catch {
      // Gone (compacted away) or unreadable: map afresh, and let that report what is wrong.
    }
    if (size === kept.bytes.byteLength) this.kept = kept;
  }

  /** Lets go of the kept mapping (it is unmapped once nothing else references it). */
  release(): void {
    this.kept = undefined;
  }

  private map(
    path: string,
    mapImmutableFile: (path: string) => Uint8Array | undefined,
  ): Uint8Array | undefined {
    if (this.kept?.path === path) {
      this.counts.reused++;
      return this.kept.bytes;
    }
    const bytes = mapImmutableFile(path);
    if (bytes === undefined) return undefined;
    this.counts.mapped++;
    this.kept = { path, bytes };
    return bytes;
  }
}
