import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { EngramError } from '../errors.ts';
import { asBuffer, type FileSystem, ioErrorCode } from '../storage/file-system.ts';

export const LOCK_FILE = 'LOCK';

/** Changes at every boot: a lock written before a power loss is stale whatever pid it names. */
function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown-boot';
  }
}

const LOCK_LINE = /^engram-lock (\d+) (\S+)\n$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return ioErrorCode(error) === 'EPERM';
  }
}

/**
 * One store per data directory: two processes appending to one log would interleave LSNs and corrupt it.
 * The lock is a file naming the owner's pid and boot; a lock left by a process that no longer runs
 * (kill -9), from an earlier boot (power loss) or torn, is taken over. Returns the release function.
 */
export async function acquireDirLock(fs: FileSystem, dir: string): Promise<() => Promise<void>> {
  await fs.mkdirp(dir);
  const file = path.join(dir, LOCK_FILE);
  let handle: Awaited<ReturnType<FileSystem['open']>>;
  try {
    handle = await fs.open(file, 'create');
  } catch (error) {
    if (ioErrorCode(error) !== 'EEXIST') throw error;
    // A torn or foreign lock file (power loss mid-write) does not parse: stale.
    const match = asBuffer(await fs.readFile(file))
      .toString('latin1')
      .match(LOCK_LINE);
    const owner = match ? Number(match[1]) : 0;
    if (match && match[2] === bootId() && owner !== process.pid && processAlive(owner)) {
      throw new EngramError(
        'store_locked',
        `data directory ${dir} is in use by process ${owner} (see ${file}); stop that process first, or use another directory`,
        { dir, pid: owner },
      );
    }
    await fs.unlink(file);
    try {
      handle = await fs.open(file, 'create');
    } catch (retry) {
      if (ioErrorCode(retry) === 'EEXIST') {
        throw new EngramError('store_locked', `data directory ${dir} was just locked by another process`, {
          dir,
        });
      }
      throw retry;
    }
  }
  const pid = Buffer.from(`engram-lock ${process.pid} ${bootId()}\n`);
  try {
    await handle.write(pid, 0, pid.length, 0);
  } finally {
    await handle.close();
  }
  return async () => {
    await fs.unlink(file).catch(() => undefined);
  };
}
