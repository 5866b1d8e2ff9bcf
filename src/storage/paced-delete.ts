import * as path from 'node:path';
import type { FileSystem } from './file-system.ts';

/** A file is shrunk by this much per step before it is unlinked. */
export const PACED_DELETE_STEP_BYTES = 8 * 1024 * 1024;
const PACED_DELETE_PAUSE_MS = 50;

/**
 * Deletes a large file a little at a time: it is truncated 8 MiB per step, 50 ms apart (160 MB/s at most),
 * then unlinked; a file of one step or less is unlinked at once. On a filesystem mounted with online discard
 * (as these machines' are), freeing a whole 1.2 GB snapshot in one unlink put 70-76 ms fdatasyncs into the
 * log's group commits for the next second; freed in steps, none over 23 ms (bench scenario: a snapshot of
 * 14M holds under 10k writes/s, p99 14-18 ms vs 84 ms). A crash halfway leaves the file shortened: callers delete
 * through `retirePaced`, which renames it out of the way first. A file that may be mapped is not shrunk.
 */
export async function deletePaced(fs: FileSystem, file: string): Promise<void> {
  // A file some thread still maps (the snapshot a store's state was loaded from) is unlinked whole: its
  // blocks are freed when the mapping goes, and a truncation would SIGBUS the thread that touches it.
  if (await fs.mayBeMapped?.(file)) {
    await fs.unlink(file);
    return;
  }
  const handle = await fs.open(file, 'readwrite');
  try {
    for (let size = await handle.size(); size > PACED_DELETE_STEP_BYTES; ) {
      size -= PACED_DELETE_STEP_BYTES;
      await handle.truncate(size);
      await new Promise((resolve) => setTimeout(resolve, PACED_DELETE_PAUSE_MS));
    }
  } finally {
    await handle.close();
  }
  await fs.unlink(file);
}

/**
 * Deletes the files `names` of `dir` so that a crash never leaves one shortened under its own name: each is
 * renamed to `name + suffix` and the directory fsynced before any byte goes; then every file of `dir` whose
 * name ends in `suffix` and that `isLeftover` accepts (these, and those a crash left before) is deleted
 * paced, and the directory fsynced again.
 */
export async function retirePaced(
  fs: FileSystem,
  dir: string,
  names: readonly string[],
  suffix: string,
  isLeftover: (name: string) => boolean = () => true,
): Promise<void> {
  for (const name of names) await fs.rename(path.join(dir, name), path.join(dir, `${name}${suffix}`));
  if (names.length > 0) await fs.syncDir(dir);
  let deleted = false;
  for (const name of await fs.list(dir)) {
    if (!name.endsWith(suffix) || !isLeftover(name)) continue;
    await deletePaced(fs, path.join(dir, name));
    deleted = true;
  }
  if (deleted) await fs.syncDir(dir);
}
