/**
 * One behavioural suite for every `FileSystem`: the simulator is only worth its seeds if, with no crash and
 * no fault, it behaves like the real disk. Each implementation runs the same tests in a fresh directory of
 * its own (a temporary one on the real disk, removed afterwards); tests use distinct names inside it.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type FileHandle, type FileSystem, ioErrorCode } from './file-system.ts';
import { BlockingNodeFileSystem, NodeFileSystem } from './node-file-system.ts';
import { SimFileSystem } from './sim-file-system.ts';

interface Subject {
  name: string;
  fs: FileSystem;
  /** Makes the empty directory the suite runs in. */
  makeRoot(): Promise<string>;
  cleanup(): Promise<void>;
}

const withCode = (code: string) => (error: unknown) => ioErrorCode(error) === code;
const bytes = (content: string) => Buffer.from(content, 'latin1');
const text = (content: Uint8Array) => Buffer.from(content).toString('latin1');

async function put(handle: FileHandle, content: string, position = 0): Promise<void> {
  await handle.write(bytes(content), 0, content.length, position);
}

async function readAll(handle: FileHandle): Promise<string> {
  const into = Buffer.alloc(await handle.size());
  const read = await handle.read(into, 0, into.length, 0);
  return text(into.subarray(0, read));
}

function nodeSubject(name: string, fs: FileSystem): Subject {
  let root = '';
  return {
    name,
    fs,
    async makeRoot() {
      root = await fsp.mkdtemp(path.join(os.tmpdir(), 'engram-fs-contract-'));
      return root;
    },
    async cleanup() {
      if (root !== '') await fsp.rm(root, { recursive: true, force: true });
    },
  };
}

function simSubject(): Subject {
  // syncWrites on, so the O_DSYNC test runs here too.
  const fs = new SimFileSystem({ seed: 1, syncWrites: true });
  return {
    name: 'SimFileSystem',
    fs,
    async makeRoot() {
      await fs.mkdirp('/contract');
      return '/contract';
    },
    cleanup: async () => undefined,
  };
}

const subjects: (() => Subject)[] = [
  () => nodeSubject('NodeFileSystem', new NodeFileSystem()),
  () => nodeSubject('BlockingNodeFileSystem', new BlockingNodeFileSystem()),
  simSubject,
];

