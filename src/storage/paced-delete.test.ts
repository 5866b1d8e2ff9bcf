import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pruneSnapshots } from '../snapshot/catalog.ts';
import { snapshotName } from '../snapshot/format.ts';
import { deletePaced, PACED_DELETE_STEP_BYTES } from './paced-delete.ts';
import { SimFileSystem } from './sim-file-system.ts';
import {
  DIED_AT_TRUNCATE,
  diskWithFiles,
  dyingAtFirstTruncation,
  makeFile,
  watchTruncations,
} from './testing/truncation-watch.ts';

test('deletePaced shrinks a large file one step at a time, then unlinks it; a small file goes at once', async () => {
  const sim = new SimFileSystem({ seed: 1, capacityBytes: 64 * 1024 * 1024 });
  await sim.mkdirp('/d');
  const { fs, sizes } = watchTruncations(sim);
  const step = PACED_DELETE_STEP_BYTES;
  await makeFile(sim, '/d/big', 2 * step + 100);
  await deletePaced(fs, '/d/big');
  assert.deepEqual(sizes, [step + 100, 100]);
  assert.equal(await sim.exists('/d/big'), false);

  sizes.length = 0;
  await makeFile(sim, '/d/small', step);
  await deletePaced(fs, '/d/small');
  assert.deepEqual(sizes, []);
  assert.equal(await sim.exists('/d/small'), false);
});

test('a crash while a pruned snapshot is being deleted leaves a temp file, never a shortened snapshot', async () => {
  const dir = '/data/snapshots';
  const sim = await diskWithFiles(2, dir, [10, 20, 30].map(snapshotName), PACED_DELETE_STEP_BYTES + 1);
  await assert.rejects(pruneSnapshots(dyingAtFirstTruncation(sim), dir, 2), new RegExp(DIED_AT_TRUNCATE));
  const rebooted = sim.crash();
  const names = (await rebooted.list(dir)).sort();
  assert.deepEqual(names, [`${snapshotName(10)}.tmp`, snapshotName(20), snapshotName(30)]);
  // The next prune (the next snapshot's) finishes the deletion.
  const kept = await pruneSnapshots(rebooted, dir, 2);
  assert.deepEqual(
    kept.map((e) => e.lsn),
    [30, 20],
  );
  assert.deepEqual((await rebooted.list(dir)).sort(), [snapshotName(20), snapshotName(30)]);
});
