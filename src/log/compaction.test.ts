import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PACED_DELETE_STEP_BYTES } from '../storage/paced-delete.ts';
import {
  DIED_AT_TRUNCATE,
  diskWithFiles,
  dyingAtFirstTruncation,
  watchTruncations,
} from '../storage/testing/truncation-watch.ts';
import { compactLog } from './compaction.ts';
import { segmentName } from './format.ts';
import { listSegments } from './reader.ts';

test('a crash while compaction deletes a segment leaves it out of the log; the next compaction removes it', async () => {
  const dir = '/data/wal';
  const sim = await diskWithFiles(3, dir, [1, 101, 201].map(segmentName), PACED_DELETE_STEP_BYTES + 1);
  // Records below 150 are covered: the first segment (1..100) goes, the second (101..200) still holds 150.
  await assert.rejects(compactLog(dyingAtFirstTruncation(sim), dir, 150), new RegExp(DIED_AT_TRUNCATE));
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
