import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDirs } from '../../test/support/temp-dirs.ts';
import { type EngramError, OverloadedError } from '../errors.ts';
import { NodeFileSystem } from '../storage/node-file-system.ts';
import { ControlledFileSystem } from '../storage/testing/controlled-file-system.ts';
import { CommandRejected, defineCommands, defineEvents, defineStore } from './definition.ts';
import { Store } from './store.ts';
import { bankDefinition } from './testing/bank.ts';

const tempDir = tempDirs('engram-store-');

/** Resolves on the next macrotask: lets pending I/O callbacks run. */
const tick = () => new Promise((resolve) => setImmediate(resolve));

async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  for (let i = 0; i < 5; i++) await tick();
  return done;
}

test('execute applies, acknowledges and survives a restart with the same state hash', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  assert.deepEqual(await store.execute('deposit', { id: 'd1', account: 'a', amount: 100 }), {
    balance: 100,
    lsn: 1,
  });
  assert.deepEqual(await store.execute('transfer', { from: 'a', to: 'b', amount: 30 }), { ok: true, lsn: 2 });
  assert.deepEqual(await store.execute('transfer', { from: 'a', to: 'b', amount: 500 }), {
    ok: false,
    lsn: 3,
  });
  assert.deepEqual(await store.read((s) => [...s.balances]), [
    ['a', 70],
    ['b', 30],
  ]);
  const hash = store.stateHash();
  await store.close();
  const reopened = await Store.open(bankDefinition, { dir });
  assert.equal(reopened.recovery.recordsReplayed, 3);
  assert.equal(reopened.lsnApplied, 3);
  assert.equal(reopened.stateHash(), hash);
  assert.deepEqual(await reopened.execute('deposit', { id: 'd2', account: 'a', amount: 1 }), {
    balance: 71,
    lsn: 4,
  });
  await reopened.close();
});

test('a retry with the same key returns the recorded result, also after restart; a different body conflicts', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  const first = await store.execute('deposit', { id: 'k', account: 'a', amount: 5 });
  await store.execute('deposit', { id: 'other', account: 'a', amount: 7 });
  assert.deepEqual(await store.execute('deposit', { id: 'k', account: 'a', amount: 5 }), first);
  await assert.rejects(store.execute('deposit', { id: 'k', account: 'a', amount: 6 }), (e: EngramError) => {
    assert.equal(e.code, 'idempotency_conflict');
    assert.match(e.message, /already used at LSN 1/);
    return true;
  });
  assert.equal(store.lsnApplied, 2, 'neither the retry nor the conflict is recorded');
  await store.close();
  const reopened = await Store.open(bankDefinition, { dir });
  assert.deepEqual(await reopened.execute('deposit', { id: 'k', account: 'a', amount: 5 }), first);
  assert.equal(
    reopened.readStale((s) => s.balances.get('a')),
    12,
  );
  await reopened.close();
});

test('the idempotency window evicts by count and by record age, identically on replay', async () => {
  const dir = await tempDir();
  let nowMs = 1_000_000;
  const options = { dir, clock: () => nowMs, idempotency: { maxEntries: 3, maxAgeMs: 10_000 } };
  const store = await Store.open(bankDefinition, options);
  for (const id of ['a', 'b', 'c', 'd']) await store.execute('deposit', { id, account: 'x', amount: 1 });
  assert.deepEqual([...store.idempotency.entries.keys()], ['b', 'c', 'd']);
  nowMs += 10_001;
  await store.execute('deposit', { id: 'e', account: 'x', amount: 1 });
  assert.deepEqual([...store.idempotency.entries.keys()], ['e']);
  const hash = store.stateHash();
  await store.close();
  const reopened = await Store.open(bankDefinition, options);
  assert.equal(reopened.stateHash(), hash);
  await reopened.close();
});

test('a disk-acked command and a read wait for fdatasync; stale reads do not', async () => {
  const dir = await tempDir();
  const fs = new ControlledFileSystem(new NodeFileSystem());
  const store = await Store.open(bankDefinition, { dir, fs });
  fs.hold = true;
  const ack = store.execute('deposit', { id: 'd', account: 'a', amount: 10 });
  const read = store.read((s) => s.balances.get('a'));
  assert.equal(
    store.readStale((s) => s.balances.get('a')),
    10,
    'applied in memory at once',
  );
  assert.equal(await settled(ack), false, 'not acknowledged before fdatasync');
  assert.equal(await settled(read), false, 'a read does not expose an undurable change');
  fs.hold = false;
  fs.release();
  assert.deepEqual(await ack, { balance: 10, lsn: 1 });
  assert.equal(await read, 10);
  await store.close();
});

