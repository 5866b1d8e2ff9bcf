import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { tempDirs } from '../../test/support/temp-dirs.ts';
import { Store } from '../engine/store.ts';
import { bankDefinition, deposits } from '../engine/testing/bank.ts';
import type { EngramError } from '../errors.ts';
import { crc32c } from '../log/crc32c.ts';
import { fileMappingStatus } from '../storage/file-mapping.ts';
import { NodeFileSystem } from '../storage/node-file-system.ts';
import { SNAPSHOT_CHUNK_BYTES_MAX } from './format.ts';
import { encodeSnapshotHeader, readSnapshotFile, writeSnapshotFile } from './snapshot-file.ts';

const tempDir = tempDirs('engram-snap-');

const snapshotFiles = async (dir: string) =>
  (await readdir(path.join(dir, 'snapshots'))).filter((n) => n.endsWith('.snap')).sort();
const segmentFiles = async (dir: string) =>
  (await readdir(path.join(dir, 'wal'))).filter((n) => n.endsWith('.log')).sort();

test('a snapshot is the state at exactly its LSN, while writes keep flowing; restart loads it and replays the tail', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir, segmentBytesMax: 4096 });
  await deposits(store, 0, 500);
  await store.sync();
  const hashAtSnapshot = store.stateHash();
  const lsnAtSnapshot = store.lsnDurable;
  const snapshotting = store.snapshot();
  await deposits(store, 500, 300); // these land after the snapshot LSN while it is being built
  const built = await snapshotting;
  assert.equal(built.lsn, lsnAtSnapshot);
  assert.equal(built.stateHash, hashAtSnapshot);
  const header = (await readSnapshotFile(new NodeFileSystem(), built.file)).header;
  assert.equal(header.lsn, lsnAtSnapshot);
  assert.equal(header.stateHash, hashAtSnapshot);
  const finalHash = store.stateHash();
  await store.close();
  const reopened = await Store.open(bankDefinition, { dir });
  assert.equal(reopened.recovery.snapshot?.lsn, lsnAtSnapshot);
  assert.equal(reopened.recovery.recordsReplayed, 300);
  assert.equal(reopened.stateHash(), finalHash);
  await reopened.close();
});

test('restart reads the log from where the snapshot ends; a position that does not check out is ignored, not trusted', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  await deposits(store, 0, 400);
  await store.sync();
  const built = await store.snapshot();
  await deposits(store, 400, 250);
  const finalHash = store.stateHash();
  await store.close();
  const { header, payload } = await readSnapshotFile(new NodeFileSystem(), built.file);
  assert.ok(
    header.logPosition && header.logPosition.offset > 32,
    'the snapshot records where the log goes on',
  );
  const reopened = await Store.open(bankDefinition, { dir });
  assert.deepEqual(reopened.recovery.resumedAt?.offset, header.logPosition.offset);
  assert.equal(reopened.recovery.recordsReplayed, 250);
  assert.equal(reopened.stateHash(), finalHash);
  await reopened.close();
  // The same snapshot claiming a wrong position (valid checksums, wrong offset): recovery must not start
  // reading mid-frame or cut the log there; it scans the segment from its start.
  await rm(built.file);
  // A failed earlier attempt at the same LSN left its temp file: the new write replaces it.
  await writeFile(`${built.file}.tmp`, 'half a snapshot');
  await writeSnapshotFile(
    new NodeFileSystem(),
    path.join(dir, 'snapshots'),
    { ...header, logPosition: { ...header.logPosition, offset: header.logPosition.offset - 8 } },
    payload,
  );
  assert.equal(existsSync(`${built.file}.tmp`), false);
  const rescanned = await Store.open(bankDefinition, { dir });
  assert.equal(rescanned.recovery.resumedAt, undefined);
  assert.equal(rescanned.recovery.recordsReplayed, 250);
  assert.equal(rescanned.stateHash(), finalHash);
  await rescanned.close();
});

