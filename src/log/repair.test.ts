import assert from 'node:assert/strict';
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { tempDirs } from '../../test/support/temp-dirs.ts';
import type { EngramError } from '../errors.ts';
import { NodeFileSystem } from '../storage/node-file-system.ts';
import { SEGMENT_HEADER_BYTES } from './format.ts';
import { parseFrame } from './frame.ts';
import { openLog } from './log.ts';
import { scanLog } from './reader.ts';
import { applyTruncate, cutPoints, planTruncateAfter, scanTolerant, type TruncatePlan } from './repair.ts';

const fs = new NodeFileSystem();
const tempDir = tempDirs('engram-repair-');

/** Writes groups of records (one flush each); record `lsn` carries the payload `record-<lsn>`. */
async function writeLog(dir: string, groups: number[], segmentBytesMax = 1 << 20): Promise<void> {
  const { writer } = await openLog({
    fs,
    dir,
    policy: { kind: 'immediate' },
    segmentBytesMax,
    // Segment layouts these tests rely on would otherwise depend on when a spare is ready (see
    // preallocation.test.ts for the preallocated case).
    preallocate: false,
    onRecord: () => {},
    writer: { onDurable: () => {}, onFailure: () => {} },
  });
  for (const size of groups) {
    for (let i = 0; i < size; i++) {
      const w = writer.beginRecord(3 + (writer.nextLsn % 2), 1, 0);
      w.string(`record-${writer.nextLsn}-${'p'.repeat(writer.nextLsn % 29)}`);
      writer.endRecord();
    }
    await writer.sync();
  }
  await writer.close();
}

/** The LSNs `scanLog` hands out, checking each payload names its own LSN. */
async function committedLsns(dir: string): Promise<number[]> {
  const lsns: number[] = [];
  await scanLog(fs, dir, {
    onRecord: (r) => {
      const text = r.buf.toString('utf8', r.payloadStart + 1, r.payloadEnd);
      assert.ok(text.startsWith(`record-${r.lsn}-`), `payload of LSN ${r.lsn} is ${text}`);
      lsns.push(r.lsn);
    },
  });
  return lsns;
}

const range = (first: number, last: number) => Array.from({ length: last - first + 1 }, (_, i) => first + i);

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir))
    .filter((n) => n.startsWith('wal-'))
    .sort()
    .map((n) => path.join(dir, n));
}

function planOrFail(scan: Awaited<ReturnType<typeof scanTolerant>>, lsn: number): TruncatePlan {
  const planned = planTruncateAfter(scan, lsn);
  assert.ok(planned.ok, planned.ok ? '' : planned.reason);
  return planned.plan;
}

test('on a healthy log the tolerant scan agrees with scanLog and offers every group end as a cut', async () => {
  const dir = await tempDir();
  await writeLog(dir, [1, 3, 2, 4, 1, 5], 512);
  const strict = await scanLog(fs, dir, {});
  const scan = await scanTolerant(fs, dir);
  assert.equal(scan.damage, undefined);
  assert.equal(scan.lastLsn, strict.lastLsn);
  assert.equal(scan.segments.length, strict.segments.length);
  for (const [i, segment] of scan.segments.entries()) {
    assert.equal(segment.state, 'verified');
    assert.equal(segment.records, strict.segments[i].records);
    assert.equal(segment.groups.length, strict.segments[i].groups);
    assert.equal(segment.verifiedBytes, strict.segments[i].committedBytes);
    assert.deepEqual(segment.recordsByType, strict.segments[i].recordsByType);
  }
  assert.deepEqual(cutPoints(scan), [0, 1, 4, 6, 10, 11, 16]);
  assert.equal(scan.unverified.records, 0);
});

