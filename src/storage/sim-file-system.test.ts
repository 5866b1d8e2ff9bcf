import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Store } from '../engine/store.ts';
import { bankDefinition } from '../engine/testing/bank.ts';
import { type FileHandle, ioErrorCode } from './file-system.ts';
import { SimFileSystem } from './sim-file-system.ts';

/** Enough seeds that every outcome with a probability of a few percent shows up. */
const SEEDS = 200;
const SECTOR_BYTES = 512;

const withCode = (code: string) => (error: unknown) => ioErrorCode(error) === code;
const text = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString('latin1');

async function put(handle: FileHandle, content: string | Buffer, position = 0): Promise<void> {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'latin1') : content;
  await handle.write(bytes, 0, bytes.length, position);
}

/** A file whose content and directory entry are both durable. */
async function durableFile(fs: SimFileSystem, file: string, content: string): Promise<FileHandle> {
  await fs.mkdirp('/d');
  const handle = await fs.open(file, 'create');
  await put(handle, content);
  await handle.datasync();
  await fs.syncDir('/d');
  return handle;
}

/** Runs `scenario` on a fresh disk for each seed and collects what it returns. */
async function outcomes<T>(scenario: (fs: SimFileSystem, seed: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let seed = 0; seed < SEEDS; seed++) results.push(await scenario(new SimFileSystem({ seed }), seed));
  return results;
}

describe('crash: file content', () => {
  test('synced writes survive every crash', async () => {
    await outcomes(async (fs, seed) => {
      await durableFile(fs, '/d/a', 'durable bytes');
      const rebooted = fs.crash();
      assert.equal(text(await rebooted.readFile('/d/a')), 'durable bytes', `seed ${seed}`);
    });
  });

  test('unsynced writes may be lost, kept or torn, but never produce bytes that were not written', async () => {
    const seen = new Set<string>();
    await outcomes(async (fs, seed) => {
      const handle = await durableFile(fs, '/d/a', 'durable!');
      await put(handle, 'UNSYNCED', 8);
      const after = text(await fs.crash().readFile('/d/a'))!;
      assert.ok(after.startsWith('durable!'), `seed ${seed}: ${after}`);
      assert.ok(after.length <= 16, `seed ${seed}: ${after}`);
      for (let i = 8; i < after.length; i++)
        assert.ok(after[i] === 'UNSYNCED'[i - 8] || after[i] === '\0', `seed ${seed}: byte ${i} is garbage`);
      seen.add(
        after.length === 8 ? 'lost' : after.length === 16 && after.endsWith('UNSYNCED') ? 'kept' : 'torn',
      );
    });
    assert.deepEqual([...seen].sort(), ['kept', 'lost', 'torn']);
  });

  test('a crash keeps an in-order prefix of the unsynced writes; only the last kept one may be partial', async () => {
    const kept = new Set<number>();
    await outcomes(async (fs, seed) => {
      const handle = await durableFile(fs, '/d/a', '');
      const chunks = ['aaaa', 'bbbb', 'cccc', 'dddd'];
      for (const [i, chunk] of chunks.entries()) await put(handle, chunk, i * 4);
      const after = text(await fs.crash().readFile('/d/a'))!.padEnd(16, '\0');
      const whole = chunks.filter((chunk, i) => after.slice(i * 4, i * 4 + 4) === chunk).length;
      // Every chunk before the first incomplete one is whole; everything after the next one is untouched.
      assert.equal(after.slice(0, whole * 4), chunks.slice(0, whole).join(''), `seed ${seed}: ${after}`);
      assert.equal(
        after.slice((whole + 1) * 4),
        '\0'.repeat(Math.max(0, 16 - (whole + 1) * 4)),
        `seed ${seed}`,
      );
      kept.add(whole);
    });
    assert.deepEqual([...kept].sort(), [0, 1, 2, 3, 4]);
  });

  test('a torn write is a byte prefix of it, or its sectors with some missing', async () => {
    const OLD = 'o';
    const NEW = 'n';
    const position = 100; // unaligned, so the first and last sectors are partial
    const length = 3 * SECTOR_BYTES;
    const shapes = new Set<string>();
    await outcomes(async (fs, seed) => {
      const handle = await durableFile(fs, '/d/a', OLD.repeat(position + SECTOR_BYTES));
      await put(handle, NEW.repeat(length), position);
      const after = text(await fs.crash().readFile('/d/a'))!;
      const region = after.slice(position);
      assert.equal(after.slice(0, position), OLD.repeat(position), `seed ${seed}: bytes before the write`);
      const newCount = [...region].filter((c) => c === NEW).length;
      if (region === NEW.repeat(newCount) + OLD.repeat(region.length - newCount) && newCount < length) {
        shapes.add(newCount === 0 ? 'lost' : 'prefix');
        return;
      }
      if (region === NEW.repeat(length)) return shapes.add('whole');
      // Sector shape: each 512-byte sector of the file is all old (or zero past the old end) or all new.
      assert.equal(after.length, position + length, `seed ${seed}: a sector tear keeps the new size`);
      for (let sector = 0; sector < after.length; sector += SECTOR_BYTES) {
        const from = Math.max(sector, position);
        const bytes = after.slice(from, sector + SECTOR_BYTES);
        const oldOrZero = [...bytes].every((c) => c === OLD || c === '\0');
        assert.ok(bytes === NEW.repeat(bytes.length) || oldOrZero, `seed ${seed}: sector ${sector} is mixed`);
      }
      shapes.add('sectors');
    });
    assert.deepEqual([...shapes].sort(), ['lost', 'prefix', 'sectors', 'whole']);
  });

  test('an unsynced truncate may or may not survive; a synced one always does', async () => {
    const lengths = new Set<number>();
    await outcomes(async (fs) => {
      const handle = await durableFile(fs, '/d/a', '0123456789');
      await handle.truncate(4);
      assert.equal(await handle.size(), 4, 'reads see the truncate at once');
      lengths.add((await fs.crash().readFile('/d/a')).length);
    });
    assert.deepEqual([...lengths].sort(), [10, 4]);
    const fs = new SimFileSystem({ seed: 1 });
    const handle = await durableFile(fs, '/d/a', '0123456789');
    await handle.truncate(4);
    await handle.datasync();
    assert.equal(text(await fs.crash().readFile('/d/a')), '0123');
  });

  test('a synced write through an O_DSYNC handle needs no datasync', async () => {
    await outcomes(async (fs, seed) => {
      const syncFs = new SimFileSystem({ seed, syncWrites: true });
      assert.equal(fs.supportsSyncWrites, false);
      assert.equal(syncFs.supportsSyncWrites, true);
      await syncFs.mkdirp('/d');
      const handle = await syncFs.open('/d/a', 'create', { syncWrites: true });
      await syncFs.syncDir('/d');
      await put(handle, 'dsync');
      assert.equal(text(await syncFs.crash().readFile('/d/a')), 'dsync', `seed ${seed}`);
    });
  });
});

