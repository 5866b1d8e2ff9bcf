import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSeed, runSeeds, type SeedResult } from './crash-sim.ts';

test('crash simulation: 1,000 seeds lose no acknowledged command and every recovered state matches the model', {
  timeout: 300_000,
}, async () => {
  const failures: SeedResult[] = [];
  const summary = await runSeeds(1, 1000, (r) => failures.push(r));
  const report = failures
    .map(
      (r) =>
        `seed ${r.seed}: ${r.failure ?? ''} lost=${r.ackedLost} hash=${r.hashMismatch} (npm run sim -- --seed ${r.seed} --verbose)`,
    )
    .join('\n');
  assert.equal(summary.seeds, 1000);
  assert.equal(summary.acked_lost, 0, report);
  assert.equal(summary.hash_mismatches, 0, report);
  assert.equal(summary.failures, 0, report);
});

test('regression: a crashed process that keeps running cannot write to the rebooted disk (seed 13)', async () => {
  const r = await runSeed(13);
  assert.equal(r.failure, undefined);
  assert.equal(r.ackedLost, 0);
});

test('seeds exercise what they claim: acknowledged commands, recoveries with records, detected corruption', async () => {
  let acked = 0;
  let recovered = 0;
  let detected = 0;
  for (let seed = 2000; seed < 2100; seed++) {
    const r = await runSeed(seed);
    acked += r.acked;
    if (r.recordsRecovered > 0) recovered++;
    if (r.detectedCorruption) detected++;
  }
  assert.ok(acked > 500, `acknowledged commands checked: ${acked}`);
  assert.ok(recovered > 50, `seeds that recovered records: ${recovered}`);
  assert.ok(detected > 0, 'some flipped bits are caught at start-up');
});
