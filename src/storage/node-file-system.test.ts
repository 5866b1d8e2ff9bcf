import assert from 'node:assert/strict';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { BlockingNodeFileSystem, NodeFileSystem } from './node-file-system.ts';

/** A file of `bytes` distinct-looking bytes in a new temp dir, handed to `body`, then removed. */
async function withFile(bytes: number, body: (file: string, content: Buffer) => Promise<void>) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'engram-node-fs-'));
  try {
    const content = Buffer.allocUnsafe(bytes);
    for (let i = 0; i + 4 <= content.length; i += 4) content.writeUInt32LE((i * 2654435761) >>> 0, i);
    content[content.length - 1] = 0x5a;
    const file = path.join(dir, 'big');
    await fsp.writeFile(file, content);
    await body(file, content);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

function assertSameBytes(read: Uint8Array, content: Buffer) {
  assert.equal(read.length, content.length);
  assert.ok(Buffer.from(read.buffer, read.byteOffset, read.length).equals(content));
}

test('BlockingNodeFileSystem.readFile reads a file of several read pieces (64 MiB each) byte for byte', () =>
  withFile(64 * 1024 * 1024 + 4097, async (file, content) => {
    assertSameBytes(await new BlockingNodeFileSystem().readFile(file), content);
  }));

test('NodeFileSystem.readFile reads a file of many parallel pieces (8 MiB each) and a small one byte for byte', async () => {
  await withFile(40 * 1024 * 1024 + 4097, async (file, content) => {
    assertSameBytes(await new NodeFileSystem().readFile(file), content);
  });
  await withFile(100_003, async (file, content) => {
    assertSameBytes(await new NodeFileSystem().readFile(file), content);
  });
});

/**
 * Bytes this process has read with read(2) and the like (Linux's /proc/self/io), less what these polls of
 * /proc/self/io read themselves.
 */
function readCounter(): () => number {
  let own = 0;
  return () => {
    const text = readFileSync('/proc/self/io', 'utf8');
    own += Buffer.byteLength(text);
    return Number(/^rchar: (\d+)$/m.exec(text)?.[1]) - own;
  };
}

test(
  'NodeFileSystem.readFile reads the whole file while the main thread stays busy (a read started ahead)',
  { skip: !existsSync('/proc/self/io') && 'needs /proc/self/io' },
  () =>
    withFile(48 * 1024 * 1024, async (file, content) => {
      const bytesReadSoFar = readCounter();
      const before = bytesReadSoFar();
      const reading = new NodeFileSystem().readFile(file);
      // Never yields: only reads already in libuv's pool can make progress.
      const deadline = performance.now() + 10_000;
      while (bytesReadSoFar() - before < content.length && performance.now() < deadline);
      assert.ok(
        bytesReadSoFar() - before >= content.length,
        `only ${bytesReadSoFar() - before} of ${content.length} bytes were read while the main thread was busy`,
      );
      assertSameBytes(await reading, content);
    }),
);
