import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDirs } from '../../test/support/temp-dirs.ts';
import { Store } from '../engine/store.ts';
import { bankDefinition, deposits } from '../engine/testing/bank.ts';
import type { EngramError } from '../errors.ts';
import { listSegments } from '../log/reader.ts';
import { fileMappingStatus } from '../storage/file-mapping.ts';
import { NodeFileSystem } from '../storage/node-file-system.ts';
import { Checkpointer, type CheckpointerOptions, walDir } from './build.ts';
import { ReplayPacer } from './replay-pacer.ts';

const tempDir = tempDirs('engram-checkpointer-');
const segmentsIn = async (dir: string) => (await listSegments(new NodeFileSystem(), walDir(dir))).length;

const checkpointerFor = (dir: string, options: Partial<CheckpointerOptions> = {}) =>
  new Checkpointer({
    fs: new NodeFileSystem(),
    dataDir: dir,
    definition: bankDefinition as never,
    keep: 2,
    mapLastSegment: true,
    ...options,
  });

test('a checkpointer that follows the live log writes snapshots equal to the state at their LSN, replaying only what is new', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir, segmentBytesMax: 4096 });
  const checkpointer = checkpointerFor(dir);
  await deposits(store, 0, 300);
  await checkpointer.catchUp(store.lsnDurable);
  assert.equal(checkpointer.lsnApplied, store.lsnDurable);
  await deposits(store, 300, 200);
  const first = await checkpointer.snapshot(store.lsnDurable);
  assert.equal(first.stateHash, store.stateHash());
  assert.deepEqual([first.baseLsn, first.recordsReplayed, first.recordsReplayedOnRequest], [0, 500, 200]);

  await deposits(store, 500, 150); // in the segment being written and sealed ones: both are read mapped
  const second = await checkpointer.snapshot(store.lsnDurable);
  assert.equal(second.stateHash, store.stateHash());
  assert.deepEqual([second.baseLsn, second.recordsReplayed], [first.lsn, second.lsn - first.lsn]);

  const again = await checkpointer.snapshot(second.lsn);
  assert.deepEqual([again.file, again.recordsReplayed], [second.file, 0]);
  await store.close();

  const reopened = await Store.open(bankDefinition, { dir });
  assert.equal(reopened.recovery.snapshot?.lsn, second.lsn);
  assert.equal(reopened.stateHash(), second.stateHash);
  await reopened.close();
});

test('a following checkpointer maps the segment being written once, and maps it again when its size changes', {
  skip: !fileMappingStatus().available && 'files cannot be mapped here',
}, async () => {
  for (const preallocateSegments of [true, false]) {
    const dir = await tempDir();
    const store = await Store.open(bankDefinition, { dir, segmentBytesMax: 1 << 20, preallocateSegments });
    let deposited = 0;
    // A new log's first segment is appended to; the log moves to a preallocated one once a spare is ready.
    while (preallocateSegments && (await segmentsIn(dir)) < 2 && deposited < 1000) {
      await deposits(store, deposited++, 1);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const checkpointer = checkpointerFor(dir);
    try {
      for (let round = 0; round < 4; round++) {
        await deposits(store, deposited, 50); // written after the last catch-up mapped the segment
        deposited += 50;
        await checkpointer.catchUp(store.lsnDurable);
        assert.equal(checkpointer.lsnApplied, store.lsnDurable);
      }
      const written = await checkpointer.snapshot(store.lsnDurable);
      assert.equal(written.stateHash, store.stateHash(), `preallocated: ${preallocateSegments}`);
      const { mapped, reused } = checkpointer.segmentMappings;
      // A preallocated segment keeps its size, so the first mapping sees every later write; an appended one
      // grows with each group, and a mapping of its old size would miss the new records.
      // (The first catch-up maps the sealed first segment too.)
      if (preallocateSegments) assert.deepEqual([mapped, reused], [2, 3]);
      else assert.deepEqual([mapped, reused], [4, 0]);
    } finally {
      await store.close(); // a failed assertion must not leave the store's timers holding the process
    }
  }
});

test('a checkpointer that fails drops its state and starts again from the snapshots on disk', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir, segmentBytesMax: 4096 });
  const checkpointer = checkpointerFor(dir);
  await deposits(store, 0, 100);
  const first = await checkpointer.snapshot(store.lsnDurable);
  await deposits(store, 100, 100);
  await assert.rejects(checkpointer.catchUp(store.lsnDurable + 50), (error: EngramError) => {
    assert.equal(error.code, 'log_gap');
    return true;
  });
  assert.equal(checkpointer.lsnApplied, 0);
  const second = await checkpointer.snapshot(store.lsnDurable);
  assert.equal(second.stateHash, store.stateHash());
  assert.deepEqual([second.baseLsn, second.recordsReplayed], [first.lsn, 100]);
  await store.close();
});

