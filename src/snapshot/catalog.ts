import * as path from 'node:path';
import type { FileSystem } from '../storage/file-system.ts';
import { retirePaced } from '../storage/paced-delete.ts';
import type { Pace } from '../util/pace.ts';
import { parseSnapshotName, SNAPSHOT_TEMP_SUFFIX } from './format.ts';
import { type LoadedSnapshot, readSnapshotFile } from './snapshot-file.ts';

export interface SnapshotEntry {
  name: string;
  file: string;
  lsn: number;
}

/** Snapshot files in `dir`, newest (highest LSN) first. */
export async function listSnapshots(fs: FileSystem, dir: string): Promise<SnapshotEntry[]> {
  const entries: SnapshotEntry[] = [];
  for (const name of await fs.list(dir)) {
    const lsn = parseSnapshotName(name);
    if (lsn !== undefined) entries.push({ name, file: path.join(dir, name), lsn });
  }
  return entries.sort((a, b) => b.lsn - a.lsn);
}

export interface SnapshotFallback {
  file: string;
  reason: string;
}

/**
 * The newest snapshot that verifies and that `accept` takes (e.g. one that decodes), falling back to older
 * ones; every skipped snapshot is reported with its reason, so start-up can say so loudly. `pace`, for a
 * paced load: called as the checksums are verified.
 */
export async function loadNewestValid<T>(
  fs: FileSystem,
  dir: string,
  accept: (snapshot: LoadedSnapshot) => T,
  pace?: Pace,
): Promise<{ loaded: { snapshot: LoadedSnapshot; value: T } | undefined; fallbacks: SnapshotFallback[] }> {
  const fallbacks: SnapshotFallback[] = [];
  for (const entry of await listSnapshots(fs, dir)) {
    try {
      const snapshot = await readSnapshotFile(fs, entry.file, pace);
      if (snapshot.header.lsn !== entry.lsn)
        throw new Error(`header LSN ${snapshot.header.lsn} does not match the name`);
      return { loaded: { snapshot, value: accept(snapshot) }, fallbacks };
    } catch (error) {
      fallbacks.push({ file: entry.file, reason: (error as Error).message });
    }
  }
  return { loaded: undefined, fallbacks };
}

/**
 * Deletes all but the newest `keep` snapshots and any leftover temp files; returns the kept entries. The
 * snapshots are renamed to temp names, then deleted paced (retirePaced): a crash halfway leaves a temp
 * file, which the next prune removes, never a shortened file under a snapshot's name.
 */
export async function pruneSnapshots(fs: FileSystem, dir: string, keep: number): Promise<SnapshotEntry[]> {
  const entries = await listSnapshots(fs, dir);
  await retirePaced(
    fs,
    dir,
    entries.slice(keep).map((entry) => entry.name),
    SNAPSHOT_TEMP_SUFFIX,
  );
  return entries.slice(0, keep);
}