describe('crash: directory entries', () => {
  test('an unsynced create may vanish; a synced one never does', async () => {
    const exists = new Set<boolean>();
    await outcomes(async (fs) => {
      await fs.mkdirp('/d');
      const handle = await fs.open('/d/new', 'create');
      await put(handle, 'data');
      await handle.datasync(); // the content is durable, the entry is not
      exists.add(await fs.crash().exists('/d/new'));
    });
    assert.deepEqual([...exists].sort(), [false, true]);
    await outcomes(async (fs, seed) => {
      await durableFile(fs, '/d/new', 'data');
      assert.equal(text(await fs.crash().readFile('/d/new')), 'data', `seed ${seed}`);
    });
  });

  test('an unsynced unlink may revert; a synced one never does', async () => {
    const exists = new Set<boolean>();
    await outcomes(async (fs) => {
      await durableFile(fs, '/d/a', 'x');
      await fs.unlink('/d/a');
      assert.equal(await fs.exists('/d/a'), false);
      exists.add(await fs.crash().exists('/d/a'));
    });
    assert.deepEqual([...exists].sort(), [false, true]);
    const fs = new SimFileSystem({ seed: 1 });
    await durableFile(fs, '/d/a', 'x');
    await fs.unlink('/d/a');
    await fs.syncDir('/d');
    assert.equal(await fs.crash().exists('/d/a'), false);
  });

  test('an unsynced rename is atomic: the file is under its old name or its new one, never both or neither', async () => {
    const names = new Set<string>();
    await outcomes(async (fs, seed) => {
      await durableFile(fs, '/d/tmp', 'new');
      await durableFile(fs, '/d/final', 'old');
      await fs.rename('/d/tmp', '/d/final');
      const rebooted = fs.crash();
      const tmp = (await rebooted.exists('/d/tmp')) ? text(await rebooted.readFile('/d/tmp')) : undefined;
      const final = text(await rebooted.readFile('/d/final'));
      const state = `tmp=${tmp} final=${final}`;
      assert.ok(['tmp=new final=old', 'tmp=undefined final=new'].includes(state), `seed ${seed}: ${state}`);
      names.add(state);
    });
    assert.equal(names.size, 2);
  });

  test('syncing the target directory of a rename also makes the source side durable', async () => {
    await outcomes(async (fs, seed) => {
      await fs.mkdirp('/d1');
      await fs.mkdirp('/d2');
      const handle = await fs.open('/d1/x', 'create');
      await put(handle, 'moved');
      await handle.datasync();
      await fs.rename('/d1/x', '/d2/y');
      await fs.syncDir('/d2');
      const rebooted = fs.crash();
      assert.deepEqual(rebooted.paths(), ['/d2/y'], `seed ${seed}`);
      assert.equal(text(await rebooted.readFile('/d2/y')), 'moved');
    });
  });

  test('a directory keeps an in-order prefix of its unsynced changes', async () => {
    const prefixes = new Set<string>();
    await outcomes(async (fs, seed) => {
      await fs.mkdirp('/d');
      for (const name of ['a', 'b', 'c']) await (await fs.open(`/d/${name}`, 'create')).close();
      const names = (await fs.crash().list('/d')).sort().join('');
      assert.ok(['', 'a', 'ab', 'abc'].includes(names), `seed ${seed}: ${names}`);
      prefixes.add(names);
    });
    assert.equal(prefixes.size, 4);
  });

  test('directories made by mkdirp survive a crash', async () => {
    const fs = new SimFileSystem({ seed: 1 });
    await fs.mkdirp('/a/b/c');
    const rebooted = fs.crash();
    assert.equal(await rebooted.exists('/a/b/c'), true);
    assert.deepEqual(await rebooted.list('/a'), ['b']);
  });
});