for (const makeSubject of subjects) {
  const subject = makeSubject();
  const { fs } = subject;

  describe(`FileSystem contract: ${subject.name}`, () => {
    let dir = '';
    const at = (name: string) => path.join(dir, name);
    before(async () => {
      dir = await subject.makeRoot();
    });
    after(() => subject.cleanup());

    describe('open modes', () => {
      test("'create' makes a new empty file and refuses an existing one with EEXIST", async () => {
        const handle = await fs.open(at('create'), 'create');
        assert.equal(await handle.size(), 0);
        await handle.close();
        await assert.rejects(fs.open(at('create'), 'create'), withCode('EEXIST'));
      });

      test("'read' and 'readwrite' refuse a missing file with ENOENT and create nothing", async () => {
        await assert.rejects(fs.open(at('missing'), 'read'), withCode('ENOENT'));
        await assert.rejects(fs.open(at('missing'), 'readwrite'), withCode('ENOENT'));
        assert.equal(await fs.exists(at('missing')), false);
      });

      test('opening in a missing directory fails with ENOENT', async () => {
        await assert.rejects(fs.open(at('no-dir/file'), 'create'), withCode('ENOENT'));
      });

      test("a 'read' handle reads but does not write (EBADF) or truncate", async () => {
        const writer = await fs.open(at('ro'), 'create');
        await put(writer, 'content');
        await writer.close();
        const reader = await fs.open(at('ro'), 'read');
        assert.equal(await readAll(reader), 'content');
        await assert.rejects(put(reader, 'x'), withCode('EBADF'));
        await assert.rejects(reader.truncate(0));
        await reader.close();
        assert.equal(text(await fs.readFile(at('ro'))), 'content');
      });

      test("a 'readwrite' handle sees and changes existing content", async () => {
        const first = await fs.open(at('rw'), 'create');
        await put(first, 'hello world');
        await first.close();
        const handle = await fs.open(at('rw'), 'readwrite');
        await put(handle, 'HELLO');
        assert.equal(await readAll(handle), 'HELLO world');
        await handle.close();
      });

      test('a closed handle rejects with EBADF; closing twice is harmless', async () => {
        const handle = await fs.open(at('closed'), 'create');
        await handle.close();
        await handle.close();
        await assert.rejects(put(handle, 'x'), withCode('EBADF'));
        await assert.rejects(handle.read(Buffer.alloc(1), 0, 1, 0), withCode('EBADF'));
        await assert.rejects(handle.size(), withCode('EBADF'));
      });
    });

    describe('write, read, size, truncate, datasync', () => {
      test('writes land at their position; a gap before them reads as zeros', async () => {
        const handle = await fs.open(at('positions'), 'create');
        await put(handle, 'abc');
        await put(handle, 'XY', 1);
        await put(handle, 'z', 6);
        assert.equal(await handle.size(), 7);
        assert.equal(await readAll(handle), 'aXY\0\0\0z');
        await handle.close();
      });

      test('write takes the given slice of the buffer and copies it', async () => {
        const handle = await fs.open(at('slice'), 'create');
        const source = bytes('0123456789');
        await handle.write(source, 2, 3, 0);
        source.fill(0);
        assert.equal(await readAll(handle), '234');
        await handle.close();
      });

      test('read returns the bytes read: all, a short count at the end, 0 past it', async () => {
        const handle = await fs.open(at('reads'), 'create');
        await put(handle, 'abcdef');
        const into = Buffer.alloc(8, '.');
        assert.equal(await handle.read(into, 1, 3, 2), 3);
        assert.equal(text(into), '.cde....');
        assert.equal(await handle.read(into, 0, 8, 4), 2);
        assert.equal(text(into.subarray(0, 2)), 'ef');
        assert.equal(await handle.read(into, 0, 8, 6), 0);
        assert.equal(await handle.read(into, 0, 8, 100), 0);
        await handle.close();
      });

      test('truncate shrinks, and extends with zeros', async () => {
        const handle = await fs.open(at('truncate'), 'create');
        await put(handle, 'abcdef');
        await handle.truncate(2);
        assert.equal(await handle.size(), 2);
        await handle.truncate(4);
        assert.equal(await readAll(handle), 'ab\0\0');
        await handle.close();
      });

      test('datasync resolves, and every handle and readFile see the same bytes', async () => {
        const handle = await fs.open(at('shared'), 'create');
        await put(handle, 'synced');
        await handle.datasync();
        const other = await fs.open(at('shared'), 'read');
        assert.equal(await readAll(other), 'synced');
        assert.equal(text(await fs.readFile(at('shared'))), 'synced');
        await other.close();
        await handle.close();
      });

      test('readFile returns a large file (read in concurrent pieces) byte for byte', async () => {
        const content = Buffer.alloc(20 * 1024 * 1024 + 12345);
        for (let i = 0; i + 4 <= content.length; i += 4) content.writeUInt32LE((i * 2654435761) >>> 0, i);
        const handle = await fs.open(at('large'), 'create');
        await handle.write(content, 0, content.length, 0);
        await handle.close();
        assert.ok(Buffer.from(await fs.readFile(at('large'))).equals(content));
      });

      test('a syncWrites handle writes normally where supported', async () => {
        if (!fs.supportsSyncWrites) return;
        const handle = await fs.open(at('dsync'), 'create', { syncWrites: true });
        await put(handle, 'dsync');
        assert.equal(await readAll(handle), 'dsync');
        await handle.close();
      });

      test('a handle keeps working after its file is unlinked', async () => {
        const handle = await fs.open(at('orphan'), 'create');
        await put(handle, 'still here');
        await fs.unlink(at('orphan'));
        assert.equal(await readAll(handle), 'still here');
        await handle.close();
      });
    });

    describe('directories and names', () => {
      test('mkdirp makes nested directories and is idempotent', async () => {
        await fs.mkdirp(at('a/b/c'));
        await fs.mkdirp(at('a/b/c'));
        assert.equal(await fs.exists(at('a/b/c')), true);
        assert.deepEqual(await fs.list(at('a/b')), ['c']);
      });

      test('mkdirp onto a file fails with EEXIST', async () => {
        await (await fs.open(at('in-the-way'), 'create')).close();
        await assert.rejects(fs.mkdirp(at('in-the-way')), withCode('EEXIST'));
      });

      test('list names the files and subdirectories of a directory; [] for a missing one', async () => {
        await fs.mkdirp(at('listing/sub'));
        for (const name of ['x', 'y']) await (await fs.open(at(`listing/${name}`), 'create')).close();
        assert.deepEqual((await fs.list(at('listing'))).sort(), ['sub', 'x', 'y']);
        assert.deepEqual(await fs.list(at('listing/sub')), []);
        assert.deepEqual(await fs.list(at('nowhere')), []);
      });

      test('exists is true for files and directories, false otherwise', async () => {
        await (await fs.open(at('here'), 'create')).close();
        assert.equal(await fs.exists(at('here')), true);
        assert.equal(await fs.exists(dir), true);
        assert.equal(await fs.exists(at('not-here')), false);
      });

      test('rename moves a file, within and across directories', async () => {
        await fs.mkdirp(at('from'));
        await fs.mkdirp(at('to'));
        const handle = await fs.open(at('from/one'), 'create');
        await put(handle, 'payload');
        await handle.close();
        await fs.rename(at('from/one'), at('from/two'));
        await fs.rename(at('from/two'), at('to/three'));
        assert.deepEqual(await fs.list(at('from')), []);
        assert.deepEqual(await fs.list(at('to')), ['three']);
        assert.equal(text(await fs.readFile(at('to/three'))), 'payload');
      });

      test('rename replaces an existing target', async () => {
        for (const [name, content] of [
          ['new.tmp', 'new'],
          ['current', 'old'],
        ]) {
          const handle = await fs.open(at(name), 'create');
          await put(handle, content);
          await handle.close();
        }
        await fs.rename(at('new.tmp'), at('current'));
        assert.equal(text(await fs.readFile(at('current'))), 'new');
        assert.equal(await fs.exists(at('new.tmp')), false);
      });

      test('rename of a missing file fails with ENOENT', async () => {
        await assert.rejects(fs.rename(at('ghost'), at('other')), withCode('ENOENT'));
      });

      test('unlink removes a file; a missing one fails with ENOENT', async () => {
        await (await fs.open(at('doomed'), 'create')).close();
        await fs.unlink(at('doomed'));
        assert.equal(await fs.exists(at('doomed')), false);
        await assert.rejects(fs.unlink(at('doomed')), withCode('ENOENT'));
        await (await fs.open(at('doomed'), 'create')).close(); // the name is free again
      });

      test('readFile returns the whole content; a missing file fails with ENOENT', async () => {
        const handle = await fs.open(at('whole'), 'create');
        await put(handle, 'x'.repeat(5000));
        await handle.close();
        assert.equal(text(await fs.readFile(at('whole'))), 'x'.repeat(5000));
        await assert.rejects(fs.readFile(at('absent')), withCode('ENOENT'));
      });

      test('syncDir resolves for a directory and fails with ENOENT for a missing one', async () => {
        await (await fs.open(at('entry'), 'create')).close();
        await fs.syncDir(dir);
        await assert.rejects(fs.syncDir(at('no-such-dir')), withCode('ENOENT'));
      });
    });
  });
}
