/**
 * Regression tests. Found by the crash simulation: one flipped bit in the log's final, fdatasync'd and acknowledged group made
 * recovery take that group for a torn write, truncate it away and start: acknowledged commands lost without
 * a word, and the evidence destroyed. `classifyDamage` (src/log/reader.ts) calls final-group damage corruption
 * only when a frame is complete and fails its checksum with no all-zero sector in the damaged region.
 *
 * 1. The commit marker's length field, which the frame checksum does not cover: a flip there read as "runs
 *    past the end of the file" or "impossible frame length", i.e. a cut-off write. Fixed in f39de21
 *    (`markerWithDamagedLength`); these cases stay as regression tests.
 * 2. The zero-sector window (sim seed 2153 at the time). The evidence of a tear was looked for from the
 *    damaged frame up to 4 KiB past it, so the zeros of a *later* write that never reached the disk (the
 *    group after a failed write, torn by the power loss) excused a checksum failure in the complete,
 *    durable frame before them. A torn frame has its missing sectors inside its own bytes. Fixed in e55d742.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Store } from '../../src/engine/store.ts';
import { bankDefinition } from '../../src/engine/testing/bank.ts';
import { COMMIT_FRAME_SIZES } from '../../src/log/format.ts';

/** A commit marker: 24-byte frame header + 16-byte payload, already 8-aligned. */
const COMMIT_MARKER_BYTES = COMMIT_FRAME_SIZES[0];

async function storeWithTwoAckedGroups(): Promise<{ dir: string; segment: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'engram-final-group-'));
  const store = await Store.open(bankDefinition, { dir, ackPoint: 'disk' });
  // Awaited one by one: two groups, each fdatasync'd and acknowledged before the next is written.
  assert.deepEqual(await store.execute('deposit', { id: 'first', account: 'a', amount: 10 }), {
    balance: 10,
    lsn: 1,
  });
  assert.deepEqual(await store.execute('deposit', { id: 'second', account: 'a', amount: 5 }), {
    balance: 15,
    lsn: 2,
  });
  await store.close();
  const walDir = path.join(dir, 'wal');
  const [segment] = (await readdir(walDir)).filter((name) => name.endsWith('.log'));
  return { dir, segment: path.join(walDir, segment) };
}

async function flipBit(file: string, byteOffset: number, bit: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, byteOffset);
    byte[0] ^= 1 << bit;
    await handle.write(byte, 0, 1, byteOffset);
  } finally {
    await handle.close();
  }
}

/** Recovery must refuse (corruption) or recover both acknowledged deposits; it must not drop the second. */
async function assertNoSilentLoss(dir: string): Promise<void> {
  let store: Awaited<ReturnType<typeof Store.open<any, any, any, any>>>;
  try {
    store = await Store.open(bankDefinition, { dir });
  } catch (error) {
    assert.equal((error as { code?: string }).code, 'corruption', (error as Error).message);
    return;
  }
  const lsn = store.lsnApplied;
  const balance = store.readStale((s) => s.balances.get('a'));
  const tornTails = JSON.stringify(store.recovery.tornTails);
  await store.close();
  assert.equal(lsn, 2, `acknowledged LSN 2 silently dropped as a torn tail: ${tornTails}`);
  assert.equal(balance, 15);
}

for (const { name, byte, bit } of [
  // 40 -> 4136: "runs past the end of the file" (seed 630's flip).
  { name: 'grows past the end of the file', byte: 1, bit: 4 },
  // 40 -> 8: "impossible frame length" (below the 24-byte header).
  { name: 'becomes impossibly small', byte: 0, bit: 5 },
  // 40 -> 134217768: "impossible frame length" (over 64 MiB; seed 1702's flip).
  { name: 'becomes impossibly large', byte: 3, bit: 3 },
]) {
  test(`a flipped bit that makes the final commit marker's length ${name} does not lose the acknowledged group`, async () => {
    const { dir, segment } = await storeWithTwoAckedGroups();
    try {
      const size = (await stat(segment)).size;
      await flipBit(segment, size - COMMIT_MARKER_BYTES + byte, bit);
      await assertNoSilentLoss(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('a flipped bit in the final commit marker is not excused by the zeros of a later write that never made it', async () => {
  const { dir, segment } = await storeWithTwoAckedGroups();
  try {
    const size = (await stat(segment)).size;
    // The marker's LSN (inside its checksum): a complete frame whose checksum fails.
    await flipBit(segment, size - COMMIT_MARKER_BYTES + 9, 3);
    // Then the next group's write, cut by the power loss: the file grew, its sectors stayed zero.
    await appendFile(segment, Buffer.alloc(1024));
    await assertNoSilentLoss(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('control: a later write that never made it (zeros after the last group) is a torn tail, cut without loss', async () => {
  const { dir, segment } = await storeWithTwoAckedGroups();
  try {
    await appendFile(segment, Buffer.alloc(1024));
    await assertNoSilentLoss(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('control: the same store recovers both deposits without a flip', async () => {
  const { dir } = await storeWithTwoAckedGroups();
  try {
    await assertNoSilentLoss(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
