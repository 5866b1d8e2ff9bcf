import * as path from 'node:path';
import { listSnapshots } from '../snapshot/catalog.ts';
import { type LoadedSnapshot, readSnapshotFile } from '../snapshot/snapshot-file.ts';
import type { FileSystem } from '../storage/file-system.ts';

export interface SnapshotRow {
  file: string;
  lsn: number;
  bytes: number;
  createdAtMs: number | undefined;
  ageS: number | undefined;
  stateHash: string | undefined;
  valid: boolean;
  reason: string | undefined;
  /** The snapshot a restart would load: the newest that verifies and that the log continues from. */
  restartUses: boolean;
}

/**
 * The snapshots beside a log, newest first, each verified, and which one a restart would start from: the
 * newest valid one whose LSN the log reaches (the log must hold every record after it).
 */
export async function describeSnapshots(
  fs: FileSystem,
  dataDir: string,
  logFirstLsn: number,
  logLastLsn: number,
  nowMs = Date.now(),
): Promise<SnapshotRow[]> {
  const rows: SnapshotRow[] = [];
  let chosen = false;
  for (const entry of await listSnapshots(fs, path.join(dataDir, 'snapshots'))) {
    let loaded: LoadedSnapshot | undefined;
    let reason: string | undefined;
    try {
      loaded = await readSnapshotFile(fs, entry.file);
    } catch (error) {
      reason = (error as Error).message;
    }
    const usable = loaded !== undefined && entry.lsn >= logFirstLsn - 1 && entry.lsn <= logLastLsn;
    if (loaded && !usable)
      reason = `the log (LSN ${logFirstLsn}..${logLastLsn}) does not continue from LSN ${entry.lsn}`;
    const restartUses = usable && !chosen;
    if (restartUses) chosen = true;
    const createdAtMs = loaded?.header.createdAtMs;
    rows.push({
      file: entry.file,
      lsn: entry.lsn,
      bytes: loaded?.fileBytes ?? (await fs.readFile(entry.file)).length,
      createdAtMs,
      ageS: createdAtMs === undefined ? undefined : (nowMs - createdAtMs) / 1000,
      stateHash: loaded?.header.stateHash,
      valid: loaded !== undefined,
      reason,
      restartUses,
    });
  }
  return rows;
}
