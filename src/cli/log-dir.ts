import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { listSegments } from '../log/reader.ts';
import { walDir } from '../snapshot/build.ts';
import type { FileSystem } from '../storage/file-system.ts';
import { usageError } from './cli-error.ts';

export interface LogLocation {
  /** The directory holding the segment files. */
  walDir: string;
  /** The store's data directory (parent of `wal/`), when known: snapshots live beside the log there. */
  dataDir: string | undefined;
  segmentNames: string[];
  /** Sum of the segment files' sizes: what a scan reads. */
  bytesTotal: number;
}

const DIR_HINT =
  "Pass the store's data directory (the one that holds wal/) or its wal/ directory itself, e.g. `engram verify ./data`.";

/** Accepts a data directory or its `wal/` subdirectory; anything else is a usage error. */
export async function locateLog(fs: FileSystem, input: string): Promise<LogLocation> {
  const dir = path.resolve(input);
  if (!(await isDirectory(dir))) {
    throw usageError(
      (await exists(dir))
        ? `${input} is not a directory. ${DIR_HINT}`
        : `${input} does not exist. ${DIR_HINT}`,
    );
  }
  const nested = walDir(dir);
  if (await isDirectory(nested)) return describe(fs, nested, dir);
  const here = await listSegments(fs, dir);
  if (here.length > 0 || path.basename(dir) === 'wal') {
    return describe(fs, dir, path.basename(dir) === 'wal' ? path.dirname(dir) : undefined);
  }
  throw usageError(
    `${input} holds no Engram log: no wal/ directory and no wal-*.log segment files. ${DIR_HINT}`,
  );
}

async function describe(fs: FileSystem, dir: string, dataDir: string | undefined): Promise<LogLocation> {
  const segments = await listSegments(fs, dir);
  let bytesTotal = 0;
  for (const s of segments) bytesTotal += (await stat(path.join(dir, s.name))).size;
  return { walDir: dir, dataDir, segmentNames: segments.map((s) => s.name), bytesTotal };
}

async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