test('a flipped byte in a committed group: the scan stops where scanLog does, and the cut before it starts cleanly', async () => {
  const dir = await tempDir();
  await writeLog(dir, [2, 3, 3, 2]);
  const [file] = await segmentFiles(dir);
  const healthy = await scanTolerant(fs, dir);
  const damagedGroup = healthy.segments[0].groups[1];
  const content = await readFile(file);
  const first = parseFrame(content, damagedGroup.startOffset, content.length);
  assert.ok(first.ok);
  content[first.frame.next + 30] ^= 0x08; // inside the group's second record (LSN 4)
  await writeFile(file, content);

  let strictOffset: unknown;
  await assert.rejects(scanLog(fs, dir, {}), (e: EngramError) => {
    strictOffset = e.details.offset;
    return e.code === 'corruption';
  });
  const scan = await scanTolerant(fs, dir);
  assert.equal(scan.damage?.file, file);
  assert.equal(scan.damage?.offset, strictOffset);
  assert.equal(scan.damage?.reason, 'frame checksum mismatch');
  assert.equal(scan.lastLsn, 2);
  assert.equal(scan.segments[0].state, 'damaged');
  assert.deepEqual(cutPoints(scan), [0, 2]);
  assert.equal(scan.unverified.records, 7, 'LSN 3 and 5..10 still checksum, LSN 4 does not');
  assert.equal(scan.unverified.lsnMax, 10);

  const plan = planOrFail(scan, 2);
  assert.deepEqual(plan.truncate, {
    file,
    keepBytes: damagedGroup.startOffset,
    fileBytes: content.length,
  });
  assert.deepEqual(plan.deletes, []);
  assert.equal(plan.verifiedRecordsLost, 0);
  assert.equal(plan.recordsLostMin, 8, 'LSN 3..10, including the unreadable one');
  assert.equal(plan.lsnMaxLost, 10);
  assert.deepEqual(await readFile(file), content, 'planning changes nothing');

  await applyTruncate(fs, plan);
  assert.deepEqual(await committedLsns(dir), [1, 2]);
  await writeLog(dir, [2]);
  assert.deepEqual(await committedLsns(dir), [1, 2, 3, 4], 'the writer continues right after the cut');
});

test('a cut inside the verified prefix must be a group end; the nearest choices are offered', async () => {
  const dir = await tempDir();
  await writeLog(dir, [2, 3, 3, 2]);
  const scan = await scanTolerant(fs, dir);
  const notAnEnd = planTruncateAfter(scan, 4);
  assert.equal(notAnEnd.ok, false);
  assert.ok(!notAnEnd.ok);
  assert.equal(notAnEnd.below, 2);
  assert.equal(notAnEnd.above, 5);
  assert.match(notAnEnd.reason, /not the last LSN of a committed group/);
  const past = planTruncateAfter(scan, 11);
  assert.ok(!past.ok);
  assert.equal(past.below, 10);
  assert.equal(past.above, undefined);
  assert.match(past.reason, /past the verified log/);
  const noop = planOrFail(scan, 10);
  assert.equal(noop.truncate, undefined);
  assert.deepEqual(noop.deletes, []);
});

test('cutting in an earlier segment truncates it after the group and deletes every later segment', async () => {
  const dir = await tempDir();
  await writeLog(dir, [3, 3, 3, 3, 3, 3, 3, 3], 400);
  const files = await segmentFiles(dir);
  assert.ok(files.length >= 3, `${files.length} segments`);
  const scan = await scanTolerant(fs, dir);
  const second = scan.segments[1];
  const cut = second.groups[0].lastLsn;
  const plan = planOrFail(scan, cut);
  assert.equal(plan.truncate?.file, second.file);
  assert.equal(plan.truncate?.keepBytes, second.groups[0].endOffset);
  assert.deepEqual(
    plan.deletes.map((d) => d.file),
    files.slice(2),
  );
  assert.equal(plan.verifiedRecordsLost, 24 - cut);
  assert.equal(plan.recordsLostMin, 24 - cut);
  await applyTruncate(fs, plan);
  assert.deepEqual(await segmentFiles(dir), files.slice(0, 2));
  assert.deepEqual(await committedLsns(dir), range(1, cut));
  await writeLog(dir, [1]);
  assert.deepEqual(await committedLsns(dir), range(1, cut + 1));
});

test('a damaged segment header stops the scan at the end of the previous segment', async () => {
  const dir = await tempDir();
  await writeLog(dir, [3, 3, 3, 3, 3, 3], 400);
  const files = await segmentFiles(dir);
  const healthy = await scanTolerant(fs, dir);
  const header = await readFile(files[1]);
  header[20] ^= 0x01;
  await writeFile(files[1], header);
  const scan = await scanTolerant(fs, dir);
  assert.deepEqual(scan.damage, {
    file: files[1],
    offset: 0,
    reason: 'segment header: segment header checksum mismatch',
  });
  assert.equal(scan.lastLsn, healthy.segments[0].groups.at(-1)?.lastLsn);
  assert.deepEqual(
    scan.segments.map((s) => s.state),
    ['verified', 'damaged', ...files.slice(2).map(() => 'unverified')],
  );
  const plan = planOrFail(scan, scan.lastLsn);
  assert.equal(plan.truncate, undefined, 'the first segment already ends at the cut');
  assert.deepEqual(
    plan.deletes.map((d) => d.file),
    files.slice(1),
  );
  await applyTruncate(fs, plan);
  assert.deepEqual(await committedLsns(dir), range(1, scan.lastLsn));
});