test('the idempotency window and the indexes survive a restart from a snapshot whose log was compacted', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir, segmentBytesMax: 1024 });
  const first = await store.execute('deposit', { id: 'keep-me', account: 'z', amount: 5 });
  await store.execute('transfer', { from: 'z', to: 'y', amount: 5 });
  await deposits(store, 0, 200);
  const built = await store.snapshot();
  assert.ok(built.lsn > 0);
  await store.close();
  const segments = await segmentFiles(dir);
  assert.ok(Number(segments[0].slice(4, 24)) > 1, 'segments below the snapshot were deleted');
  const reopened = await Store.open(bankDefinition, { dir });
  assert.equal(reopened.recovery.recordsReplayed, 0);
  assert.deepEqual(await reopened.execute('deposit', { id: 'keep-me', account: 'z', amount: 5 }), first);
  await assert.rejects(
    reopened.execute('deposit', { id: 'keep-me', account: 'z', amount: 6 }),
    (e: EngramError) => e.code === 'idempotency_conflict',
  );
  assert.ok(
    reopened.readStale((_s, ix) => ix.empty.has('z')),
    'index rebuilt from the snapshot state',
  );
  await reopened.close();
});

test('a damaged newest snapshot falls back to the previous one and says so; state is still exact', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, {
    dir,
    snapshots: { keep: 3, everyMs: 3_600_000, everyLogBytes: 1 << 30 },
  });
  await deposits(store, 0, 50);
  const older = await store.snapshot();
  await deposits(store, 50, 50);
  const newer = await store.snapshot();
  await deposits(store, 100, 10);
  const hash = store.stateHash();
  await store.close();
  const content = await readFile(newer.file);
  content[content.length >> 1] ^= 0x20;
  await writeFile(newer.file, content);
  const reopened = await Store.open(bankDefinition, { dir });
  assert.equal(reopened.recovery.snapshot?.lsn, older.lsn);
  assert.equal(reopened.recovery.snapshotFallbacks.length, 1);
  assert.match(reopened.recovery.snapshotFallbacks[0].reason, /checksum mismatch/);
  assert.equal(reopened.stateHash(), hash);
  await reopened.close();
});

test('no usable snapshot and a log that no longer reaches back is a clear refusal, not an empty store', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir, segmentBytesMax: 1024 });
  await deposits(store, 0, 200);
  const built = await store.snapshot();
  await deposits(store, 200, 5); // records in the segment that survives compaction
  await store.close();
  await rm(built.file);
  await assert.rejects(Store.open(bankDefinition, { dir }), (e: EngramError) => {
    assert.equal(e.code, 'log_gap');
    assert.match(e.message, /no usable snapshot/);
    return true;
  });
});

test('compaction keeps the disk footprint bounded under a steady write load', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, {
    dir,
    segmentBytesMax: 2048,
    snapshots: { everyLogBytes: 8192, everyMs: 3_600_000, keep: 2 },
  });
  const counts: number[] = [];
  for (let round = 0; round < 12; round++) {
    await deposits(store, round * 100, 100);
    await store.snapshot();
    counts.push((await segmentFiles(dir)).length);
  }
  await store.close();
  assert.ok(
    Math.max(...counts.slice(4)) <= Math.max(...counts.slice(0, 4)) + 2,
    `segments per round: ${counts}`,
  );
  assert.ok((await snapshotFiles(dir)).length <= 2);
  const reopened = await Store.open(bankDefinition, { dir });
  assert.equal(
    reopened.readStale((s) => [...s.balances.values()].reduce((a, b) => a + b, 0)),
    expectedTotal(1200),
  );
  await reopened.close();
});

function expectedTotal(count: number): number {
  let total = 0;
  for (let i = 0; i < count; i++) total += 1 + (i % 13);
  return total;
}

