import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { CommandRejected } from '../../src/engine/definition.ts';
import { Store } from '../../src/engine/store.ts';
import { prefaultedMemory } from '../../src/util/prefaulted-memory.ts';
import { balanceGateDefinition, type GateState, Status } from './domain.ts';
import { CHUNK_SLOTS } from './reservation-table.ts';

const dirs: string[] = [];
async function openGate(options: { clock?: () => number } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'gate-domain-'));
  dirs.push(dir);
  return { dir, store: await Store.open(balanceGateDefinition, { dir, ...options }) };
}
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function assertInvariant(state: GateState): void {
  for (const m of state.merchantList) {
    assert.ok(m.available >= 0, `${m.id} available ${m.available}`);
    assert.equal(
      m.credited,
      m.available + m.held + m.captured,
      `${m.id} credited != available + held + captured`,
    );
  }
}

test('reserve approves while funds last, numbers payouts per merchant, and rejects beyond', async () => {
  const { store } = await openGate();
  await store.execute('credit', { merchantId: 'm1', transferId: 't1', amountCents: 1000 });
  const first = await store.execute('reserve', { reservationId: 'r1', merchantId: 'm1', amountCents: 600 });
  assert.equal(first.status, 'held');
  assert.equal(first.sequence, 1);
  assert.deepEqual(first.merchant, {
    merchant_id: 'm1',
    available_cents: 400,
    held_cents: 600,
    captured_cents: 0,
    credited_cents: 1000,
  });
  const second = await store.execute('reserve', { reservationId: 'r2', merchantId: 'm1', amountCents: 500 });
  assert.equal(second.status, 'rejected');
  assert.equal(second.reason, 'insufficient_funds');
  assert.equal(second.sequence, undefined);
  const third = await store.execute('reserve', { reservationId: 'r3', merchantId: 'm1', amountCents: 400 });
  assert.equal(third.sequence, 2);
  assert.equal(
    store.readStale((s) => s.reservations.get('r2')?.status),
    Status.Rejected,
  );
  await store.close();
});

test('a merchant keyed by a slice of a longer string is found again, lone surrogates included', async () => {
  // The merchant's key is a copy of the id it was credited under (see ownedString): it must equal the id.
  const { store } = await openGate();
  const url = '/v1/merchants/merchant-1234\ud800x/credits';
  const id = url.slice('/v1/merchants/'.length, url.indexOf('/credits'));
  await store.execute('credit', { merchantId: id, transferId: 't1', amountCents: 100 });
  const held = await store.execute('reserve', {
    reservationId: 'r1',
    merchantId: 'merchant-1234\ud800x',
    amountCents: 60,
  });
  assert.equal(held.status, 'held');
  assert.equal(held.merchant.merchant_id, id);
  assert.equal(
    store.readStale((s) => s.merchantList.length),
    1,
  );
  await store.close();
});

test('a retry gets the recorded decision byte for byte, even after the balance changed and after a restart', async () => {
  const { dir, store } = await openGate();
  await store.execute('credit', { merchantId: 'm1', transferId: 't1', amountCents: 100 });
  const held = await store.execute('reserve', {
    reservationId: 'r1',
    merchantId: 'm1',
    amountCents: 60,
    ttlMs: 60_000,
  });
  const rejected = await store.execute('reserve', { reservationId: 'r2', merchantId: 'm1', amountCents: 60 });
  await store.execute('credit', { merchantId: 'm1', transferId: 't2', amountCents: 1000 });
  // A retry (same id, same body) answers exactly as the first request did, before and after a restart.
  const expectRecordedAnswers = async (s: typeof store) => {
    const retryHeld = { reservationId: 'r1', merchantId: 'm1', amountCents: 60, ttlMs: 60_000 };
    assert.equal(JSON.stringify(await s.execute('reserve', retryHeld)), JSON.stringify(held));
    const retryRejected = { reservationId: 'r2', merchantId: 'm1', amountCents: 60 };
    assert.equal(JSON.stringify(await s.execute('reserve', retryRejected)), JSON.stringify(rejected));
  };
  await expectRecordedAnswers(store);
  await assert.rejects(
    store.execute('reserve', { reservationId: 'r1', merchantId: 'm1', amountCents: 61, ttlMs: 60_000 }),
    (e: CommandRejected) => e.code === 'idempotency_conflict',
  );
  await assert.rejects(
    store.execute('reserve', { reservationId: 'r1', merchantId: 'm1', amountCents: 60 }),
    (e: CommandRejected) => e.code === 'idempotency_conflict',
  );
  const lsn = store.lsnApplied;
  await store.close();
  const reopened = await Store.open(balanceGateDefinition, { dir });
  await expectRecordedAnswers(reopened);
  assert.equal(reopened.lsnApplied, lsn, 'retries record nothing');
  await reopened.close();
});

