import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fileMappingStats, fileMappingStatus, mapFile, mayBeMapped } from './file-mapping.ts';
import { NodeFileSystem } from './node-file-system.ts';
import { deletePaced, PACED_DELETE_STEP_BYTES } from './paced-delete.ts';
import { watchTruncations } from './testing/truncation-watch.ts';

async function tempDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'engram-map-'));
}

/** Whether this process has `file` mapped (a line of /proc/self/maps names it). */
function isMapped(file: string): boolean {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .some((line) => line.endsWith(file));
}

test('a mapped file reads as its bytes; a write to the mapping changes neither the file nor another mapping', async (t) => {
  if (!fileMappingStatus().available) return t.skip('no file-mapping addon (no C compiler at install)');
  const dir = await tempDir();
  try {
    const file = path.join(dir, 'data');
    const content = Buffer.alloc(3 * 4096 + 17);
    for (let i = 0; i < content.length; i++) content[i] = (i * 131) & 255;
    await fsp.writeFile(file, content);
    const mapped = mapFile(file)!;
    assert.ok(isMapped(file), 'the file is mapped, not read');
    assert.ok(Buffer.from(mapped).equals(content));
    mapped[5000] ^= 0xff;
    assert.ok(readFileSync(file).equals(content), 'the file is unchanged');
    assert.equal(mapFile(file)![5000], content[5000], 'another mapping sees the file');
    // Compaction may delete a snapshot the state still uses: the mapping outlives the name.
    await fsp.unlink(file);
    assert.equal(mapped[1], content[1]);
    assert.equal(mapped[5000], content[5000] ^ 0xff);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('mapping a missing file, a directory or an empty file: node:fs-style errors, or no bytes', async (t) => {
  if (!fileMappingStatus().available) return t.skip('no file-mapping addon (no C compiler at install)');
  const dir = await tempDir();
  try {
    assert.throws(
      () => mapFile(path.join(dir, 'missing')),
      (e: NodeJS.ErrnoException) =>
        e.code === 'ENOENT' && e.syscall === 'open' && e.message.includes('missing'),
    );
    assert.throws(
      () => mapFile(dir),
      (e: NodeJS.ErrnoException) => e.code === 'EISDIR',
    );
    await fsp.writeFile(path.join(dir, 'empty'), '');
    assert.equal(mapFile(path.join(dir, 'empty'))!.length, 0);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('ENGRAM_FILE_MAPPING=off turns mapping off, with the reason', () => {
  const script = `import { fileMappingStatus, mapFile } from ${JSON.stringify(new URL('./file-mapping.ts', import.meta.url).href)};
console.log(JSON.stringify({ status: fileMappingStatus(), mapped: mapFile('/etc/hostname') !== undefined }));`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, ENGRAM_FILE_MAPPING: 'off' },
    encoding: 'utf8',
  });
  assert.equal(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout);
  assert.equal(out.status.available, false);
  assert.match(out.status.reason, /ENGRAM_FILE_MAPPING=off/);
  assert.equal(out.mapped, false);
});

test('fileMappingStats counts live mappings and lets go of collected ones', async (t) => {
  if (!fileMappingStatus().available) return t.skip('no file-mapping addon (no C compiler at install)');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  /** Collects until the earlier tests' mappings are gone too, so counts are this test's alone. */
  const settle = async () => {
    for (let i = 0, last = -1; i < 50 && fileMappingStats().mappings !== last; i++) {
      last = fileMappingStats().mappings;
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const dir = await tempDir();
  try {
    const file = path.join(dir, 'data');
    await fsp.writeFile(file, Buffer.alloc(10_000, 7));
    await settle();
    const before = fileMappingStats();
    let mapped: Uint8Array | undefined = mapFile(file);
    assert.deepEqual(fileMappingStats(), {
      mappings: before.mappings + 1,
      mappedBytes: before.mappedBytes + 10_000,
    });
    assert.equal(mapped![9_999], 7);
    mapped = undefined;
    await settle();
    assert.deepEqual(fileMappingStats(), before);
    assert.equal(isMapped(file), false, 'the mapping is gone with its buffer');
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a mapped file deleted paced is unlinked whole, never shrunk under the mapping (a SIGBUS); an unmapped one is shrunk', async (t) => {
  if (!fileMappingStatus().available) return t.skip('no file-mapping addon (no C compiler at install)');
  const dir = await tempDir();
  try {
    const bytes = 2 * PACED_DELETE_STEP_BYTES + 4096;
    const mappedFile = path.join(dir, 'mapped');
    const plainFile = path.join(dir, 'plain');
    await fsp.writeFile(mappedFile, Buffer.alloc(bytes, 7));
    await fsp.writeFile(plainFile, Buffer.alloc(bytes, 7));
    const mapped = mapFile(mappedFile)!;
    const { fs, sizes } = watchTruncations(new NodeFileSystem());
    assert.equal(await mayBeMapped(mappedFile), true);
    assert.equal(await mayBeMapped(plainFile), false);

    await deletePaced(fs, mappedFile);
    assert.deepEqual(sizes, []);
    assert.equal(
      mapped[bytes - 1],
      7,
      'the last page still reads (a truncation would have killed this process)',
    );
    await assert.rejects(fsp.stat(mappedFile), { code: 'ENOENT' });

    await deletePaced(fs, plainFile);
    assert.deepEqual(sizes, [PACED_DELETE_STEP_BYTES + 4096, 4096]);
    await assert.rejects(fsp.stat(plainFile), { code: 'ENOENT' });
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