test('automatic snapshots trigger on log bytes', async () => {
  const dir = await tempDir();
  let snapshots = 0;
  const store = await Store.open(bankDefinition, {
    dir,
    snapshots: { everyLogBytes: 4096, everyMs: 3_600_000 },
    observer: { onSnapshot: () => snapshots++ },
  });
  await deposits(store, 0, 300);
  for (let i = 0; i < 50 && snapshots === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  await store.close();
  assert.ok(snapshots >= 1);
});

test('snapshots built in a worker thread match the in-process ones', async () => {
  const dir = await tempDir();
  const module = new URL('../engine/testing/bank.ts', import.meta.url).href;
  const store = await Store.open(bankDefinition, {
    dir,
    snapshots: { worker: { module, exportName: 'bankDefinition' }, everyMs: 3_600_000 },
  });
  await deposits(store, 0, 100);
  await store.sync();
  const hash = store.stateHash();
  const built = await store.snapshot();
  assert.equal(built.stateHash, hash);
  await store.close();
  const copy = await tempDir();
  await cp(dir, copy, { recursive: true });
  const reopened = await Store.open(bankDefinition, { dir: copy });
  assert.equal(reopened.recovery.snapshot?.lsn, built.lsn);
  assert.equal(reopened.stateHash(), hash);
  await reopened.close();
});

test('a truncated or bit-flipped snapshot file is refused with file and offset', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  await deposits(store, 0, 20);
  const built = await store.snapshot();
  await store.close();
  const fs = new NodeFileSystem();
  const content = await readFile(built.file);
  await writeFile(built.file, content.subarray(0, content.length - 10));
  await assert.rejects(
    readSnapshotFile(fs, built.file),
    (e: EngramError) => e.code === 'snapshot_invalid' && e.details.file === built.file,
  );
  content[70] ^= 1;
  await writeFile(built.file, content);
  await assert.rejects(
    readSnapshotFile(fs, built.file),
    (e: EngramError) => e.code === 'snapshot_invalid' && typeof e.details.offset === 'number',
  );
});

test('a snapshot written from pieces of any sizes reads back as their concatenation, chunk by chunk', async () => {
  const dir = await tempDir();
  const fs = new NodeFileSystem();
  const bytes = Buffer.alloc(9 * 1024 * 1024 + 77);
  for (let i = 0; i < bytes.length; i += 997) bytes[i] = (i * 31) & 255;
  // Small pieces that share chunks, one piece larger than a chunk, pieces ending on and off chunk edges.
  const cuts = [0, 1, 9, 100_000, 4 * 1024 * 1024, 4 * 1024 * 1024 + 5, 9 * 1024 * 1024, bytes.length];
  const pieces = cuts.slice(1).map((end, i) => bytes.subarray(cuts[i], end));
  const header = { lsn: 42, createdAtMs: 1, stateHash: '0123456789abcdef', chain: 7 };
  const fromPieces = await writeSnapshotFile(fs, path.join(dir, 'a'), header, pieces);
  const whole = await writeSnapshotFile(fs, path.join(dir, 'b'), header, bytes);
  assert.ok((await readSnapshotFile(fs, fromPieces.file)).payload.equals(bytes));
  assert.ok((await readFile(fromPieces.file)).equals(await readFile(whole.file)), 'same file either way');
});

/** A NodeFileSystem that reads files instead of mapping them (no addon, or a simulated disk). */
class ReadingFileSystem extends NodeFileSystem {
  override mapImmutableFile(): undefined {
    return undefined;
  }
}

