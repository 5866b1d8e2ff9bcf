import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { tempDirs } from '../../test/support/temp-dirs.ts';
import { NodeFileSystem } from '../storage/node-file-system.ts';
import { LOG_FORMAT_VERSION_PREALLOCATED, SEGMENT_HEADER_BYTES } from './format.ts';
import { encodeSegmentHeader } from './frame.ts';
import { openLog } from './log.ts';
import { scanLog } from './reader.ts';
import { KEPT_ZERO_BYTES, readWrittenSegment } from './segment-read.ts';

const fs = new NodeFileSystem();
const tempDir = tempDirs('engram-segment-read-');
// Larger than the 1 MiB backward chunk and KEPT_ZERO_BYTES, so reads leave zeros out and cross chunks.
const SEGMENT_BYTES = 3 * 1024 * 1024 + 4096;

function segmentFile(size: number, formatVersion: number, nonZero: number[]): Buffer {
  const buf = Buffer.alloc(size);
  encodeSegmentHeader({ formatVersion, baseLsn: 1, epoch: 0, chain: 0 }).copy(buf, 0);
  for (const at of nonZero) buf[at] = 0x5a;
  return buf;
}

test('the last segment is read up to a margin of zeros past its last written byte, wherever that byte is', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'segment');
  const size = SEGMENT_BYTES;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: SEGMENT_HEADER_BYTES, max: size - 1 }), { maxLength: 4 }),
      // Bytes next to the 1 MiB chunk edges, counted from the end of the file, as the backward read cuts.
      fc.option(fc.integer({ min: -2, max: 2 }).map((d) => size - 1024 * 1024 + d)),
      async (positions, nearEdge) => {
        const nonZero = nearEdge === null ? positions : [...positions, nearEdge];
        const content = segmentFile(size, LOG_FORMAT_VERSION_PREALLOCATED, nonZero);
        await writeFile(file, content);
        const { bytes, fileBytes } = await readWrittenSegment(fs, file);
        const lastWritten = Math.max(SEGMENT_HEADER_BYTES - 1, ...nonZero);
        assert.equal(fileBytes, size);
        assert.equal(bytes.length, Math.min(size, lastWritten + 1 + KEPT_ZERO_BYTES));
        assert.ok(
          bytes.equals(content.subarray(0, bytes.length)),
          'what is read is the file, from its start',
        );
      },
    ),
    { numRuns: 60 },
  );
});

test('segments of formats before 3, and files without a valid header, are read whole', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'segment');
  const old = segmentFile(SEGMENT_BYTES, 2, [5000]);
  await writeFile(file, old);
  assert.equal(
    (await readWrittenSegment(fs, file)).bytes.length,
    SEGMENT_BYTES,
    'zeros of format 2 are a torn write',
  );
  const noHeader = Buffer.alloc(SEGMENT_BYTES);
  noHeader[100] = 1;
  await writeFile(file, noHeader);
  assert.equal((await readWrittenSegment(fs, file)).bytes.length, SEGMENT_BYTES);
  await writeFile(file, Buffer.alloc(10));
  assert.equal((await readWrittenSegment(fs, file)).bytes.length, 10);
});

async function preallocatedLog(dir: string, records: number): Promise<string> {
  const { writer } = await openLog({
    fs,
    dir,
    policy: { kind: 'immediate' },
    segmentBytesMax: SEGMENT_BYTES,
    onRecord: () => {},
    writer: { onDurable: () => {}, onFailure: () => {} },
  });
  assert.equal(await writer.spareReady(), true);
  for (let group = 0; group * 50 < records; group++) {
    for (let i = 0; i < 50; i++) {
      const w = writer.beginRecord(7, 1, 0);
      w.string(`record-${writer.nextLsn}-${'z'.repeat(writer.nextLsn % 41)}`);
      writer.endRecord();
    }
    await writer.sync();
  }
  const file = path.join(dir, writer.segmentName);
  await writer.close();
  return file;
}

/** A scan's whole outcome, its records included, or its refusal. */
async function outcome(dir: string, lastSegmentImmutable: boolean): Promise<unknown> {
  const records: string[] = [];
  try {
    const result = await scanLog(fs, dir, {
      lastSegmentImmutable,
      onRecord: (r) => records.push(`${r.lsn}:${r.buf.toString('hex', r.payloadStart, r.payloadEnd)}`),
    });
    return { result, records };
  } catch (error) {
    return { refused: (error as Error).message, records };
  }
}

test('a scan of the shortened last segment finds what a scan of the whole file finds, through any damage', async () => {
  const dir = await tempDir();
  const file = await preallocatedLog(dir, 400);
  assert.ok((await readdir(dir)).length >= 2, 'the records reach a segment made from a spare');
  const pristine = await readFile(file);
  assert.equal(pristine.length, SEGMENT_BYTES);
  const { bytes } = await readWrittenSegment(fs, file);
  assert.ok(
    bytes.length < SEGMENT_BYTES / 2,
    `most of the segment's zeros are left unread (${bytes.length} read)`,
  );
  let written = pristine.length;
  while (pristine[written - 1] === 0) written--;
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        // a flipped bit in or after the last groups
        fc.record({
          kind: fc.constant('flip'),
          at: fc.integer({ min: written - 4096, max: SEGMENT_BYTES - 1 }),
        }),
        // a torn write: the tail zeroed from some offset
        fc.record({ kind: fc.constant('tear'), at: fc.integer({ min: written - 4096, max: written }) }),
        // stray bytes far out in the free space, as a misdirected write would leave
        fc.record({
          kind: fc.constant('stray'),
          at: fc.integer({ min: written + 1, max: SEGMENT_BYTES - 1 }),
        }),
      ),
      async (damage) => {
        const content = Buffer.from(pristine);
        if (damage.kind === 'flip') content[damage.at] ^= 0x10;
        else if (damage.kind === 'tear') content.fill(0, damage.at);
        else content[damage.at] = 0xff;
        await writeFile(file, content);
        assert.deepEqual(await outcome(dir, false), await outcome(dir, true));
      },
    ),
    { numRuns: 80 },
  );
  await writeFile(file, pristine);
  assert.equal((await stat(file)).size, SEGMENT_BYTES);
});
