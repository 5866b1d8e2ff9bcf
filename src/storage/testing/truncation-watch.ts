import type { FileHandle, FileSystem } from '../file-system.ts';
import { SimFileSystem } from '../sim-file-system.ts';

/**
 * `fs` with every handle's truncations recorded in `sizes`, and `onTruncate` run before each (throw from
 * it to stop the caller there, as a crash would).
 */
export function watchTruncations(fs: FileSystem, onTruncate: (length: number) => void = () => {}) {
  const sizes: number[] = [];
  const watched: FileSystem = Object.create(fs);
  watched.open = async (file, mode, options) => {
    const handle = await fs.open(file, mode, options);
    const wrapped: FileHandle = Object.create(handle);
    wrapped.truncate = async (length) => {
      onTruncate(length);
      sizes.push(length);
      return handle.truncate(length);
    };
    return wrapped;
  };
  return { fs: watched, sizes };
}

/** A durable file of `bytes` zeros. */
export async function makeFile(fs: FileSystem, file: string, bytes: number): Promise<void> {
  const handle = await fs.open(file, 'create');
  await handle.write(new Uint8Array(bytes), 0, bytes, 0);
  await handle.datasync();
  await handle.close();
}

export const DIED_AT_TRUNCATE = 'the process died at its first truncation';

/** `fs` whose first truncation throws, as if the process died there (then crash the disk to see what is left). */
export function dyingAtFirstTruncation(fs: FileSystem): FileSystem {
  return watchTruncations(fs, () => {
    throw new Error(DIED_AT_TRUNCATE);
  }).fs;
}

/** A fresh simulated disk with `dir` holding durable zero-filled `files` of `bytes` each. */
export async function diskWithFiles(seed: number, dir: string, files: readonly string[], bytes: number) {
  const sim = new SimFileSystem({ seed, capacityBytes: 64 * 1024 * 1024 });
  await sim.mkdirp(dir);
  for (const name of files) await makeFile(sim, `${dir}/${name}`, bytes);
  await sim.syncDir(dir);
  return sim;
}