for (const [name, fs] of [
  ['mapped', new NodeFileSystem()],
  ['read', new ReadingFileSystem()],
] as const) {
  test(`a ${name} snapshot's damage is named by chunk and offset: a flipped bit, a cut, a trailing byte`, async () => {
    const dir = await tempDir();
    const bytes = Buffer.alloc(2 * SNAPSHOT_CHUNK_BYTES_MAX + 1000);
    for (let i = 0; i < bytes.length; i += 61) bytes[i] = i & 255;
    const header = { lsn: 9, createdAtMs: 1, stateHash: '0123456789abcdef', chain: 3 };
    const { file } = await writeSnapshotFile(fs, dir, header, bytes);
    const good = await readFile(file);
    assert.equal(good.length, 64 + bytes.length + 3 * 4 + 24, 'header, payload, 3 checksums, footer');
    assert.ok((await readSnapshotFile(fs, file)).payload.equals(bytes));
    const refusal = async (content: Buffer, reason: RegExp, offset: number) => {
      await writeFile(file, content);
      await assert.rejects(readSnapshotFile(fs, file), (e: EngramError) => {
        assert.equal(e.code, 'snapshot_invalid');
        assert.match(e.message, reason);
        assert.equal(e.details.offset, offset);
        return true;
      });
    };
    const flipped = Buffer.from(good);
    flipped[64 + 2 * SNAPSHOT_CHUNK_BYTES_MAX + 5] ^= 0x10;
    await refusal(flipped, /chunk 2 of 3 checksum mismatch/, 64 + 2 * SNAPSHOT_CHUNK_BYTES_MAX);
    await refusal(good.subarray(0, good.length - 1), /no footer magic/, good.length - 1 - 24);
    await refusal(Buffer.concat([good, Buffer.from([0])]), /no footer magic/, good.length + 1 - 24);
    const lying = Buffer.from(good);
    lying[64 + bytes.length + 3] ^= 1; // the checksum list itself
    await refusal(lying, /checksum list/, 64 + bytes.length);
  });
}

test('a snapshot is mapped when the addon is built, and the state may write into it', async (t) => {
  if (!fileMappingStatus().available) return t.skip('no file-mapping addon (no C compiler at install)');
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  await deposits(store, 0, 50);
  const built = await store.snapshot();
  await store.close();
  const before = await readFile(built.file);
  const loaded = await readSnapshotFile(new NodeFileSystem(), built.file);
  const maps = (await readFile('/proc/self/maps', 'utf8')).split('\n');
  assert.ok(
    maps.some((line) => line.endsWith(built.file)),
    'the file is mapped',
  );
  loaded.payload.fill(0);
  assert.ok((await readFile(built.file)).equals(before), 'a private mapping: the file is unchanged');
});

/** A format-1 file: chunks with inline headers, an end marker, a footer counting chunks. */
function formatOneSnapshot(header: Buffer, payload: Buffer, chunkBytes: number): Buffer {
  const parts = [header];
  let chunks = 0;
  for (let at = 0; at < payload.length; at += chunkBytes, chunks++) {
    const chunk = payload.subarray(at, at + chunkBytes);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(chunk.length, 0);
    head.writeUInt32LE(crc32c(chunk), 4);
    parts.push(head, chunk);
  }
  const tail = Buffer.alloc(4 + 24);
  tail.write('ENGRAMSE', 4, 'latin1');
  tail.writeUInt32LE(chunks, 12);
  tail.writeUInt32LE(payload.length, 20);
  tail.writeUInt32LE(crc32c(tail, 4, 24), 24);
  parts.push(tail);
  return Buffer.concat(parts);
}

test('a format-1 snapshot (written before format 2) still restores the store', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  await deposits(store, 0, 300);
  const built = await store.snapshot();
  const hash = store.stateHash();
  await store.close();
  const { header, payload } = await readSnapshotFile(new NodeFileSystem(), built.file);
  const headerBytes = encodeSnapshotHeader(header);
  headerBytes.writeUInt32LE(1, 8);
  headerBytes.writeUInt32LE(crc32c(headerBytes, 0, 60), 60);
  await writeFile(built.file, formatOneSnapshot(headerBytes, Buffer.from(payload), 1000));
  assert.equal((await readSnapshotFile(new NodeFileSystem(), built.file)).header.formatVersion, 1);
  const reopened = await Store.open(bankDefinition, { dir });
  assert.equal(reopened.recovery.snapshot?.lsn, built.lsn);
  assert.equal(reopened.stateHash(), hash);
  await reopened.close();
});