test('a checkpointer neither builds nor maintains indexes, from the log or from a snapshot, and its snapshots restore them', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir, segmentBytesMax: 4096 });
  const refuse = (): never => {
    throw new Error('a snapshot builder touched the indexes');
  };
  // Same name, events and commands, so it reads this store's log and snapshots; its indexes throw.
  const indexless = { ...bankDefinition, indexes: { build: refuse, onEvent: refuse } };
  const builderFor = () => checkpointerFor(dir, { definition: indexless as never });
  await deposits(store, 0, 200);
  const first = await builderFor().snapshot(store.lsnDurable); // from the log alone
  await deposits(store, 200, 100);
  const all = store.readStale((state) => state.balances.get('acct0')!);
  await store.execute('transfer', { from: 'acct0', to: 'acct1', amount: all }); // acct0 is now indexed as empty
  const second = await builderFor().snapshot(store.lsnDurable); // loads the first snapshot, then replays
  assert.deepEqual([second.baseLsn, second.stateHash], [first.lsn, store.stateHash()]);
  const emptyAccounts = store.readStale((_state, indexes) => [...indexes.empty].sort());
  assert.deepEqual(emptyAccounts, ['acct0']);
  await store.close();

  const reopened = await Store.open(bankDefinition, { dir });
  assert.equal(reopened.recovery.snapshot?.lsn, second.lsn);
  assert.deepEqual(
    reopened.readStale((_state, indexes) => [...indexes.empty].sort()),
    emptyAccounts,
  );
  await reopened.close();
});

test('a paced catch-up paces the snapshot load too, and loads the same state', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir, segmentBytesMax: 1 << 20 });
  await deposits(store, 0, 3000); // 3,000 idempotency window entries: the load paces every 256
  const written = await checkpointerFor(dir).snapshot(store.lsnDurable);

  // A burst of 0 ms: the pacer sleeps at each clock read, so any pacing of the load shows as time slept.
  const pacer = new ReplayPacer(0.5, 0);
  const resumed = checkpointerFor(dir, { pacer });
  await resumed.catchUp(written.lsn, { paced: true }); // exactly the snapshot's LSN: nothing to replay
  assert.equal(resumed.lsnApplied, written.lsn);
  assert.ok(pacer.sleptMs > 0, 'the load itself slept');

  await deposits(store, 3000, 10);
  const next = await resumed.snapshot(store.lsnDurable);
  assert.equal(next.stateHash, store.stateHash());
  assert.deepEqual([next.baseLsn, next.recordsReplayed], [written.lsn, 10]);
  await store.close();
});

test('a resident snapshot worker follows the log between snapshots and keeps its state across them', async () => {
  const dir = await tempDir();
  const module = new URL('../engine/testing/bank.ts', import.meta.url).href;
  const errors: EngramError[] = [];
  const store = await Store.open(bankDefinition, {
    dir,
    segmentBytesMax: 4096,
    snapshots: { worker: { module, exportName: 'bankDefinition', resident: true }, everyMs: 3_600_000 },
    observer: { onSnapshotError: (error) => errors.push(error) },
  });
  await deposits(store, 0, 300);
  await new Promise((resolve) => setTimeout(resolve, 2_500)); // two ticks of the scheduler
  const first = await store.snapshot();
  assert.equal(first.stateHash, store.stateHash());
  assert.equal(first.recordsReplayed, 300);
  // Where files cannot be mapped, the worker catches up only when asked for a snapshot.
  assert.equal(first.recordsReplayedOnRequest, fileMappingStatus().available ? 0 : 300);

  await deposits(store, 300, 120);
  const second = await store.snapshot();
  assert.equal(second.stateHash, store.stateHash());
  assert.deepEqual([second.baseLsn, second.recordsReplayed], [first.lsn, 120]);
  await store.close();
  assert.deepEqual(errors, []);
});

test('a resident worker whose definition does not import fails the snapshot with the reason', async () => {
  const dir = await tempDir();
  const module = new URL('../engine/testing/bank.ts', import.meta.url).href;
  const store = await Store.open(bankDefinition, {
    dir,
    snapshots: { worker: { module, exportName: 'noSuchExport', resident: true }, everyMs: 3_600_000 },
  });
  await deposits(store, 0, 10);
  await assert.rejects(store.snapshot(), /no store definition exported as 'noSuchExport'/);
  await store.close();
});
