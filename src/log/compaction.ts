import * as path from 'node:path';
import type { FileSystem } from '../storage/file-system.ts';
import { listSegments } from './reader.ts';

export interface CompactionResult {
  deleted: string[];
  bytesFreed: number;
}

/**
 * Deletes log segments whose every record has an LSN below `keepFromLsn` (covered by a snapshot, minus
 * the retention margin the caller subtracted). A segment's last LSN is the next segment's base minus one,
 * so the newest segment (the one being written) is never deleted, and the log stays contiguous.
 */
export async function compactLog(
  fs: FileSystem,
  dir: string,
  keepFromLsn: number,
): Promise<CompactionResult> {
  const segments = await listSegments(fs, dir);
  const deleted: string[] = [];
  let bytesFreed = 0;
  for (let i = 0; i + 1 < segments.length; i++) {
    const lastLsn = segments[i + 1].baseLsn - 1;
    if (lastLsn >= keepFromLsn) break;
    const file = path.join(dir, segments[i].name);
    const handle = await fs.open(file, 'read');
    bytesFreed += await handle.size();
    await handle.close();
    await fs.unlink(file);
    deleted.push(segments[i].name);
  }
  if (deleted.length > 0) await fs.syncDir(dir);
  return { deleted, bytesFreed };
}
