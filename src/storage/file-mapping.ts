/**
 * Private, copy-on-write mappings of whole files (mmap), from our Node-API addon's `native/file-mapping.c`
 * (src/native/addon.ts). Without it (no C compiler at install time, or
 * ENGRAM_FILE_MAPPING=off), files are read instead: the same bytes, paid for in fresh memory (decision 015).
 *
 * A mapping is only for files nobody writes or truncates while it lives: snapshots, which are written once
 * under a temp name and renamed, and sealed log segments (every one but the last) during a scan. Unlinking
 * one is safe (the mapping keeps the inode until it is collected).
 */
import { readFile, stat } from 'node:fs/promises';
import { type NativeAddon, nativeAddon } from '../native/addon.ts';

export type FileMappingStatus = { available: true } | { available: false; reason: string };

let addon: NativeAddon | undefined;
let status: FileMappingStatus | undefined;

function load(): FileMappingStatus {
  if (process.env.ENGRAM_FILE_MAPPING === 'off') {
    return { available: false, reason: 'turned off by ENGRAM_FILE_MAPPING=off' };
  }
  const native = nativeAddon();
  if (!native.available) return native;
  addon = native.addon;
  return { available: true };
}

/** Whether files can be mapped in this process, and why not. */
export function fileMappingStatus(): FileMappingStatus {
  status ??= load();
  return status;
}

let mappedBytes = 0;
let mappings = 0;
/** Mappings are undone when their ArrayBuffer is collected: the counts follow. */
const unmapped = new FinalizationRegistry<number>((bytes) => {
  mappedBytes -= bytes;
  mappings--;
});

/**
 * The file's bytes as a private mapping, or undefined when mapping is unavailable. Pages are read from the
 * page cache on first access; a write copies that page for this process only.
 */
export function mapFile(path: string): Uint8Array | undefined {
  if (!fileMappingStatus().available) return undefined;
  const buffer = addon!.map(path);
  mappedBytes += buffer.byteLength;
  mappings++;
  unmapped.register(buffer, buffer.byteLength);
  return new Uint8Array(buffer);
}

/**
 * Whether a thread of this process may still have `file` mapped. The mapping may belong to another thread
 * (a snapshot worker prunes the snapshot the store's own state was loaded from), whose module state this
 * one cannot see, so the kernel's list of the process's mappings is asked, by inode. A false positive only
 * costs a paced delete; where that list cannot be read, any file might be mapped.
 */
export async function mayBeMapped(file: string): Promise<boolean> {
  if (!fileMappingStatus().available) return false;
  let inode: bigint;
  let maps: string;
  try {
    inode = (await stat(file, { bigint: true })).ino;
  } catch {
    return false; // gone already: nothing left to truncate
  }
  try {
    maps = await readFile('/proc/self/maps', 'latin1');
  } catch {
    return true;
  }
  const wanted = ` ${inode} `;
  for (const line of maps.split('\n')) {
    // address perms offset dev inode [path]
    const fields = line.split(/\s+/, 6);
    if (fields.length >= 5 && fields[4] !== '0' && ` ${fields[4]} ` === wanted) return true;
  }
  return false;
}

/**
 * Files mapped and not yet collected. The bytes are memory the state uses that `process.memoryUsage()`
 * does not count (not V8's heap, not an ArrayBuffer it allocated): a heap figure must add them.
 */
export function fileMappingStats(): { mappings: number; mappedBytes: number } {
  return { mappings, mappedBytes };
}
