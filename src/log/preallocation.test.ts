import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { tempDirs } from '../../test/support/temp-dirs.ts';
import type { EngramError } from '../errors.ts';
import { NodeFileSystem } from '../storage/node-file-system.ts';
import { crc32c } from './crc32c.ts';
import { SEGMENT_HEADER_BYTES } from './format.ts';
import { openLog } from './log.ts';
import { SPARE_SEGMENT_NAME, writtenEnd } from './preallocation.ts';
import { scanLog } from './reader.ts';
import { scanTolerant } from './repair.ts';
import type { LogWriter } from './writer.ts';

const fs = new NodeFileSystem();
const tempDir = tempDirs('engram-prealloc-');
const SEGMENT_BYTES = 8192;

async function open(dir: string, onRecord: (lsn: number) => void = () => {}) {
  return openLog({
    fs,
    dir,
    policy: { kind: 'immediate' },
    segmentBytesMax: SEGMENT_BYTES,
    onRecord: (r) => onRecord(r.lsn),
    writer: { onDurable: () => {}, onFailure: () => {} },
  });
}

async function append(writer: LogWriter, records: number): Promise<number> {
  let lsn = 0;
  for (let i = 0; i < records; i++) {
    const w = writer.beginRecord(7, 1, 0);
    w.string(`record-${writer.nextLsn}-${'y'.repeat(writer.nextLsn % 29)}`);
    lsn = writer.endRecord();
  }
  await writer.sync();
  return lsn;
}

/** Writes until the writer works in a segment made from a spare; returns that segment's file. */
async function intoPreallocatedSegment(dir: string): Promise<{ writer: LogWriter; file: string }> {
  const { writer } = await open(dir);
  assert.equal(await writer.spareReady(), true);
  await append(writer, 3); // the flush that finds the spare ready leaves the plain first segment
  await append(writer, 3);
  const file = path.join(dir, writer.segmentName);
  assert.equal((await stat(file)).size, SEGMENT_BYTES, 'a preallocated segment has its full size at once');
  return { writer, file };
}

async function lsns(dir: string): Promise<number[]> {
  const seen: number[] = [];
  await scanLog(fs, dir, { onRecord: (r) => seen.push(r.lsn) });
  return seen;
}

test('writtenEnd finds where written bytes stop, across chunk boundaries', () => {
  const buf = Buffer.alloc(200_000);
  assert.equal(writtenEnd(buf, 0), 0);
  assert.equal(writtenEnd(buf, 100), 100);
  for (const at of [0, 1, 65_535, 65_536, 131_073, 199_999]) {
    buf.fill(0);
    buf[at] = 7;
    assert.equal(writtenEnd(buf, 0), at + 1);
    assert.equal(writtenEnd(buf, at), at + 1);
    assert.equal(writtenEnd(buf, at + 1), at + 1, 'nothing written after the byte');
  }
});

test('a new log leaves its plain first segment for a preallocated one, whose zeros reopen as free space', async () => {
  const dir = await tempDir();
  const { writer, file } = await intoPreallocatedSegment(dir);
  const last = await append(writer, 5);
  await writer.close();
  const names = await readdir(dir);
  assert.equal(names.includes(SPARE_SEGMENT_NAME), false, 'close removes the spare');
  assert.equal(names.length, 2);

  const content = await readFile(file);
  const scan = await scanLog(fs, dir);
  const segment = scan.segments.at(-1)!;
  assert.ok(segment.committedBytes < content.length);
  assert.equal(writtenEnd(content, segment.committedBytes), segment.committedBytes);
  assert.deepEqual(scan.tornTails, [], 'zeros after the last commit marker are not a torn tail');

  // Reopening keeps the preallocated file as it is and appends where the last group ended.
  const reopened = await open(dir);
  assert.deepEqual(reopened.truncated, []);
  assert.equal((await stat(file)).size, SEGMENT_BYTES);
  const more = await append(reopened.writer, 4);
  await reopened.writer.close();
  assert.equal(more, last + 4);
  assert.deepEqual(
    await lsns(dir),
    Array.from({ length: more }, (_, i) => i + 1),
  );
});

