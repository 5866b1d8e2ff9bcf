import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { tempDirs } from '../../test/support/temp-dirs.ts';
import { Store } from '../engine/store.ts';
import { bankDefinition } from '../engine/testing/bank.ts';
import type { EngramError } from '../errors.ts';
import { parseFrame } from '../log/frame.ts';
import { scanTolerant, type VerifiedGroup } from '../log/repair.ts';
import { NodeFileSystem } from '../storage/node-file-system.ts';

// The CLI runs as a child process, exactly as an operator runs it: exit codes and output are the contract.
const root = path.resolve(import.meta.dirname, '../..');
const fs = new NodeFileSystem();
const tempDir = tempDirs('engram-cli-');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function engram(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args],
      { cwd: root },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Decision time of every record in these tests: inspect must decode it from the last record. */
const NOW_MS = Date.UTC(2031, 4, 6, 7, 8, 9, 123);

type Balances = [string, number][];

/**
 * A bank log: group g holds `groups[g]` deposits decided in one turn (so one group commit), then one
 * transfer on its own. Returns the balances after each group, by the group's last LSN.
 */
async function buildBank(
  dir: string,
  groups: number[],
  segmentBytesMax?: number,
): Promise<Map<number, Balances>> {
  const store = await Store.open(bankDefinition, { dir, segmentBytesMax, clock: () => NOW_MS });
  const states = new Map<number, Balances>([[0, []]]);
  const balances = () => store.read((s) => [...s.balances].sort((a, b) => a[0].localeCompare(b[0])));
  for (const [g, size] of groups.entries()) {
    await Promise.all(
      Array.from({ length: size }, (_, i) =>
        store.execute('deposit', { id: `g${g}-${i}`, account: `acct${i % 3}`, amount: 10 + g }),
      ),
    );
    states.set(store.lsnApplied, await balances());
  }
  await store.execute('transfer', { from: 'acct0', to: 'acct1', amount: 5 });
  states.set(store.lsnApplied, await balances());
  await store.close();
  return states;
}

async function walFiles(dir: string): Promise<string[]> {
  const wal = path.join(dir, 'wal');
  return (await readdir(wal)).sort().map((n) => path.join(wal, n));
}

async function contents(files: string[]): Promise<Buffer[]> {
  return Promise.all(files.map((f) => readFile(f)));
}

/** Flips a payload byte of the group's second record; returns that frame's offset. */
async function damageGroup(file: string, group: VerifiedGroup): Promise<number> {
  const buf = await readFile(file);
  const first = parseFrame(buf, group.startOffset, buf.length);
  assert.ok(first.ok);
  const second = parseFrame(buf, first.frame.next, buf.length);
  assert.ok(second.ok && second.frame.lsn === group.firstLsn + 1, 'the group holds at least two records');
  buf[second.frame.payloadStart + 3] ^= 0x20;
  await writeFile(file, buf);
  return second.frame.offset;
}

async function openBank(dir: string) {
  return Store.open(bankDefinition, { dir });
}

test('inspect: segments, counts by type with names, the last commit and its time, as a table and as JSON', async () => {
  const dir = await tempDir();
  await buildBank(dir, [1, 3, 2, 4, 2, 3], 600);
  const files = await walFiles(dir);
  assert.ok(files.length >= 2, 'the log spans several segments');

  const json = await engram('inspect', dir, '--json', '--definition', 'bank');
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout);
  assert.equal(report.status, 'clean');
  assert.equal(report.records, 16);
  assert.equal(report.groups, 7);
  assert.equal(report.firstLsn, 1);
  assert.equal(report.lastLsn, 16);
  assert.deepEqual(report.recordsByType, [
    { type: 1, name: 'deposit', records: 15 },
    { type: 2, name: 'transfer', records: 1 },
  ]);
  assert.deepEqual(report.lastCommit, {
    lsn: 16,
    type: 2,
    name: 'transfer',
    timestampMs: NOW_MS,
    timestamp: new Date(NOW_MS).toISOString(),
  });
  assert.deepEqual(
    report.segments.map((s: { name: string }) => s.name),
    files.map((f) => path.basename(f)),
  );
  assert.equal(
    report.segments.reduce((a: number, s: { records: number }) => a + s.records, 0),
    16,
  );
  // A segment may be preallocated: past its last commit marker, only zeros that were never written.
  for (const s of report.segments) {
    const content = await readFile(path.join(dir, 'wal', s.name));
    assert.equal(s.fileBytes, content.length);
    assert.ok(s.committedBytes <= s.fileBytes, `${s.name}: committed ${s.committedBytes} > ${s.fileBytes}`);
    assert.ok(
      content.subarray(s.committedBytes).every((byte: number) => byte === 0),
      s.name,
    );
  }
  assert.deepEqual(report.tornTails, []);

  const text = await engram('inspect', path.join(dir, 'wal'));
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /records: 16 in 7 group\(s\), LSN 1\.\.16/);
  assert.match(text.stdout, new RegExp(`last commit: LSN 16, type 2, at ${new Date(NOW_MS).toISOString()}`));
  assert.match(text.stdout, /wal-00000000000000000001\.log\s+1\s+1\.\.\d+/);
  assert.doesNotMatch(text.stdout, /torn tail/);
});

