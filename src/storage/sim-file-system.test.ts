import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Store } from '../engine/store.ts';
import { bankDefinition } from '../engine/testing/bank.ts';
import { SimFileSystem } from './sim-file-system.ts';

async function writeFile(fs: SimFileSystem, file: string, content: string, sync: boolean) {
  await fs.mkdirp('/d');
  const h = await fs.open(file, 'create');
  await h.write(Buffer.from(content), 0, content.length, 0);
  if (sync) await h.datasync();
  return h;
}

test('synced data and synced directory entries survive a crash; unsynced ones may not, and never come back torn beyond their bytes', async () => {
  const outcomes = new Set<string>();
  for (let seed = 0; seed < 200; seed++) {
    const fs = new SimFileSystem({ seed });
    const h = await writeFile(fs, '/d/a', 'durable!', true);
    await fs.syncDir('/d');
    await h.write(Buffer.from('UNSYNCED'), 0, 8, 8);
    await writeFile(fs, '/d/b', 'new file', true); // content synced, entry not
    const rebooted = fs.crash();
    await assert.rejects(fs.readFile('/d/a'), (e: { code?: string }) => e.code === 'EIO');
    const a = Buffer.from(await rebooted.readFile('/d/a')).toString('latin1');
    assert.ok(a.startsWith('durable!'), `seed ${seed}: synced prefix kept, got ${JSON.stringify(a)}`);
    assert.ok(a.length <= 16);
    for (let i = 8; i < a.length; i++)
      assert.ok(
        a[i] === 'UNSYNCED'[i - 8] || a[i] === '\0',
        `seed ${seed}: byte ${i} is old or new, never garbage`,
      );
    outcomes.add(`${a.length}:${await rebooted.exists('/d/b')}`);
    await assert.rejects(h.size(), (e: { code?: string }) => e.code === 'EBADF');
  }
  assert.ok(outcomes.size >= 4, `crashes explore several outcomes: ${[...outcomes]}`);
});

test('the same seed and operations give the same disk after a crash', async () => {
  const run = async (seed: number) => {
    const fs = new SimFileSystem({ seed });
    const h = await writeFile(fs, '/d/x', 'a'.repeat(3000), false);
    await h.write(Buffer.from('b'.repeat(2000)), 0, 2000, 1000);
    const rebooted = fs.crash();
    return (await rebooted.exists('/d/x'))
      ? Buffer.from(await rebooted.readFile('/d/x')).toString('latin1')
      : '<gone>';
  };
  for (let seed = 0; seed < 20; seed++) assert.equal(await run(seed), await run(seed));
});

test('fault rules fail the chosen call, once or persistently, with the errno code', async () => {
  const fs = new SimFileSystem({ seed: 1 });
  fs.injectFault({ op: 'datasync', error: 'EIO', afterMatchingCalls: 1 });
  const h = await writeFile(fs, '/d/f', 'x', true);
  await assert.rejects(h.datasync(), (e: { code?: string }) => e.code === 'EIO');
  await h.datasync();
  fs.injectFault({ op: 'write', error: 'ENOSPC', pathIncludes: '/d/f', persistent: true });
  await assert.rejects(h.write(Buffer.from('y'), 0, 1, 1), (e: { code?: string }) => e.code === 'ENOSPC');
  await assert.rejects(h.write(Buffer.from('y'), 0, 1, 1), (e: { code?: string }) => e.code === 'ENOSPC');
  fs.clearFaults();
  await h.write(Buffer.from('y'), 0, 1, 1);
});

test('a capacity limit fails writes with ENOSPC', async () => {
  const fs = new SimFileSystem({ seed: 2, capacityBytes: 100 });
  const h = await writeFile(fs, '/d/f', 'x'.repeat(90), true);
  await assert.rejects(h.write(Buffer.alloc(20), 0, 20, 90), (e: { code?: string }) => e.code === 'ENOSPC');
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