test('a stray spare left by a crash is replaced when the log opens', async () => {
  const dir = await tempDir();
  await writeFile(path.join(dir, SPARE_SEGMENT_NAME), Buffer.from('half-filled spare from a crash'));
  const { writer } = await open(dir);
  assert.equal(await writer.spareReady(), true);
  const spare = await readFile(path.join(dir, SPARE_SEGMENT_NAME));
  assert.equal(spare.length, SEGMENT_BYTES);
  assert.equal(writtenEnd(spare, 0), 0);
  await writer.close();
});

/** The bytes of the last group of a preallocated segment: [start, end) in `file`. */
async function lastGroup(dir: string): Promise<{ file: string; start: number; end: number; lsn: number }> {
  const { writer, file } = await intoPreallocatedSegment(dir);
  const before = await append(writer, 2);
  const start = (await scanLog(fs, dir)).segments.at(-1)!.committedBytes;
  const lsn = await append(writer, 4);
  await writer.close();
  const end = (await scanLog(fs, dir)).segments.at(-1)!.committedBytes;
  assert.equal(lsn, before + 4);
  return { file, start, end, lsn };
}

test('a write cut off in preallocated space (a prefix, then zeros) is a torn tail, not corruption', async () => {
  for (const keep of [1, 0.5, 0.99]) {
    const dir = await tempDir();
    const group = await lastGroup(dir);
    const content = await readFile(group.file);
    const cut = group.start + Math.max(1, Math.floor((group.end - group.start) * keep) - 1);
    content.fill(0, cut, group.end);
    await writeFile(group.file, content);
    const reopened = await open(dir);
    assert.equal(reopened.truncated.length, 1, `cut at ${cut}`);
    assert.equal(reopened.truncated[0].offset, group.start);
    assert.equal(
      reopened.scan.lastLsn,
      group.lsn - 4,
      'the unacknowledged group is dropped, nothing before it',
    );
    await reopened.writer.close();
  }
});

test('a flipped bit in a complete final group of a preallocated segment is refused as corruption', async () => {
  const dir = await tempDir();
  const group = await lastGroup(dir);
  const content = await readFile(group.file);
  content[group.start + 30] ^= 0x10; // inside the group's first record
  await writeFile(group.file, content);
  await assert.rejects(open(dir), (error: EngramError) => {
    assert.equal(error.code, 'corruption');
    assert.match(error.message, /flipped bit/);
    return true;
  });
});

test('a flipped bit in the free space after the last group is cut as a torn tail, losing nothing', async () => {
  const dir = await tempDir();
  const group = await lastGroup(dir);
  const content = await readFile(group.file);
  content[SEGMENT_BYTES - 100] ^= 0x04;
  await writeFile(group.file, content);
  const reopened = await open(dir);
  assert.equal(reopened.scan.lastLsn, group.lsn);
  assert.equal(reopened.truncated.length, 1);
  assert.equal(reopened.truncated[0].offset, group.end);
  await reopened.writer.close();
  assert.ok((await lsns(dir)).includes(group.lsn));
});

test('segments of formats before 3 keep their rules: zeros after the last marker are a torn tail', async () => {
  const dir = await tempDir();
  const { writer, file } = await intoPreallocatedSegment(dir);
  await writer.close();
  const content = await readFile(file);
  content.writeUInt32LE(2, 8); // format version 2; the header checksum covers it
  content.writeUInt32LE(crc32c(content, 0, 28), 28);
  await writeFile(file, content);
  const scan = await scanLog(fs, dir);
  assert.equal(scan.tornTails.length, 1);
  assert.ok(scan.tornTails[0].offset > SEGMENT_HEADER_BYTES);
});

test('the repair scan verifies a preallocated segment through its zeros and offers its last group as a cut', async () => {
  const dir = await tempDir();
  const group = await lastGroup(dir);
  const scan = await scanTolerant(fs, dir);
  assert.equal(scan.damage, undefined);
  assert.equal(scan.lastLsn, group.lsn);
  const segment = scan.segments.at(-1)!;
  assert.equal(segment.state, 'verified');
  assert.equal(segment.verifiedBytes, group.end);
  assert.equal(segment.groups.at(-1)?.endOffset, group.end);
});
