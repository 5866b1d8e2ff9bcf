/**
 * Regression tests. Found by the crash simulation (seed 1187 at the time: "close() resolved on a failed
 * store"): `Store.close()` resolved, and released the directory lock, while the log writer was still rolling
 * to a new segment.
 *
 * Why: a flush that fills the segment reports the group durable (acknowledging its commands) and then rolls
 * (`LogWriter.flush` -> `rollSegment`: create the next segment, write its header, fdatasync, fsync the
 * directory). `LogWriter.close()` -> `sync()` returns at once when `lsnDurable` already covers every record,
 * without waiting for that roll (`flushing` is still set). So after `close()` resolved the closed writer
 * still creates a file in `wal/` after the lock is gone (a next process may already be recovering there), the
 * new segment's handle is never closed, and a failure of the roll (ENOSPC, EIO) is reported to no one:
 * `close()` said everything was fine. Fixed in e55d742 (`LogWriter.close` waits for the roll); kept as
 * regression tests.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Store } from '../../src/engine/store.ts';
import { bankDefinition } from '../../src/engine/testing/bank.ts';
import { type FileSystem, forwardingFileSystem } from '../../src/storage/file-system.ts';
import { SimFileSystem } from '../../src/storage/sim-file-system.ts';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Forwards to `fs`, counting calls (on the file system and on the handles it opened) while `counting`. */
function countingFileSystem(fs: FileSystem): { fs: FileSystem; calls: string[]; counting: { on: boolean } } {
  const calls: string[] = [];
  const counting = { on: false };
  /** Notes the call, then makes it. */
  const note = <T>(what: string, call: () => T): T => {
    if (counting.on) calls.push(what);
    return call();
  };
  const wrapped = forwardingFileSystem(fs, {
    open: async (file, mode, options) => {
      const handle = await note(`open ${file} ${mode}`, () => fs.open(file, mode, options));
      return {
        write: (...args) => note(`write ${file}`, () => handle.write(...args)),
        read: (...args) => handle.read(...args),
        datasync: () => note(`datasync ${file}`, () => handle.datasync()),
        truncate: (length) => note(`truncate ${file}`, () => handle.truncate(length)),
        size: () => handle.size(),
        close: () => handle.close(),
      };
    },
    rename: (from, to) => note(`rename ${from}`, () => fs.rename(from, to)),
    unlink: (file) => note(`unlink ${file}`, () => fs.unlink(file)),
    syncDir: (dir) => note(`syncDir ${dir}`, () => fs.syncDir(dir)),
  });
  return { fs: wrapped, calls, counting };
}

/** A store whose every group fills the segment, so every flush is followed by a segment roll. */
function openRollingStore(fs: FileSystem) {
  return Store.open(bankDefinition, { dir: '/data', fs, ackPoint: 'disk', segmentBytesMax: 64 });
}

test('close() returns only after the log writer stopped: no file system writes after it resolved', async () => {
  const { fs, calls, counting } = countingFileSystem(new SimFileSystem({ seed: 1 }));
  const store = await openRollingStore(fs);
  await store.execute('deposit', { id: 'd1', account: 'a', amount: 1 });
  await store.close();
  counting.on = true;
  for (let i = 0; i < 50; i++) await tick();
  assert.deepEqual(calls, [], 'the store kept changing the data directory after close() resolved');
});

test('close() reports a failure of the segment roll it was racing, instead of resolving', async () => {
  const sim = new SimFileSystem({ seed: 1 });
  const store = await openRollingStore(sim);
  // The next segment cannot be created: the disk is full.
  sim.injectFault({ op: 'open', error: 'ENOSPC', pathIncludes: 'wal-', persistent: true });
  await store.execute('deposit', { id: 'd1', account: 'a', amount: 1 });
  const closed = await store.close().then(
    () => 'resolved',
    (error) => `rejected: ${error.code}`,
  );
  for (let i = 0; i < 50; i++) await tick();
  assert.equal(store.failed?.code, 'storage_io', 'the roll did fail');
  assert.equal(
    closed,
    'rejected: storage_io',
    'close() resolved although the write path failed while closing',
  );
});