test('the memory ack point acknowledges before the flush; a per-command disk ack still waits', async () => {
  const dir = await tempDir();
  const fs = new ControlledFileSystem(new NodeFileSystem());
  const store = await Store.open(bankDefinition, { dir, fs, ackPoint: 'memory' });
  fs.hold = true;
  assert.deepEqual(await store.execute('deposit', { id: 'm', account: 'a', amount: 1 }), {
    balance: 1,
    lsn: 1,
  });
  const strong = store.execute('deposit', { id: 'n', account: 'a', amount: 1 }, { ack: 'disk' });
  assert.equal(await settled(strong), false);
  fs.hold = false;
  fs.release();
  assert.deepEqual(await strong, { balance: 2, lsn: 2 });
  await store.close();
});

test('a per-command ack point never weakens the store’s', async () => {
  const dir = await tempDir();
  const fs = new ControlledFileSystem(new NodeFileSystem());
  const store = await Store.open(bankDefinition, { dir, fs });
  fs.hold = true;
  const weak = store.execute('deposit', { id: 'w', account: 'a', amount: 1 }, { ack: 'memory' });
  assert.equal(await settled(weak), false);
  fs.hold = false;
  fs.release();
  await weak;
  await store.close();
});

test('backpressure refuses with a clear overloaded error and changes nothing', async () => {
  const dir = await tempDir();
  const fs = new ControlledFileSystem(new NodeFileSystem());
  const store = await Store.open(bankDefinition, { dir, fs, pendingCommandsMax: 2 });
  fs.hold = true;
  const pending = [1, 2, 3].map((i) => store.execute('deposit', { id: `p${i}`, account: 'a', amount: 1 }));
  await tick();
  const lsnBefore = store.lsnApplied;
  await assert.rejects(store.execute('deposit', { id: 'x', account: 'a', amount: 1 }), (e: unknown) => {
    assert.ok(e instanceof OverloadedError);
    assert.equal(e.code, 'overloaded');
    assert.ok(e.retryAfterMs >= 1);
    assert.match(e.message, /Retry after/);
    return true;
  });
  assert.equal(store.lsnApplied, lsnBefore);
  assert.equal(
    store.readStale((s) => s.balances.get('a')),
    3,
  );
  fs.hold = false;
  fs.release();
  await Promise.all(pending);
  await store.execute('deposit', { id: 'x', account: 'a', amount: 1 });
  await store.close();
});

test('an fdatasync failure fails every pending command, stops writes, and a restart keeps only durable records', async () => {
  const dir = await tempDir();
  const fs = new ControlledFileSystem(new NodeFileSystem());
  const store = await Store.open(bankDefinition, { dir, fs });
  await store.execute('deposit', { id: 'durable', account: 'a', amount: 1 });
  fs.hold = true;
  fs.failNextSync = 'EIO';
  const doomed = [
    store.execute('deposit', { id: 'lost1', account: 'a', amount: 1 }),
    store.execute('deposit', { id: 'lost2', account: 'a', amount: 1 }),
  ];
  const read = store.read((s) => s.balances.get('a'));
  await tick();
  fs.hold = false;
  fs.release();
  for (const p of [...doomed, read]) {
    await assert.rejects(p, (e: EngramError) => e.code === 'storage_io' && /EIO/.test(e.message));
  }
  await assert.rejects(
    store.execute('deposit', { id: 'after', account: 'a', amount: 1 }),
    (e: EngramError) => e.code === 'storage_io',
  );
  assert.equal(store.failed?.code, 'storage_io');
  await assert.rejects(store.close());
  // The failed group may or may not have reached the disk (its write succeeded, its sync did not); both
  // are legal outcomes, but the durable record must be there and nothing may be half-applied.
  const reopened = await Store.open(bankDefinition, { dir });
  const balance = reopened.readStale((s) => s.balances.get('a'));
  assert.ok(balance === 1 || balance === 3, `balance ${balance}`);
  await reopened.close();
});

