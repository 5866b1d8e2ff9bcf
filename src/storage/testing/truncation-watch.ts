import type { FileHandle, FileSystem } from '../file-system.ts';

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