test('capture and release resolve a hold once; a second, different transition is an illegal transition', async () => {
  const { store } = await openGate();
  await store.execute('credit', { merchantId: 'm', transferId: 't', amountCents: 100 });
  await store.execute('reserve', { reservationId: 'a', merchantId: 'm', amountCents: 30 });
  await store.execute('reserve', { reservationId: 'b', merchantId: 'm', amountCents: 20 });
  const captured = await store.execute('capture', { reservationId: 'a' });
  assert.equal(captured.status, 'captured');
  assert.deepEqual(captured.merchant, {
    merchant_id: 'm',
    available_cents: 50,
    held_cents: 20,
    captured_cents: 30,
    credited_cents: 100,
  });
  assert.deepEqual(
    await store.execute('capture', { reservationId: 'a' }),
    captured,
    'a retried capture gets its recorded answer',
  );
  await assert.rejects(
    store.execute('release', { reservationId: 'a' }),
    (e: CommandRejected) => e.code === 'illegal_transition',
  );
  const released = await store.execute('release', { reservationId: 'b' });
  assert.equal(released.merchant.available_cents, 70);
  await assert.rejects(
    store.execute('capture', { reservationId: 'b' }),
    (e: CommandRejected) => e.code === 'illegal_transition',
  );
  await assert.rejects(
    store.execute('capture', { reservationId: 'nope' }),
    (e: CommandRejected) => e.code === 'not_found',
  );
  await assert.rejects(
    store.execute('reserve', { reservationId: 'c', merchantId: 'ghost', amountCents: 1 }),
    (e: CommandRejected) => e.code === 'not_found',
  );
  assertInvariant(store.readStale((s) => s));
  await store.close();
});

test('holds expire through a logged expire record at their ttl, and replay expires exactly the same holds', async () => {
  let nowMs = 1_000_000;
  const { dir, store } = await openGate({ clock: () => nowMs });
  await store.execute('credit', { merchantId: 'm', transferId: 't', amountCents: 100 });
  await store.execute('reserve', { reservationId: 'short', merchantId: 'm', amountCents: 10, ttlMs: 1000 });
  await store.execute('reserve', { reservationId: 'long', merchantId: 'm', amountCents: 10, ttlMs: 5000 });
  await store.execute('reserve', { reservationId: 'none', merchantId: 'm', amountCents: 10 });
  await store.execute('capture', { reservationId: 'long' });
  nowMs += 999;
  assert.equal((await store.execute('expire', { limit: 100 })).expired, 0);
  nowMs += 10_000;
  assert.equal(
    (await store.execute('expire', { limit: 100 })).expired,
    1,
    'only the unresolved hold past its ttl',
  );
  assert.equal((await store.execute('expire', { limit: 100 })).expired, 0);
  await assert.rejects(
    store.execute('capture', { reservationId: 'short' }),
    (e: CommandRejected) => e.code === 'illegal_transition',
  );
  const hash = store.stateHash();
  await store.close();
  const reopened = await Store.open(balanceGateDefinition, { dir, clock: () => nowMs });
  assert.equal(reopened.stateHash(), hash);
  assert.equal(
    reopened.readStale((s) => s.reservations.get('short')?.status),
    Status.Expired,
  );
  assert.equal(
    reopened.readStale((s) => s.merchants.get('m')?.available),
    80,
  );
  await reopened.close();
});

const operation = fc.oneof(
  fc.record({
    kind: fc.constant('credit' as const),
    merchant: fc.integer({ min: 0, max: 3 }),
    amount: fc.integer({ min: 1, max: 500 }),
    id: fc.integer({ min: 0, max: 30 }),
  }),
  fc.record({
    kind: fc.constant('reserve' as const),
    merchant: fc.integer({ min: 0, max: 3 }),
    amount: fc.integer({ min: 1, max: 300 }),
    id: fc.integer({ min: 0, max: 60 }),
    ttl: fc.option(fc.integer({ min: 1, max: 50 })),
  }),
  fc.record({
    kind: fc.constantFrom('capture' as const, 'release' as const),
    id: fc.integer({ min: 0, max: 60 }),
  }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 40 }) }),
);