test('verify: a clean log exits 0, from the data directory or from wal/', async () => {
  const dir = await tempDir();
  await buildBank(dir, [2, 2]);
  for (const target of [dir, path.join(dir, 'wal')]) {
    const run = await engram('verify', target);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^OK .*5 committed record\(s\) in 3 group\(s\)/);
  }
  const json = await engram('verify', dir, '--json');
  assert.equal(json.code, 0);
  assert.deepEqual(
    { ...JSON.parse(json.stdout), dir: undefined },
    {
      dir: undefined,
      ok: true,
      status: 'clean',
      segments: 1,
      records: 5,
      groups: 3,
      firstLsn: 1,
      lastLsn: 5,
      warnings: [],
      error: null,
      damage: null,
      repair: null,
    },
  );
});

test('corruption mid-log: verify exits 1 naming file and offset, the store refuses, and repair needs consent', async () => {
  const dir = await tempDir();
  const states = await buildBank(dir, [2, 3, 3, 2, 4, 3, 2], 700);
  const scan = await scanTolerant(fs, path.join(dir, 'wal'));
  assert.ok(scan.segments.length >= 3, `${scan.segments.length} segments`);
  // The second group of the second segment: committed groups before it and after it, and later segments.
  const segment = scan.segments.find(
    (s) => s.groups.length >= 2 && s.groups[1].lastLsn > s.groups[1].firstLsn,
  );
  assert.ok(segment && segment !== scan.segments.at(-1), 'a multi-record group in an earlier segment');
  const damaged = segment.groups[1];
  const keepLsn = segment.groups[0].lastLsn;
  const lastLsn = Math.max(...states.keys());
  const offset = await damageGroup(segment.file, damaged);

  const verify = await engram('verify', dir);
  assert.equal(verify.code, 1, verify.stdout + verify.stderr);
  assert.match(verify.stdout, new RegExp(`CORRUPT: ${segment.file} at offset ${offset}\\b`));
  assert.match(verify.stdout, /frame checksum mismatch/);
  assert.match(verify.stdout, new RegExp(`engram repair ${dir} --truncate-after ${keepLsn} --yes`));
  const json = JSON.parse((await engram('verify', dir, '--json')).stdout);
  assert.equal(json.ok, false);
  assert.equal(json.status, 'corrupt');
  assert.equal(json.error.file, segment.file);
  assert.equal(json.error.offset, offset);
  assert.equal(json.repair.truncateAfter, keepLsn);
  assert.equal(json.repair.lsnMaxLost, lastLsn);
  assert.equal(json.repair.recordsLostMin, lastLsn - keepLsn);

  await assert.rejects(openBank(dir), (e: EngramError) => e.code === 'corruption');

  const files = await walFiles(dir);
  const before = await contents(files);
  const dryRun = await engram('repair', dir, '--truncate-after', String(keepLsn));
  assert.equal(dryRun.code, 3, dryRun.stdout + dryRun.stderr);
  assert.match(
    dryRun.stdout,
    new RegExp(`truncate ${segment.file}: remove bytes ${damaged.startOffset}\\.\\.`),
  );
  for (const later of files.filter((f) => f > segment.file))
    assert.match(dryRun.stdout, new RegExp(`delete ${later}`));
  assert.match(
    dryRun.stdout,
    new RegExp(`records lost: at least ${lastLsn - keepLsn} \\(LSN ${keepLsn + 1}\\.\\.${lastLsn}\\)`),
  );
  assert.match(dryRun.stdout, /Dry run: nothing was changed/);
  assert.deepEqual(await walFiles(dir), files);
  assert.deepEqual(await contents(files), before, 'a dry run changes nothing');

  const inside = await engram('repair', dir, '--truncate-after', String(keepLsn - 1), '--yes');
  assert.equal(inside.code, 2, 'not the end of a committed group');
  assert.match(inside.stderr, /not the last LSN of a committed group/);
  assert.match(inside.stderr, new RegExp(`Valid choices around it: \\d+ .*, ${keepLsn} `));
  const past = await engram('repair', dir, '--truncate-after', String(damaged.lastLsn), '--yes');
  assert.equal(past.code, 2);
  assert.match(past.stderr, new RegExp(`past the verified log, which ends at LSN ${keepLsn}`));
  assert.deepEqual(await contents(files), before, 'refused repairs change nothing');

  const repaired = await engram('repair', dir, '--truncate-after', String(keepLsn), '--yes');
  assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
  assert.match(repaired.stdout, new RegExp(`Repaired: the log now ends at LSN ${keepLsn}`));
  assert.deepEqual(
    await walFiles(dir),
    files.filter((f) => f <= segment.file),
  );
  const verified = await engram('verify', dir);
  assert.equal(verified.code, 0, verified.stdout);

  const store = await openBank(dir);
  assert.equal(store.lsnApplied, keepLsn);
  assert.equal(store.recovery.recordsReplayed, keepLsn);
  assert.deepEqual(
    await store.read((s) => [...s.balances].sort((a, b) => a[0].localeCompare(b[0]))),
    states.get(keepLsn),
  );
  assert.deepEqual(await store.execute('deposit', { id: 'after-repair', account: 'z', amount: 1 }), {
    balance: 1,
    lsn: keepLsn + 1,
  });
  await store.close();
  assert.equal((await engram('verify', dir)).code, 0);
});