describe('crash: the crashed process', () => {
  test('every call on a handle opened before the crash rejects with EBADF', async () => {
    const fs = new SimFileSystem({ seed: 1 });
    const handle = await durableFile(fs, '/d/a', 'x');
    fs.crash();
    const buffer = Buffer.alloc(1);
    await assert.rejects(handle.write(buffer, 0, 1, 0), withCode('EBADF'));
    await assert.rejects(handle.read(buffer, 0, 1, 0), withCode('EBADF'));
    await assert.rejects(handle.datasync(), withCode('EBADF'));
    await assert.rejects(handle.truncate(0), withCode('EBADF'));
    await assert.rejects(handle.size(), withCode('EBADF'));
    await assert.rejects(handle.close(), withCode('EBADF'));
  });

  test('the crashed view rejects every call; the rebooted one works on the same disk', async () => {
    const fs = new SimFileSystem({ seed: 1 });
    await durableFile(fs, '/d/a', 'x');
    const rebooted = fs.crash();
    for (const call of [
      () => fs.open('/d/b', 'create'),
      () => fs.list('/d'),
      () => fs.mkdirp('/e'),
      () => fs.rename('/d/a', '/d/b'),
      () => fs.unlink('/d/a'),
      () => fs.syncDir('/d'),
      () => fs.exists('/d/a'),
      () => fs.readFile('/d/a'),
    ])
      await assert.rejects(call(), withCode('EIO'));
    assert.deepEqual(rebooted.paths(), ['/d/a'], 'nothing the crashed view tried reached the disk');
    const handle = await rebooted.open('/d/a', 'readwrite');
    await put(handle, 'y');
    assert.equal(text(await rebooted.readFile('/d/a')), 'y');
  });

  test('calls in flight at the crash fail and change nothing', async () => {
    const fs = new SimFileSystem({ seed: 1 });
    const handle = await durableFile(fs, '/d/a', 'x');
    const inFlight = [fs.open('/d/b', 'create'), put(handle, 'late'), fs.unlink('/d/a')];
    const rebooted = fs.crash();
    const results = await Promise.allSettled(inFlight);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    assert.deepEqual(rebooted.paths(), ['/d/a']);
    assert.equal(text(await rebooted.readFile('/d/a')), 'x');
  });
});

