import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PREFAULT_MIN_BYTES, PrefaultedMemory } from './prefaulted-memory.ts';

const growing = { growing: true, zeroed: true };
const notGrowing = { growing: false, zeroed: true };

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function isZeros(buffer: Buffer): boolean {
  for (let i = 0; i < buffer.length; i++) if (buffer[i] !== 0) return false;
  return true;
}

test('a growing table gets faulted-in spares once they are read: zeros, each handed out once', async () => {
  const memory = new PrefaultedMemory();
  const bytes = 64 * 1024;
  const first = memory.take(bytes, growing);
  assert.equal(first.length, bytes);
  assert.equal(memory.stats().fresh, 1);
  await until(() => memory.stats().readyBytes > 0, 'spares');
  const ready = memory.stats().readyBytes / bytes;
  assert.ok(ready >= 2, `at least two spares are ready (${ready})`);

  const taken: Buffer[] = [];
  for (let k = 0; k < ready; k++) taken.push(memory.take(bytes, notGrowing));
  assert.equal(memory.stats().spares, ready);
  for (const buffer of taken) {
    assert.equal(buffer.length, bytes);
    assert.ok(isZeros(buffer), 'a spare is all zeros');
  }
  // No two spares share a byte: filling one leaves the others zero.
  taken[0].fill(0xaa);
  for (const other of taken.slice(1)) assert.ok(isZeros(other), 'spares do not overlap');
  assert.equal(memory.stats().readyBytes, 0);
  // With the spares used up and the table no longer said to grow, memory is fresh again.
  assert.ok(isZeros(memory.take(bytes, notGrowing)));
  assert.equal(memory.stats().fresh, 2);
});

test('spares reach a burst of growth that never yields to the event loop (as a recovery replays)', () => {
  const memory = new PrefaultedMemory();
  const bytes = 64 * 1024;
  memory.take(bytes, growing);
  // Synchronous to the end: a spare can only come through the synchronous read of the helper's answers.
  const deadline = Date.now() + 5000;
  while (memory.stats().readyBytes === 0) {
    if (Date.now() > deadline) assert.fail('no spare arrived while the event loop was busy');
  }
  const spare = memory.take(bytes, growing);
  assert.ok(isZeros(spare));
  assert.equal(memory.stats().spares, 1);
  assert.equal(memory.stats().spareBytes, bytes, 'spare bytes handed out are counted');
});

test('a table that is not growing, or a request under the minimum, faults nothing in advance', async () => {
  const memory = new PrefaultedMemory();
  memory.take(64 * 1024, notGrowing);
  memory.take(PREFAULT_MIN_BYTES - 8, growing);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(memory.stats(), { spares: 0, fresh: 2, prefaulted: 0, readyBytes: 0, spareBytes: 0 });
});

test('without the helper thread, every request gets fresh memory of the size asked for', async () => {
  const memory = new PrefaultedMemory({ helper: false });
  const zeroed = memory.take(64 * 1024, growing);
  assert.ok(isZeros(zeroed));
  assert.equal(memory.take(64 * 1024, { growing: true, zeroed: false }).length, 64 * 1024);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(memory.stats().readyBytes, 0);
  assert.equal(memory.stats().fresh, 2);
});

test('only the sizes asked for most recently keep spares, so memory held in advance stays bounded', async () => {
  const memory = new PrefaultedMemory();
  const sizes = Array.from({ length: 12 }, (_, k) => (4 + k) * 16 * 1024);
  for (const bytes of sizes) {
    const before = memory.stats().prefaulted;
    memory.take(bytes, growing);
    await until(() => memory.stats().prefaulted > before, `spares of ${bytes} bytes`);
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Eight sizes at about 1 MiB (and at least two spares) each.
  const held = memory.stats().readyBytes;
  assert.ok(held <= 8 * (1024 * 1024 + 2 * sizes.at(-1)!), `${held} bytes held`);
  const before = memory.stats().fresh;
  memory.take(sizes[0], notGrowing);
  assert.equal(memory.stats().fresh, before + 1, 'the oldest size lost its spares');
  memory.take(sizes.at(-1)!, notGrowing);
  assert.equal(memory.stats().fresh, before + 1, 'the newest size kept them');
});

test('while suspended (as during a snapshot rebuild in a worker), nothing is faulted in; resuming twice counts once', async () => {
  const memory = new PrefaultedMemory();
  const outer = memory.suspend();
  const inner = memory.suspend();
  inner();
  inner();
  memory.take(64 * 1024, growing);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(memory.stats().prefaulted, 0, 'the outer suspension still holds');
  outer();
  memory.take(64 * 1024, growing);
  await until(() => memory.stats().prefaulted > 0, 'spares after resuming');
});

test('spares a table dropped are freed: the helper keeps no reference to the memory it made', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const memory = new PrefaultedMemory();
  const before = process.memoryUsage().arrayBuffers;
  for (let k = 0; k < 200; k++) {
    memory.take(256 * 1024, growing);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert.ok(memory.stats().spares > 100, `spares were used (${memory.stats().spares})`);
  for (let k = 0; k < 3; k++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  // 200 × 256 KiB went through; what stays is the ready spares (1 MiB) and noise, not 50 MiB.
  const held = process.memoryUsage().arrayBuffers - before - memory.stats().readyBytes;
  assert.ok(held < 16 * 1024 * 1024, `${(held / 2 ** 20).toFixed(1)} MiB still held`);
});
