import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFailure, runSeed, runSeeds, type SeedResult } from './crash-sim.ts';

test('crash simulation: 1,000 seeds lose no acknowledged command and every recovered state matches the model', {
  timeout: 300_000,
}, async () => {
  const failures: SeedResult[] = [];
  const { summary, coverage } = await runSeeds(1, 1000, (r) => failures.push(r));
  const report = failures.map(describeFailure).join('\n');
  assert.equal(summary.seeds, 1000);
  assert.equal(summary.acked_lost, 0, report);
  assert.equal(summary.hash_mismatches, 0, report);
  assert.equal(summary.failures, 0, report);
  // The seeds exercise what they claim; a change that quietly stopped them doing so fails here.
  const c = coverage;
  assert.ok(c.lives > 2000, `lives (processes) run: ${c.lives}`);
  assert.ok(
    c.acked_checked > 20_000,
    `acknowledged-durable commands checked after a crash: ${c.acked_checked}`,
  );
  assert.ok(c.store_failures > 100, `write paths failed by an injected fault: ${c.store_failures}`);
  assert.ok(c.torn_tails_cut > 50, `torn tails cut at recovery: ${c.torn_tails_cut}`);
  assert.ok(c.snapshot_loads > 100, `recoveries from a snapshot: ${c.snapshot_loads}`);
  assert.ok(
    c.interrupted_recoveries > 100,
    `recoveries failed by a fault or a power loss: ${c.interrupted_recoveries}`,
  );
  assert.ok(
    summary.detected_corruptions > 20,
    `flipped bits refused at start-up: ${summary.detected_corruptions}`,
  );
});

test('a seed replays exactly: same trace, same outcome', async () => {
  for (const seed of [4, 12, 47, 63]) {
    const first = await runSeed(seed);
    const second = await runSeed(seed);
    assert.ok(first.trace.length > 0);
    assert.equal(second.trace, first.trace, `seed ${seed} diverged`);
  }
});

/**
 * Scenarios the simulation must keep covering. Each starts its search at a seed known to cover it and takes
 * the first seed from there whose trace shows the scenario: a change to the engine's timing moves the
 * trajectories of seeds, and that must not break the test, while losing the scenario altogether must.
 */
const SEARCH_SEEDS = 400;
const scenarios: { seed: number; covers: string; trace: RegExp; check?: (r: SeedResult) => boolean }[] = [
  {
    seed: 4,
    covers: 'a failed segment roll fail-stops the store; pending commands reject and nothing is lost',
    trace: /creating a new log segment/,
  },
  {
    seed: 6,
    covers: 'an injected write-path fault: the store fail-stops and recovery keeps every durable record',
    trace: /write path failed at durable LSN/,
  },
  {
    seed: 2,
    covers: 'power loss while recovery runs, then a clean recovery',
    trace: /ticks into recovery/,
  },
  {
    seed: 22,
    covers: 'an I/O fault during recovery fails it cleanly; the next boot recovers',
    trace: /recovery with fault .*: failed/,
  },
  {
    seed: 5,
    covers: 'recovery from a snapshot plus the log after it',
    trace: /recovered to LSN \d+ \(snapshot \d+/,
    check: (r) => r.snapshotLoads > 0,
  },
  {
    seed: 1,
    covers: 'a flipped bit is refused at start-up (detected corruption)',
    trace: /flipped bit/,
    check: (r) => r.detectedCorruption,
  },
  {
    seed: 15,
    covers: 'a flipped bit that recovery survives (padding, an older snapshot) with every check holding',
    trace: /flipped bit/,
    check: (r) => !r.detectedCorruption,
  },
  {
    seed: 9,
    covers: 'a clean close with commands in flight makes every recorded command durable',
    trace: /close with commands in flight: closed/,
  },
  {
    seed: 22,
    covers: 'a disk fault while closing: close() rejects, and nothing acknowledged is lost',
    trace: /before close\n(?:.*\n)*?.*close with commands in flight: failed/,
  },
];

async function findCovering(s: (typeof scenarios)[number]): Promise<SeedResult | undefined> {
  for (let seed = s.seed; seed < s.seed + SEARCH_SEEDS; seed++) {
    const r = await runSeed(seed);
    if (s.trace.test(r.trace) && (!s.check || s.check(r))) return r;
  }
  return undefined;
}

for (const s of scenarios) {
  test(`scenario from seed ${s.seed}: ${s.covers}`, async () => {
    const r = await findCovering(s);
    assert.ok(r, `no seed in ${s.seed}..${s.seed + SEARCH_SEEDS - 1} covers: ${s.covers}`);
    assert.equal(r.failure, undefined, describeFailure(r));
    assert.equal(r.ackedLost, 0, describeFailure(r));
    assert.equal(r.hashMismatch, false, describeFailure(r));
  });
}

test('regression (found at seed 1187): close() with a segment roll in flight does not resolve while the roll fails', async () => {
  const r = await runSeed(1187);
  assert.equal(r.failure, undefined, describeFailure(r));
  assert.equal(r.ackedLost, 0, describeFailure(r));
});

test('regression: seeds that once lost acknowledged data through a flipped bit (under the generator of the time) pass', async () => {
  for (const seed of [47, 1019, 2153, 2240, 4952]) {
    const r = await runSeed(seed);
    assert.equal(r.failure, undefined, describeFailure(r));
    assert.equal(r.ackedLost, 0, describeFailure(r));
    assert.equal(r.hashMismatch, false, describeFailure(r));
  }
});

test('regression (found at seed 709570): a memory ack lost at a recovery is not held against the same key recorded again at the same LSN later', async () => {
  const r = await runSeed(709570);
  // The seed still plays the coincidence: a life-0 answer at LSN 22, a recovery to 10, the key again at 22.
  assert.match(r.trace, /life 1: recovered to LSN 10\b/, describeFailure(r));
  assert.match(r.trace, /life 2: recovered to LSN 22\b/, describeFailure(r));
  assert.equal(r.failure, undefined, describeFailure(r));
  assert.equal(r.ackedLost, 0, describeFailure(r));
  assert.equal(r.hashMismatch, false, describeFailure(r));
});