describe('fault injection', () => {
  test('afterMatchingCalls fails the (n+1)th matching call, once', async () => {
    const fs = new SimFileSystem({ seed: 1 });
    await fs.mkdirp('/d');
    const handle = await fs.open('/d/f', 'create');
    fs.injectFault({ op: 'datasync', error: 'EIO', afterMatchingCalls: 2 });
    await handle.datasync();
    await handle.datasync();
    const error = await handle.datasync().catch((e: unknown) => e);
    assert.ok(error instanceof Error);
    assert.equal(ioErrorCode(error), 'EIO');
    await handle.datasync();
    assert.equal(fs.stats.faultsInjected, 1);
  });

  test('a persistent rule keeps failing until cleared', async () => {
    const fs = new SimFileSystem({ seed: 1 });
    await fs.mkdirp('/d');
    fs.injectFault({ op: 'open', error: 'ENOSPC', persistent: true });
    for (let i = 0; i < 3; i++) await assert.rejects(fs.open('/d/f', 'create'), withCode('ENOSPC'));
    assert.equal(await fs.exists('/d/f'), false, 'a failed open creates nothing');
    fs.clearFaults();
    await fs.open('/d/f', 'create');
  });

  test('pathIncludes limits a rule to matching paths; a rename matches on either path', async () => {
    const fs = new SimFileSystem({ seed: 1 });
    await fs.mkdirp('/d');
    const wal = await fs.open('/d/wal-1.log', 'create');
    const snap = await fs.open('/d/snap-1.tmp', 'create');
    fs.injectFault({ op: 'write', error: 'EIO', pathIncludes: 'wal', persistent: true });
    await put(snap, 'ok');
    await assert.rejects(put(wal, 'no'), withCode('EIO'));
    fs.injectFault({ op: 'rename', error: 'EIO', pathIncludes: '.snap' });
    await assert.rejects(fs.rename('/d/snap-1.tmp', '/d/snap-1.snap'), withCode('EIO'));
    await fs.rename('/d/snap-1.tmp', '/d/snap-1.snap');
    assert.deepEqual(fs.paths(), ['/d/snap-1.snap', '/d/wal-1.log']);
  });

  test('read faults apply to handle reads and readFile; syncDir and unlink faults too', async () => {
    const fs = new SimFileSystem({ seed: 1 });
    const handle = await durableFile(fs, '/d/a', 'x');
    fs.injectFault({ op: 'read', error: 'EIO', persistent: true });
    await assert.rejects(handle.read(Buffer.alloc(1), 0, 1, 0), withCode('EIO'));
    await assert.rejects(fs.readFile('/d/a'), withCode('EIO'));
    fs.injectFault({ op: 'syncDir', error: 'EIO' });
    await assert.rejects(fs.syncDir('/d'), withCode('EIO'));
    fs.injectFault({ op: 'unlink', error: 'EIO' });
    await assert.rejects(fs.unlink('/d/a'), withCode('EIO'));
    assert.deepEqual(fs.paths(), ['/d/a']);
  });

  test('a crash clears the rules: the rebooted disk starts healthy', async () => {
    const fs = new SimFileSystem({ seed: 1 });
    await fs.mkdirp('/d');
    fs.injectFault({ op: 'open', error: 'EIO', persistent: true });
    await (await fs.crash().open('/d/f', 'create')).close();
  });

  test('a failed write may have written a prefix of its bytes', async () => {
    const prefixes = new Set<number>();
    await outcomes(async (fs, seed) => {
      const handle = await durableFile(fs, '/d/a', '');
      fs.injectFault({ op: 'write', error: 'ENOSPC' });
      await assert.rejects(put(handle, 'abcdefgh'), withCode('ENOSPC'));
      const after = text(await fs.readFile('/d/a'))!;
      assert.equal(after, 'abcdefgh'.slice(0, after.length), `seed ${seed}`);
      prefixes.add(after.length);
    });
    assert.ok(prefixes.has(0) && prefixes.has(8) && prefixes.size > 4, `prefix lengths ${[...prefixes]}`);
  });

  test('fsyncgate: after a failed datasync each write survived or not, and a later sync does not bring it back', async () => {
    const durable = new Set<string>();
    await outcomes(async (fs, seed) => {
      const handle = await durableFile(fs, '/d/a', '........');
      await put(handle, 'AAAA', 0);
      await put(handle, 'BBBB', 4);
      fs.injectFault({ op: 'datasync', error: 'EIO' });
      await assert.rejects(handle.datasync(), withCode('EIO'));
      assert.equal(text(await fs.readFile('/d/a')), 'AAAABBBB', 'the page cache still shows both writes');
      const fresh = await fs.open('/d/a', 'readwrite');
      await fresh.datasync(); // allowed, and succeeds: the lost pages were marked clean
      const after = text(fs.crash().durableContent('/d/a'));
      assert.ok(['AAAABBBB', 'AAAA....', '....BBBB', '........'].includes(after!), `seed ${seed}: ${after}`);
      durable.add(after!);
    });
    assert.equal(durable.size, 4, 'the two writes survive independently');
  });

  test('a datasync after rewriting the lost bytes on a new handle makes them durable', async () => {
    const fs = new SimFileSystem({ seed: 3 });
    const handle = await durableFile(fs, '/d/a', '....');
    await put(handle, 'AAAA');
    fs.injectFault({ op: 'datasync', error: 'EIO' });
    await assert.rejects(handle.datasync(), withCode('EIO'));
    const fresh = await fs.open('/d/a', 'readwrite');
    await put(fresh, 'AAAA');
    await fresh.datasync();
    assert.equal(text(fs.crash().durableContent('/d/a')), 'AAAA');
  });

  test('rules are checked as given: a negative afterMatchingCalls is a programmer error', () => {
    const fs = new SimFileSystem({ seed: 1 });
    assert.throws(() => fs.injectFault({ op: 'write', error: 'EIO', afterMatchingCalls: -1 }));
  });
});

