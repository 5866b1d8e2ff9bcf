import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileHandle } from './file-system.ts';
import { PACED_WRITE_PIECE_BYTES, writePaced, zeroFillPaced } from './paced-write.ts';

/** A handle whose every write holds the thread for `writeMs`, as a fast disk's O_DSYNC write holds the pool. */
function slowHandle(writeMs: number): { handle: FileHandle; writes: number[]; busyMs: () => number } {
  const writes: number[] = [];
  let busy = 0;
  const handle = {
    async write(_data: Uint8Array, _offset: number, length: number, position: number) {
      const start = performance.now();
      while (performance.now() - start < writeMs) {}
      busy += performance.now() - start;
      writes.push(position, length);
    },
  } as unknown as FileHandle;
  return { handle, writes, busyMs: () => busy };
}

test('a zero fill whose pieces take under a millisecond still leaves the disk two thirds of the time', async () => {
  const { handle, busyMs } = slowHandle(0.25);
  const start = performance.now();
  assert.equal(await zeroFillPaced(handle, 0, 48 * 128 * 1024, new AbortController().signal), true);
  const elapsedMs = performance.now() - start;
  // Pauses of twice each piece's time: the fill's writes are at most a third of its time.
  assert.ok(
    elapsedMs >= 2.8 * busyMs(),
    `fill took ${elapsedMs.toFixed(1)} ms for ${busyMs().toFixed(1)} ms of writes`,
  );
});

test('a paced write of fast pieces leaves the disk half the time, and covers the range exactly once', async () => {
  const { handle, writes, busyMs } = slowHandle(0.2);
  const data = new Uint8Array(10 * PACED_WRITE_PIECE_BYTES + 5);
  const start = performance.now();
  await writePaced(handle, data, 5, data.length, 1000);
  const elapsedMs = performance.now() - start;
  assert.ok(
    elapsedMs >= 1.9 * busyMs(),
    `write took ${elapsedMs.toFixed(1)} ms for ${busyMs().toFixed(1)} ms of writes`,
  );
  const expected: number[] = [];
  for (let i = 0; i < 10; i++) expected.push(1000 + i * PACED_WRITE_PIECE_BYTES, PACED_WRITE_PIECE_BYTES);
  assert.deepEqual(writes, expected);
});

test('an abort cuts a zero fill short between pieces, without waiting out its pause', async () => {
  const { handle, writes } = slowHandle(20);
  const stop = new AbortController();
  const start = performance.now();
  setTimeout(() => stop.abort(), 30);
  const filled = zeroFillPaced(handle, 0, 100 * 128 * 1024, stop.signal);
  assert.equal(await filled, false);
  // The first piece (20 ms) ran, then a 40 ms pause that the abort at 30 ms ended.
  assert.ok(performance.now() - start < 55, `stopped after ${(performance.now() - start).toFixed(1)} ms`);
  assert.ok(writes.length / 2 < 100);
});