test('secondary indexes are maintained on apply and rebuilt by replay', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  await store.execute('deposit', { id: '1', account: 'a', amount: 5 });
  await store.execute('transfer', { from: 'a', to: 'b', amount: 5 });
  assert.deepEqual([...store.readStale((_s, ix) => ix.empty)], ['a']);
  await store.close();
  const reopened = await Store.open(bankDefinition, { dir });
  assert.deepEqual([...reopened.readStale((_s, ix) => ix.empty)], ['a']);
  await reopened.close();
});

test('a rejected command is not recorded and the caller gets its code', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  await assert.rejects(
    store.execute('deposit', { id: 'bad', account: 'a', amount: -1 }),
    (e: unknown) => e instanceof CommandRejected && e.code === 'invalid_amount',
  );
  assert.equal(store.lsnApplied, 0);
  await assert.rejects(
    store.execute('nope' as 'deposit', { id: 'x', account: 'a', amount: 1 }),
    (e: EngramError) => e.code === 'invalid_argument',
  );
  await store.close();
});

test('executeMany acknowledges a batch once, with per-item results and errors', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  const results = await store.executeMany('deposit', [
    { id: 'a', account: 'x', amount: 1 },
    { id: 'b', account: 'x', amount: -1 },
    { id: 'a', account: 'x', amount: 1 },
    { id: 'a', account: 'x', amount: 2 },
  ]);
  assert.deepEqual(results[0], { ok: true, result: { balance: 1, lsn: 1 } });
  assert.equal(results[1].ok, false);
  assert.deepEqual(results[2], { ok: true, result: { balance: 1, lsn: 1 } });
  assert.equal(!results[3].ok && (results[3].error as EngramError).code, 'idempotency_conflict');
  await store.close();
});

test('executeEach hands each outcome over in order at once, and resolves only when the batch is durable', async () => {
  const dir = await tempDir();
  const fs = new ControlledFileSystem(new NodeFileSystem());
  const store = await Store.open(bankDefinition, { dir, fs });
  fs.hold = true;
  const seen: string[] = [];
  const done = store.executeEach(
    'deposit',
    [
      { id: 'a', account: 'x', amount: 5 },
      { id: 'b', account: 'x', amount: -1 },
      { id: 'c', account: 'x', amount: 2 },
    ],
    {
      decided: (result, i) => seen.push(`${i}:${result.balance}@${result.lsn}`),
      refused: (error, i) => seen.push(`${i}:${(error as EngramError).code}`),
    },
  );
  assert.deepEqual(seen, ['0:5@1', '1:invalid_amount', '2:7@2'], 'every outcome before the ack');
  assert.equal(await settled(done), false, 'not acknowledged before fdatasync');
  fs.hold = false;
  fs.release();
  await done;
  assert.equal(store.lsnDurable, 2);
  await store.close();
});

test('executeEach rejects when its group cannot be written, after the sink saw the outcomes', async () => {
  const dir = await tempDir();
  const fs = new ControlledFileSystem(new NodeFileSystem());
  const store = await Store.open(bankDefinition, { dir, fs });
  fs.failNextSync = 'EIO';
  let decided = 0;
  const done = store.executeEach('deposit', [{ id: 'a', account: 'x', amount: 5 }], {
    decided: () => decided++,
    refused: () => assert.fail('nothing to refuse'),
  });
  assert.equal(decided, 1);
  await assert.rejects(done, (e: EngramError) => e.code === 'storage_io');
  await store.close().catch(() => undefined);
});

test('executeEach turns a sink that throws into a rejection of the batch, not a throw', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  let done: Promise<void> | undefined;
  assert.doesNotThrow(() => {
    done = store.executeEach('deposit', [{ id: 'a', account: 'x', amount: 5 }], {
      decided: () => {
        throw new Error('a broken sink');
      },
      refused: () => undefined,
    });
  });
  await assert.rejects(done as Promise<void>, /a broken sink/);
  await store.close();
});

test('close flushes, resolves pending commands and refuses new ones', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, {
    dir,
    ackPoint: 'memory',
    flushPolicy: { kind: 'interval', intervalMs: 60_000 },
  });
  await store.execute('deposit', { id: 'm', account: 'a', amount: 1 });
  await store.close();
  await assert.rejects(
    store.execute('deposit', { id: 'n', account: 'a', amount: 1 }),
    (e: EngramError) => e.code === 'store_closed',
  );
  const reopened = await Store.open(bankDefinition, { dir });
  assert.equal(
    reopened.readStale((s) => s.balances.get('a')),
    1,
    'close made the memory-acked command durable',
  );
  await reopened.close();
});