describe('capacity', () => {
  test('a write past the capacity fills the disk and fails with ENOSPC', async () => {
    const fs = new SimFileSystem({ seed: 2, capacityBytes: 100 });
    const handle = await durableFile(fs, '/d/f', 'x'.repeat(90));
    await assert.rejects(put(handle, 'y'.repeat(20), 90), withCode('ENOSPC'));
    assert.equal(await handle.size(), 100, 'what fitted was written');
    await put(handle, 'z'.repeat(50), 0); // overwriting needs no space
    await fs.unlink('/d/f');
    const other = await fs.open('/d/g', 'create');
    await put(other, 'w'.repeat(100)); // unlinking freed the space
  });

  test('the default capacity is large', async () => {
    const fs = new SimFileSystem({ seed: 2 });
    await durableFile(fs, '/d/f', 'x'.repeat(1 << 20));
  });
});

describe('corruption', () => {
  test('flipBit flips exactly one bit of the durable and the current bytes', async () => {
    const fs = new SimFileSystem({ seed: 4 });
    await durableFile(fs, '/d/a', 'abcdefgh');
    const { byteOffset, bit } = fs.flipBit('/d/a', 3);
    assert.equal(byteOffset, 3);
    assert.ok(bit >= 0 && bit < 8);
    const expected = Buffer.from('abcdefgh');
    expected[3] ^= 1 << bit;
    assert.deepEqual(fs.durableContent('/d/a'), expected);
    assert.deepEqual(Buffer.from(await fs.readFile('/d/a')), expected);
    assert.deepEqual(Buffer.from(await fs.crash().readFile('/d/a')), expected);
  });

  test('flipBit picks the position from the seed when not given, inside the file', async () => {
    const positions = new Set<number>();
    await outcomes(async (fs, seed) => {
      await durableFile(fs, '/d/a', 'abcdefgh');
      const where = fs.flipBit('/d/a');
      assert.ok(where.byteOffset >= 0 && where.byteOffset < 8, `seed ${seed}`);
      positions.add(where.byteOffset * 8 + where.bit);
      const again = new SimFileSystem({ seed });
      await durableFile(again, '/d/a', 'abcdefgh');
      assert.deepEqual(again.flipBit('/d/a'), where, `seed ${seed}: same seed, same flip`);
    });
    assert.ok(positions.size > 32, `positions ${positions.size}`);
  });

  test('flipBit refuses a missing or empty file and an offset past the end', async () => {
    const fs = new SimFileSystem({ seed: 4 });
    await durableFile(fs, '/d/empty', '');
    assert.throws(() => fs.flipBit('/d/missing'), /missing/);
    assert.throws(() => fs.flipBit('/d/empty'), /no durable bytes/);
    await durableFile(fs, '/d/a', 'ab');
    assert.throws(() => fs.flipBit('/d/a', 2), /past the end/);
  });

  test('corruptRandomFile picks among the files the filter accepts', async () => {
    const fs = new SimFileSystem({ seed: 5 });
    await durableFile(fs, '/d/a.log', 'log bytes');
    await durableFile(fs, '/d/b.snap', 'snapshot bytes');
    for (let i = 0; i < 20; i++) {
      const corrupted = fs.corruptRandomFile((p) => p.endsWith('.snap'));
      assert.equal(corrupted?.path, '/d/b.snap');
    }
    assert.equal(text(fs.durableContent('/d/a.log')), 'log bytes');
    assert.equal(
      fs.corruptRandomFile((p) => p.endsWith('.none')),
      undefined,
    );
  });
});

