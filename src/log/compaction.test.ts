import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PACED_DELETE_STEP_BYTES } from '../storage/paced-delete.ts';
import { SimFileSystem } from '../storage/sim-file-system.ts';
import { makeFile, watchTruncations } from '../storage/testing/truncation-watch.ts';
import { compactLog } from './compaction.ts';
import { segmentName } from './format.ts';
import { listSegments } from './reader.ts';

test('a crash while compaction deletes a segment leaves it out of the log; the next compaction removes it', async () => {
  const sim = new SimFileSystem({ seed: 3, capacityBytes: 64 * 1024 * 1024 });
  const dir = '/data/wal';
  await sim.mkdirp(dir);
  for (const base of [1, 101, 201])
    await makeFile(sim, `${dir}/${segmentName(base)}`, PACED_DELETE_STEP_BYTES + 1);
  await sim.syncDir(dir);
  const crashAtFirstStep = watchTruncations(sim, () => {
    throw new Error('the process died here');
  });
  // Records below 150 are covered: the first segment (1..100) goes, the second (101..200) still holds 150.
  await assert.rejects(compactLog(crashAtFirstStep.fs, dir, 150), /the process died here/);
  const rebooted = sim.crash();
  assert.deepEqual(
    (await listSegments(rebooted, dir)).map((s) => s.baseLsn),
    [101, 201],
  );
  assert.ok((await rebooted.list(dir)).includes(`${segmentName(1)}.deleting`));

  const again = watchTruncations(rebooted);
  const result = await compactLog(again.fs, dir, 150);
  assert.deepEqual(result.deleted, []);
  assert.deepEqual(again.sizes, [1], 'the leftover is shrunk paced, then unlinked');
  assert.deepEqual((await rebooted.list(dir)).sort(), [segmentName(101), segmentName(201)]);
});