test('repair on a healthy log rolls it back to a group end, across segments', async () => {
  const dir = await tempDir();
  const states = await buildBank(dir, [3, 2, 3, 2, 3, 2], 500);
  const files = await walFiles(dir);
  assert.ok(files.length >= 3);
  const keepLsn = 5;
  assert.ok(states.has(keepLsn));
  const dryRun = await engram('repair', path.join(dir, 'wal'), '--truncate-after', String(keepLsn));
  assert.equal(dryRun.code, 3);
  assert.match(dryRun.stdout, /the log verifies completely .* this cut removes acknowledged records/);
  const run = await engram('repair', path.join(dir, 'wal'), '--truncate-after', String(keepLsn), '--yes');
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const store = await openBank(dir);
  assert.equal(store.lsnApplied, keepLsn);
  assert.deepEqual(
    await store.read((s) => [...s.balances].sort((a, b) => a[0].localeCompare(b[0]))),
    states.get(keepLsn),
  );
  await store.close();
  const nothing = await engram('repair', dir, '--truncate-after', String(keepLsn));
  assert.equal(nothing.code, 0, 'the log already ends there: nothing to remove');
  assert.match(nothing.stdout, /Nothing to remove/);
});

test('repair refuses a cut behind a snapshot, which would keep the store from starting', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  await Promise.all([1, 2].map((i) => store.execute('deposit', { id: `a${i}`, account: 'a', amount: i })));
  await Promise.all([3, 4].map((i) => store.execute('deposit', { id: `b${i}`, account: 'b', amount: i })));
  const snapshot = await store.snapshot();
  await store.execute('deposit', { id: 'c', account: 'c', amount: 1 });
  await store.close();
  assert.equal(snapshot.lsn, 4);
  const run = await engram('repair', dir, '--truncate-after', '2', '--yes');
  assert.equal(run.code, 1, run.stdout + run.stderr);
  assert.match(run.stderr, /snapshot\(s\) .*snap-0+4\.snap \(LSN 4\)/);
  assert.match(run.stderr, /Move them out of the snapshots directory/);
  const reopened = await openBank(dir);
  assert.equal(reopened.lsnApplied, 5, 'nothing was cut');
  await reopened.close();
});

