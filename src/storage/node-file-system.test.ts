import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { BlockingNodeFileSystem } from './node-file-system.ts';

test('BlockingNodeFileSystem.readFile reads a file of several read pieces (64 MiB each) byte for byte', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'engram-blocking-fs-'));
  try {
    const content = Buffer.allocUnsafe(64 * 1024 * 1024 + 4097);
    for (let i = 0; i + 4 <= content.length; i += 4) content.writeUInt32LE((i * 2654435761) >>> 0, i);
    content[content.length - 1] = 0x5a;
    const file = path.join(dir, 'big');
    await fsp.writeFile(file, content);
    const read = await new BlockingNodeFileSystem().readFile(file);
    assert.equal(read.length, content.length);
    assert.ok(Buffer.from(read.buffer, read.byteOffset, read.length).equals(content));
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
