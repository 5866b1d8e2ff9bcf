/**
 * The Decision contract (definition.ts): the store keeps neither a decision nor its events once `decide`
 * has returned, so a hot command may hand back the same objects every time, refilled. balance-gate's reserve
 * does; these tests hold the store to it with a command that refills one decision and one event object and
 * scribbles over them right after each call, while many commands wait for the disk at once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDirs } from '../../test/support/temp-dirs.ts';
import { defineCommands, defineEvents, defineStore } from './definition.ts';
import { Store } from './store.ts';

const tempDir = tempDirs('engram-decision-reuse-');

interface Ledger {
  entries: { account: string; amount: number }[];
  totals: Map<string, number>;
}

type Posted = { account: string; amount: number };

const events = defineEvents<Ledger>()({
  posted: {
    id: 1,
    apply(state, e: Posted) {
      // A copy: the state must not hold the event's data object either (it is the scratch one when live).
      state.entries.push({ account: e.account, amount: e.amount });
      state.totals.set(e.account, (state.totals.get(e.account) ?? 0) + e.amount);
    },
  },
});

const scratchEvent = { type: 'posted' as const, data: { account: '', amount: 0 } as Posted };
const scratchDecision = {
  events: [scratchEvent],
  result: undefined as unknown as { account: string; total: number; lsn: number },
};
/** Whatever the store still points at after `decide` returns is overwritten with this before it is used. */
function scribble(): void {
  scratchEvent.data.account = 'SCRIBBLED';
  scratchEvent.data.amount = -1;
}

const commands = defineCommands<Ledger, typeof events>()({
  post: {
    id: 1,
    key: (c: { id: string; account: string; amount: number }) => c.id,
    decide(state, c: { id: string; account: string; amount: number }, ctx) {
      scratchEvent.data.account = c.account;
      scratchEvent.data.amount = c.amount;
      scratchDecision.result = {
        account: c.account,
        total: (state.totals.get(c.account) ?? 0) + c.amount,
        lsn: ctx.lsn,
      };
      // Runs once the synchronous run of commands in progress is over, before any group is durable: what
      // the store still pointed at would be read as SCRIBBLED (and the next decide refills it anyway).
      queueMicrotask(scribble);
      return scratchDecision;
    },
  },
});

const ledgerDefinition = defineStore({
  name: 'ledger',
  initialState: (): Ledger => ({ entries: [], totals: new Map() }),
  events,
  commands,
});

const postOf = (i: number) => ({ id: `p-${i}`, account: `acct-${i % 7}`, amount: 1 + i });

function expectedTotals(count: number): Map<string, number> {
  const totals = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const p = postOf(i);
    totals.set(p.account, (totals.get(p.account) ?? 0) + p.amount);
  }
  return totals;
}

test('a decide that returns the same decision and event objects every time: each command is applied, logged and answered as its own', async () => {
  const dir = await tempDir();
  const store = await Store.open(ledgerDefinition, { dir });
  // Hundreds in flight at the disk ack point: all decided (and the scratch objects refilled) before any
  // group is durable, then a batch that refills them within one call.
  const singles = Array.from({ length: 600 }, (_, i) => store.execute('post', postOf(i)));
  const batch = store.executeMany(
    'post',
    Array.from({ length: 400 }, (_, k) => postOf(600 + k)),
  );
  const answers = await Promise.all(singles);
  const batchAnswers = await batch;
  const running = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const p = postOf(i);
    running.set(p.account, (running.get(p.account) ?? 0) + p.amount);
    const item = batchAnswers[i - 600];
    const answer = i < 600 ? answers[i] : item?.ok ? item.result : assert.fail(`item ${i - 600} failed`);
    assert.deepEqual(answer, { account: p.account, total: running.get(p.account), lsn: i + 1 });
  }
  const live = store.readStale((s) => ({ entries: s.entries.slice(), totals: new Map(s.totals) }));
  assert.deepEqual(live.totals, expectedTotals(1000));
  assert.ok(live.entries.every((e, i) => e.account === postOf(i).account && e.amount === postOf(i).amount));

  // A retry answers from the recorded result, not from the scratch object refilled since.
  await store.execute('post', postOf(1000));
  assert.deepEqual(await store.execute('post', postOf(3)), answers[3]);
  await store.close();

  // The log holds every command's own event: replay rebuilds the same state.
  const reopened = await Store.open(ledgerDefinition, { dir });
  const replayed = reopened.readStale((s) => ({ entries: s.entries.slice(), totals: new Map(s.totals) }));
  assert.deepEqual(replayed.totals, expectedTotals(1001));
  assert.deepEqual(replayed.entries.slice(0, 1000), live.entries);
  assert.equal(
    replayed.entries.some((e) => e.account === 'SCRIBBLED'),
    false,
  );
  await reopened.close();
});

test('memory ack point: a reused decision is safe while its records wait for the background flush', async () => {
  const dir = await tempDir();
  const store = await Store.open(ledgerDefinition, { dir, ackPoint: 'memory' });
  for (let i = 0; i < 300; i++) await store.execute('post', postOf(i));
  await store.close();
  const reopened = await Store.open(ledgerDefinition, { dir });
  assert.deepEqual(
    reopened.readStale((s) => new Map(s.totals)),
    expectedTotals(300),
  );
  await reopened.close();
});