test('a torn tail (garbage appended, or a frame cut short) is a warning: exit 0, and the store starts', async () => {
  const dir = await tempDir();
  await buildBank(dir, [2, 3]);
  const [file] = await walFiles(dir);
  const clean = await readFile(file);
  await appendFile(file, Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7]));
  const garbage = await engram('verify', dir);
  assert.equal(garbage.code, 0, garbage.stdout);
  assert.match(
    garbage.stdout,
    new RegExp(`warning: torn tail in ${file} at offset ${clean.length}: 11 byte\\(s\\)`),
  );
  assert.match(garbage.stdout, /the next start cuts them automatically/);
  const inspect = await engram('inspect', dir);
  assert.equal(inspect.code, 0);
  assert.match(
    inspect.stdout,
    new RegExp(`torn tail: ${path.basename(file)} at offset ${clean.length}: 11 byte`),
  );

  // Cut inside the last record's frame: the transfer's group is torn; the three deposits before it stay.
  const scan = await scanTolerant(fs, path.join(dir, 'wal'));
  const lastGroup = scan.segments[0].groups.at(-1)!;
  await writeFile(file, clean.subarray(0, lastGroup.startOffset + 30));
  const cut = await engram('verify', dir, '--json');
  assert.equal(cut.code, 0, cut.stdout);
  const report = JSON.parse(cut.stdout);
  assert.equal(report.status, 'torn_tail');
  assert.equal(report.lastLsn, lastGroup.firstLsn - 1);
  assert.deepEqual(
    report.warnings.map((w: { file: string; offset: number; bytes: number }) => [w.file, w.offset, w.bytes]),
    [[file, lastGroup.startOffset, 30]],
  );
  const store = await openBank(dir);
  assert.equal(store.lsnApplied, lastGroup.firstLsn - 1);
  assert.equal(store.recovery.tornTails.length, 1);
  await store.close();
  const after = await engram('verify', dir);
  assert.equal(after.code, 0);
  assert.doesNotMatch(after.stdout, /warning/);
});

test('usage errors exit 2 and say what to do', async () => {
  const dir = await tempDir();
  const empty = path.join(dir, 'not-a-store');
  await mkdir(empty);
  const logDir = await tempDir();
  await buildBank(logDir, [1]);
  const cases: [string[], RegExp][] = [
    [['frobnicate', dir], /unknown command 'frobnicate'[\s\S]*engram --help/],
    [['verify'], /missing required argument 'dir'/],
    [['inspect', path.join(dir, 'missing')], /does not exist\. Pass the store's data directory/],
    [['verify', empty], /holds no Engram log: no wal\/ directory and no wal-\*\.log segment files/],
    [['repair', logDir, '--truncate-after', 'twelve'], /'twelve' is not an LSN/],
    [['repair', logDir, '--truncate-after', '-1'], /is not an LSN/],
    [['repair', logDir], /required option '--truncate-after <lsn>' not specified/],
    [
      ['inspect', logDir, '--definition', 'nope'],
      /unknown definition 'nope'; known definitions: balance-gate, bank/,
    ],
    [[], /Usage: engram/],
  ];
  for (const [args, message] of cases) {
    const run = await engram(...args);
    assert.equal(run.code, 2, `engram ${args.join(' ')}: ${run.stdout}${run.stderr}`);
    assert.match(run.stderr, message, `engram ${args.join(' ')}`);
    assert.equal(run.stdout, '', 'errors go to stderr');
  }
  const help = await engram('--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /inspect[\s\S]*verify[\s\S]*repair[\s\S]*Exit codes/);
});

test('bin/engram.mjs launches the CLI without a loader flag', async () => {
  const dir = await tempDir();
  await buildBank(dir, [1]);
  const run = await new Promise<Run>((resolve) => {
    execFile(process.execPath, ['bin/engram.mjs', 'verify', dir], { cwd: root }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^OK /);
  await truncate(path.join(dir, 'wal', (await readdir(path.join(dir, 'wal')))[0]), 40);
  assert.equal((await engram('verify', dir)).code, 0, 'a header plus a scrap is a torn tail');
});