test('ctx.nowMs comes from the record, never decreases, and replay does not call decide', async () => {
  const dir = await tempDir();
  const times = [5_000, 4_000, 6_000];
  let decides = 0;
  const events = defineEvents<{ seen: number[] }>()({
    stamped: {
      id: 1,
      apply(state, e: { atMs: number; roll: number }) {
        state.seen.push(e.atMs, e.roll);
      },
    },
  });
  const commands = defineCommands<{ seen: number[] }, typeof events>()({
    stamp: {
      id: 1,
      decide(_state, _c: Record<string, never>, ctx) {
        decides++;
        return {
          events: [{ type: 'stamped', data: { atMs: ctx.nowMs, roll: ctx.random() } }],
          result: ctx.nowMs,
        };
      },
    },
  });
  const definition = defineStore({
    name: 'clock',
    initialState: () => ({ seen: [] as number[] }),
    events,
    commands,
  });
  const store = await Store.open(definition, { dir, clock: () => times.shift()! });
  assert.equal(await store.execute('stamp', {}), 5_000);
  assert.equal(
    await store.execute('stamp', {}),
    5_000,
    'a clock going backwards does not move record time back',
  );
  assert.equal(await store.execute('stamp', {}), 6_000);
  const hash = store.stateHash();
  await store.close();
  const before = decides;
  const reopened = await Store.open(definition, { dir });
  assert.equal(decides, before);
  assert.equal(reopened.stateHash(), hash);
  await reopened.close();
});

test('a payload with an own "__proto__" key is refused before anything is recorded; the string as a value is fine', async () => {
  const dir = await tempDir();
  type Tags = { tags: Record<string, unknown>[] };
  const events = defineEvents<Tags>()({
    tagged: {
      id: 1,
      apply(state, e: { tags: Record<string, unknown> }) {
        state.tags.push(e.tags);
      },
    },
  });
  const commands = defineCommands<Tags, typeof events>()({
    tag: {
      id: 1,
      decide(_state, c: { json: string }) {
        return { events: [{ type: 'tagged', data: { tags: JSON.parse(c.json) } }], result: true };
      },
    },
  });
  const definition = defineStore({ name: 'tags', initialState: () => ({ tags: [] }), events, commands });
  const store = await Store.open(definition, { dir });
  await assert.rejects(
    store.execute('tag', { json: '{"ok":1,"nested":[{"__proto__":{"admin":true}}]}' }),
    (e: EngramError) => e.code === 'invalid_argument' && /__proto__/.test(e.message),
  );
  assert.equal(store.lsnApplied, 0, 'nothing recorded');
  assert.equal(
    store.readStale((s) => s.tags.length),
    0,
    'nothing applied',
  );
  assert.equal(await store.execute('tag', { json: '{"name":"__proto__"}' }), true);
  const hash = store.stateHash();
  await store.close();
  const reopened = await Store.open(definition, { dir });
  assert.deepEqual(
    reopened.readStale((s) => s.tags),
    [{ name: '__proto__' }],
  );
  assert.equal(reopened.stateHash(), hash);
  await reopened.close();
});

test('replay refuses a record type this build does not define, naming the LSN', async () => {
  const dir = await tempDir();
  const store = await Store.open(bankDefinition, { dir });
  await store.execute('deposit', { id: '1', account: 'a', amount: 5 });
  await store.execute('transfer', { from: 'a', to: 'b', amount: 1 });
  await store.close();
  const { transfer: _dropped, ...commands } = bankDefinition.commands;
  const older = { ...bankDefinition, commands } as unknown as typeof bankDefinition;
  await assert.rejects(Store.open(older, { dir }), (e: EngramError) => {
    assert.equal(e.code, 'unknown_record_type');
    assert.match(e.message, /LSN 2/);
    return true;
  });
});

test('definitions with duplicate ids are refused before anything is written', async () => {
  const dir = await tempDir();
  const broken = {
    ...bankDefinition,
    commands: { ...bankDefinition.commands, again: { ...bankDefinition.commands.deposit } },
  };
  await assert.rejects(Store.open(broken, { dir }), /reuses id 1/);
});
