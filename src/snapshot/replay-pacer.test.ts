import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplayPacer } from './replay-pacer.ts';

/** Replays "records" of busy work for about `ms` of CPU, ticking the pacer after each. */
function busyReplay(pacer: ReplayPacer, ms: number): { busyMs: number; elapsedMs: number } {
  const start = performance.now();
  let busyMs = 0;
  pacer.begin();
  while (busyMs < ms) {
    const t = performance.now();
    while (performance.now() - t < 0.01) {} // one record's worth of work
    busyMs += performance.now() - t;
    pacer.tick();
  }
  return { busyMs, elapsedMs: performance.now() - start };
}

test('a paced replay sleeps so that it takes no more than its share of the time', () => {
  const pacer = new ReplayPacer(0.25, 2);
  const { busyMs, elapsedMs } = busyReplay(pacer, 40);
  // Atomics.wait never returns before its timeout unless woken, so this bound holds on any machine.
  assert.ok(
    pacer.sleptMs >= busyMs * 2.5,
    `slept ${pacer.sleptMs.toFixed(1)} ms for ${busyMs.toFixed(1)} ms of work`,
  );
  assert.ok(elapsedMs >= pacer.sleptMs + busyMs * 0.99);
});

test('a replay asked to hurry, or given the whole CPU, never sleeps', () => {
  const hurry = new Int32Array(new SharedArrayBuffer(4));
  Atomics.store(hurry, 0, 1);
  const hurried = new ReplayPacer(0.25, 2, hurry);
  busyReplay(hurried, 20);
  assert.equal(hurried.sleptMs, 0);
  const whole = new ReplayPacer(1, 2);
  busyReplay(whole, 20);
  assert.equal(whole.sleptMs, 0);
});

test('a share outside (0, 1] is refused with the value given', () => {
  assert.throws(() => new ReplayPacer(0), /must be in \(0, 1\], got 0/);
  assert.throws(() => new ReplayPacer(1.5), /got 1.5/);
  assert.throws(() => new ReplayPacer(Number.NaN), /got NaN/);
});
