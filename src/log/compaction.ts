import * as path from 'node:path';
import type { FileSystem } from '../storage/file-system.ts';
import { retirePaced } from '../storage/paced-delete.ts';
import { parseSegmentName } from './format.ts';
import { listSegments } from './reader.ts';

export interface CompactionResult {
  deleted: string[];
  bytesFreed: number;
}

/** A segment being deleted: renamed to this first, so recovery never reads a half-deleted segment. */
const DELETING_SUFFIX = '.deleting';

/**
 * Deletes log segments whose every record has an LSN below `keepFromLsn` (covered by a snapshot, minus
 * the retention margin the caller subtracted). A segment's last LSN is the next segment's base minus one,
 * so the newest segment (the one being written) is never deleted, and the log stays contiguous.
 *
 * The covered segments are renamed out of the log, then deleted paced (retirePaced: freeing a gigabyte of
 * segments at once stalled the group commits on a disk with online discard). A crash halfway leaves
 * `*.deleting` files, which the next compaction removes.
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
    deleted.push(segments[i].name);
  }
  await retirePaced(
    fs,
    dir,
    deleted,
    DELETING_SUFFIX,
    (name) => parseSegmentName(name.slice(0, -DELETING_SUFFIX.length)) !== undefined,
  );
  return { deleted, bytesFreed };
}