describe('determinism and timing', () => {
  /** Concurrent writers, unsynced writes and directory changes, then a crash: the whole durable disk. */
  async function workload(seed: number, latency = { minTicks: 1, maxTicks: 4 }): Promise<string> {
    const fs = new SimFileSystem({ seed, latency });
    await fs.mkdirp('/d');
    const writer = async (name: string) => {
      const handle = await fs.open(`/d/${name}`, 'create');
      for (let i = 0; i < 8; i++) {
        await put(handle, Buffer.alloc(700, name.charCodeAt(0) + i), i * 700);
        if (i === 3) await handle.datasync();
      }
    };
    await Promise.all(['a', 'b', 'c'].map(writer));
    await fs.syncDir('/d');
    await fs.rename('/d/a', '/d/z');
    const rebooted = fs.crash();
    return rebooted
      .paths()
      .map((p) => `${p}:${rebooted.durableContent(p)!.toString('hex')}`)
      .join('\n');
  }

  test('the same seed and operations give a byte-identical disk', async () => {
    for (let seed = 0; seed < 20; seed++)
      assert.equal(await workload(seed), await workload(seed), `seed ${seed}`);
  });

  test('different seeds give different disks', async () => {
    const disks = new Set<string>();
    for (let seed = 0; seed < 30; seed++) disks.add(await workload(seed));
    assert.ok(disks.size > 20, `only ${disks.size} distinct outcomes in 30 seeds`);
  });

  test('every call resolves on a later tick, not synchronously or in the same microtask run', async () => {
    const fs = new SimFileSystem({ seed: 6 });
    let resolved = false;
    const pending = fs.mkdirp('/d').then(() => {
      resolved = true;
    });
    for (let i = 0; i < 10; i++) await Promise.resolve();
    assert.equal(resolved, false);
    await pending;
    assert.equal(resolved, true);
  });

  test('seeded latency lets calls complete out of order', async () => {
    const fs = new SimFileSystem({ seed: 7, latency: { minTicks: 1, maxTicks: 10 } });
    await fs.mkdirp('/d');
    const order: number[] = [];
    await Promise.all(Array.from({ length: 10 }, (_, i) => fs.exists('/d').then(() => order.push(i))));
    assert.notDeepEqual(
      order,
      order.toSorted((x, y) => x - y),
    );
  });

  test('latency must be at least one tick', () => {
    assert.throws(() => new SimFileSystem({ seed: 1, latency: { minTicks: 0, maxTicks: 1 } }));
    assert.throws(() => new SimFileSystem({ seed: 1, latency: { minTicks: 3, maxTicks: 2 } }));
  });
});

describe('introspection', () => {
  test('stats count successful writes, bytes, syncs and crashes across boots', async () => {
    const fs = new SimFileSystem({ seed: 8 });
    const handle = await durableFile(fs, '/d/a', 'abc');
    await put(handle, 'de', 3);
    fs.injectFault({ op: 'write', error: 'EIO' });
    await assert.rejects(put(handle, 'x'));
    const rebooted = fs.crash();
    assert.deepEqual(rebooted.stats, {
      writes: 2,
      bytesWritten: 5,
      datasyncs: 1,
      syncDirs: 1,
      crashes: 1,
      faultsInjected: 1,
    });
  });

  test('durableContent shows the durable entry and bytes; paths shows the current namespace', async () => {
    const fs = new SimFileSystem({ seed: 9 });
    const handle = await durableFile(fs, '/d/a', 'old');
    await put(handle, 'new');
    await fs.open('/d/b', 'create');
    assert.equal(text(fs.durableContent('/d/a')), 'old');
    assert.equal(fs.durableContent('/d/b'), undefined, 'the entry of b is not durable yet');
    assert.deepEqual(fs.paths(), ['/d/a', '/d/b']);
  });
});

test('an Engram store runs on the simulated disk and recovers after a crash', async () => {
  const fs = new SimFileSystem({ seed: 3, syncWrites: true });
  const store = await Store.open(bankDefinition, { dir: '/data', fs, segmentBytesMax: 2048 });
  for (let i = 0; i < 100; i++) await store.execute('deposit', { id: `d${i}`, account: 'a', amount: 1 });
  const hash = store.stateHash();
  const rebooted = fs.crash();
  const recovered = await Store.open(bankDefinition, { dir: '/data', fs: rebooted });
  assert.equal(recovered.stateHash(), hash);
  await recovered.close();
});
