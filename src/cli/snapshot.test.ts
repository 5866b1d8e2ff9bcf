import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { Store } from '../engine/store.ts';
import { bankDefinition } from '../engine/testing/bank.ts';
import { runCli } from './run.ts';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = {
    out: (t: string) => {
      out += t;
    },
    err: (t: string) => {
      err += t;
    },
    stderrIsTty: false,
    stderr: process.stderr,
  };
  const code = await runCli(argv, io);
  return { code, out, err };
}

async function storeWithSnapshots(): Promise<{ dir: string; files: string[] }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'engram-cli-snap-'));
  dirs.push(dir);
  const store = await Store.open(bankDefinition, {
    dir,
    snapshots: { keep: 3, everyMs: 3_600_000, everyLogBytes: 2 ** 40 },
  });
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 20; i++)
      await store.execute('deposit', { id: `${round}-${i}`, account: 'a', amount: 1 });
    await store.snapshot();
  }
  await store.execute('deposit', { id: 'tail', account: 'a', amount: 1 });
  await store.close();
  const names = (await readdir(path.join(dir, 'snapshots'))).sort();
  return { dir, files: names.map((n) => path.join(dir, 'snapshots', n)) };
}

test('snapshot verify: 0 for a good snapshot (decoded hash matches with --definition), 1 for a damaged one', async () => {
  const { files } = await storeWithSnapshots();
  const good = await cli('snapshot', 'verify', files[1], '--definition', 'bank');
  assert.equal(good.code, 0, good.out + good.err);
  assert.match(good.out, /matches the header/);
  assert.match(good.out, /the log continues after it at wal-\d{20}\.log offset \d+/);
  const content = await readFile(files[1]);
  content[content.length - 40] ^= 4;
  await writeFile(files[1], content);
  const bad = await cli('snapshot', 'verify', files[1], '--json');
  assert.equal(bad.code, 1);
  assert.equal(JSON.parse(bad.out).ok, false);
  assert.match(JSON.parse(bad.out).error, /checksum|footer/);
  assert.equal((await cli('snapshot', 'inspect', '/no/such.snap')).code, 2);
});

test('inspect lists snapshots with LSN and age, and marks the one a restart would load (falling back past a damaged one)', async () => {
  const { dir, files } = await storeWithSnapshots();
  const before = JSON.parse((await cli('inspect', dir, '--json')).out);
  assert.equal(before.snapshots.length, 2);
  assert.equal(before.snapshots[0].lsn, 40);
  assert.equal(before.snapshots[0].restartUses, true);
  assert.equal(before.snapshots[1].restartUses, false);
  const newest = await readFile(files[1]);
  newest[100] ^= 1;
  await writeFile(files[1], newest);
  const after = await cli('inspect', dir);
  assert.match(after.out, /snap-0+40\.snap\s+40\s+.*INVALID/);
  assert.match(after.out, /snap-0+20\.snap\s+20\s+.*valid\s+uses this/);
});

test('snapshot create (under the directory lock, so never beside a running store) takes a snapshot of a stopped store at the end of its log, and the store starts from it', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'engram-cli-create-'));
  dirs.push(dir);
  const store = await Store.open(bankDefinition, { dir });
  for (let i = 0; i < 30; i++) await store.execute('deposit', { id: `c${i}`, account: 'a', amount: 2 });
  const hash = store.stateHash();
  await store.close();
  const created = await cli('snapshot', 'create', dir, '--definition', 'bank');
  assert.equal(created.code, 0, created.out + created.err);
  assert.match(created.out, /LSN 30/);
  const reopened = await Store.open(bankDefinition, { dir });
  assert.equal(reopened.recovery.snapshot?.lsn, 30);
  assert.equal(reopened.stateHash(), hash);
  await reopened.close();
  assert.equal((await cli('snapshot', 'create', dir)).code, 2, 'the definition is required');
});