test('cutting before the first group leaves an empty log that opens at LSN 1', async () => {
  const dir = await tempDir();
  await writeLog(dir, [2, 2]);
  const [file] = await segmentFiles(dir);
  const content = await readFile(file);
  content[SEGMENT_HEADER_BYTES + 28] ^= 0xff;
  await writeFile(file, content);
  const scan = await scanTolerant(fs, dir);
  assert.equal(scan.lastLsn, 0);
  assert.deepEqual(cutPoints(scan), [0]);
  const plan = planOrFail(scan, 0);
  assert.equal(plan.truncate?.keepBytes, SEGMENT_HEADER_BYTES);
  await applyTruncate(fs, plan);
  assert.deepEqual(await committedLsns(dir), []);
  await writeLog(dir, [1]);
  assert.deepEqual(await committedLsns(dir), [1]);
});

test('no cut exists when the first segment header is damaged', async () => {
  const dir = await tempDir();
  await writeLog(dir, [2]);
  const [file] = await segmentFiles(dir);
  const content = await readFile(file);
  content[0] ^= 0xff;
  await writeFile(file, content);
  const scan = await scanTolerant(fs, dir);
  assert.deepEqual(cutPoints(scan), []);
  const planned = planTruncateAfter(scan, 0);
  assert.ok(!planned.ok);
  assert.equal(planned.below, undefined);
  assert.equal(planned.above, undefined);
});

test('applying a plan refuses, changing nothing, when the log changed since the scan', async () => {
  const dir = await tempDir();
  await writeLog(dir, [2, 2, 2], 300);
  const files = await segmentFiles(dir);
  const scan = await scanTolerant(fs, dir);
  const plan = planOrFail(scan, 2);
  await appendFile(files.at(-1)!, Buffer.alloc(8));
  const before = await Promise.all(files.map((f) => readFile(f)));
  await assert.rejects(applyTruncate(fs, plan), /something is writing to the log/);
  assert.deepEqual(await Promise.all(files.map((f) => readFile(f))), before);
});

test('after a flipped byte anywhere, the repaired log always verifies and is a prefix of what was written', async () => {
  const dir = await tempDir();
  await writeLog(dir, [1, 4, 2, 7, 3, 1, 5, 2, 6, 1], 700);
  const files = await segmentFiles(dir);
  const originals = await Promise.all(files.map((f) => readFile(f)));
  const healthy = await scanTolerant(fs, dir);
  const total = healthy.lastLsn;
  let seed = 12345;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let round = 0; round < 60; round++) {
    for (const [i, f] of files.entries()) await writeFile(f, originals[i]);
    const target = random(files.length);
    const offset = random(originals[target].length);
    const damaged = Buffer.from(originals[target]);
    damaged[offset] ^= 1 << random(8);
    await writeFile(files[target], damaged);
    const scan = await scanTolerant(fs, dir);
    // Every group that ends before the flipped byte (in its segment or in an earlier one) is kept.
    let intactLsn = 0;
    for (const [i, segment] of healthy.segments.entries()) {
      for (const g of segment.groups)
        if (i < target || (i === target && g.endOffset <= offset)) intactLsn = g.lastLsn;
    }
    const where = `round ${round}: segment ${target} offset ${offset}`;
    assert.ok(scan.lastLsn >= intactLsn, `${where} kept only up to ${scan.lastLsn}`);
    const planned = planTruncateAfter(scan, scan.lastLsn);
    if (!planned.ok) {
      assert.equal(target, 0, `${where}: only a damaged first header leaves no cut`);
      assert.ok(offset < SEGMENT_HEADER_BYTES, where);
      continue;
    }
    await applyTruncate(fs, planned.plan);
    assert.deepEqual(await committedLsns(dir), range(1, scan.lastLsn), where);
    assert.ok(scan.lastLsn <= total, where);
  }
});