test('under any sequence of operations the invariant holds, and restart and snapshot reproduce the state hash', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(operation, { maxLength: 60 }), async (ops) => {
      let nowMs = 5_000;
      const { dir, store } = await openGate({ clock: () => nowMs });
      for (const op of ops) {
        try {
          if (op.kind === 'credit')
            await store.execute('credit', {
              merchantId: `m${op.merchant}`,
              transferId: `t${op.id}`,
              amountCents: op.amount,
            });
          else if (op.kind === 'reserve')
            await store.execute('reserve', {
              reservationId: `r${op.id}`,
              merchantId: `m${op.merchant}`,
              amountCents: op.amount,
              ttlMs: op.ttl ?? undefined,
            });
          else if (op.kind === 'tick') {
            nowMs += op.ms;
            await store.execute('expire', { limit: 1000 });
          } else await store.execute(op.kind, { reservationId: `r${op.id}` });
        } catch (error) {
          if (
            !(error instanceof CommandRejected) &&
            (error as { code?: string }).code !== 'idempotency_conflict'
          )
            throw error;
        }
        assertInvariant(store.readStale((s) => s));
      }
      const hash = store.stateHash();
      await store.snapshot();
      await store.close();
      const reopened = await Store.open(balanceGateDefinition, { dir, clock: () => nowMs });
      assert.equal(reopened.stateHash(), hash);
      await reopened.close();
    }),
    { numRuns: 40 },
  );
});

/**
 * Credits 50 merchants, then reserves `batches` batches of 8,190 holds across them; `pauseMs` after each
 * gives the helper thread time to deliver spares, as a live store's pauses between requests do.
 */
async function growOverChunks(
  store: Awaited<ReturnType<typeof openGate>>['store'],
  batches: number,
  pauseMs: number,
) {
  await store.executeMany(
    'credit',
    Array.from({ length: 50 }, (_, i) => ({ merchantId: `m${i}`, transferId: `t${i}`, amountCents: 1e12 })),
  );
  for (let b = 0; b < batches; b++) {
    await store.executeMany(
      'reserve',
      Array.from({ length: 8190 }, (_, i) => ({
        reservationId: `r${b}-${i}`,
        merchantId: `m${i % 50}`,
        amountCents: 1 + (i % 97),
      })),
    );
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

test('a store grown past its first chunks on prefaulted memory snapshots, restarts and reads back the same', async () => {
  const { dir, store } = await openGate();
  const sparesBefore = prefaultedMemory.stats().spares;
  const batches = Math.ceil((3 * CHUNK_SLOTS) / 8190);
  await growOverChunks(store, batches, 10);
  assert.ok(prefaultedMemory.stats().spares > sparesBefore, 'some of the growth took prefaulted spares');
  const last = await store.read((s) => s.reservations.get(`r${batches - 1}-8189`));
  await store.snapshot();
  await store.execute('reserve', { reservationId: 'after-snapshot', merchantId: 'm1', amountCents: 5 });
  const hash = store.stateHash();
  await store.close();
  const again = await Store.open(balanceGateDefinition, { dir });
  assert.equal(again.stateHash(), hash);
  assert.deepEqual(await again.read((s) => s.reservations.get(`r${batches - 1}-8189`)), last);
  assert.equal(
    again.readStale((s) => s.reservations.size),
    batches * 8190 + 1,
  );
  await again.close();
});

test('a restart that replays the log takes prefaulted spares as the tables grow, and rebuilds the same state', async () => {
  const { dir, store } = await openGate();
  const batches = Math.ceil((4 * CHUNK_SLOTS) / 8190);
  await growOverChunks(store, batches, 0);
  const hash = store.stateHash();
  await store.close();
  // Spares asked for by the writes above have all arrived by now: what the helper faults in from here on,
  // the restart asked for.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const before = prefaultedMemory.stats();
  const again = await Store.open(balanceGateDefinition, { dir });
  const after = prefaultedMemory.stats();
  assert.equal(again.recovery.snapshot, undefined, 'restarted from the log alone');
  assert.ok(after.prefaulted > before.prefaulted, 'the restart had spares faulted in');
  // The replay runs synchronously, segment by segment: spares reach it only through the synchronous read.
  assert.ok(after.spares > before.spares, 'the replay took prefaulted spares');
  assert.equal(again.stateHash(), hash);
  await again.close();
});
