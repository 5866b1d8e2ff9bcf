/**
 * Real processes, real disk: a child writes at the `disk` ack point (writer-child.ts) and prints each command
 * the moment it is acknowledged; the parent kills it with SIGKILL at a random moment, several rounds in one
 * data directory, and after each kill recovers the store itself and checks:
 * - every command any child acknowledged is recorded at the LSN it was acknowledged with (and a retry
 *   returns that record);
 * - the recovered records are exactly LSNs 1..k, and the state and every recorded result equal the
 *   reference model (test/sim/bank-model.ts) applied to those k commands in LSN order. Each command is a
 *   pure function of its key (workload.ts), so the recovered idempotency window names the command behind
 *   every LSN even when the child died before printing it.
 *
 * A kill -9 loses the process, not the page cache, so this proves the ack waits for the write and that
 * recovery of a log cut at any instant is exact; power loss is the crash simulation's job.
 * KILL9_SEED=<n> replays the same kill schedule (the kill instants still vary with the machine).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { hashState } from '../../src/engine/state-hash.ts';
import { Store } from '../../src/engine/store.ts';
import { bankDefinition } from '../../src/engine/testing/bank.ts';
import { Prng } from '../../src/util/prng.ts';
import { type BankCommand, BankModel, commandInput } from '../sim/bank-model.ts';
import { commandFor } from './workload.ts';

const CHILD = new URL('./writer-child.ts', import.meta.url).pathname;
const ROUNDS = 5;
/** Acknowledgements before the kill, per round: uniform in [MIN, MIN + SPREAD). */
const ACKS_BEFORE_KILL_MIN = 200;
const ACKS_BEFORE_KILL_SPREAD = 1800;

interface Ack {
  key: string;
  lsn: number;
  round: number;
}

/**
 * Runs one child and kills it with SIGKILL: once it printed `acksBeforeKill` acknowledgements, or, when
 * that is 0, `delayMs` after it reported ready (mid-start-up writes). Returns every acknowledgement it
 * printed before dying, including those still in the pipe at the kill.
 */
async function runAndKill(
  dir: string,
  round: number,
  kill: { acksBeforeKill: number; delayMs: number },
): Promise<Ack[]> {
  const args = [CHILD, dir, `r${round}`, ...(round > 0 ? [`r${round - 1}`] : [])];
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acks: Ack[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const drained = new Promise<void>((resolve) => {
    createInterface({ input: child.stdout })
      .on('line', (line) => {
        const [kind, key, lsn] = line.split(' ');
        if (kind === 'ready' && kill.acksBeforeKill === 0)
          setTimeout(() => child.kill('SIGKILL'), kill.delayMs);
        if (kind !== 'ack') return;
        acks.push({ key, lsn: Number(lsn), round });
        if (acks.length === kill.acksBeforeKill) child.kill('SIGKILL');
      })
      .on('close', resolve);
  });
  const code = await exited;
  await drained;
  assert.equal(child.signalCode, 'SIGKILL', `round ${round}: the child exited on its own (code ${code})`);
  return acks;
}

/** Recovers the store and checks it against every acknowledgement so far and the model; returns k. */
async function recoverAndCheck(dir: string, acks: readonly Ack[], label: string): Promise<number> {
  const store = await Store.open(bankDefinition, { dir });
  try {
    const k = store.lsnApplied;
    const window = store.idempotency;
    for (const ack of acks) {
      const entry = window.get(ack.key);
      assert.ok(entry, `${label}: ${ack.key}, acknowledged at LSN ${ack.lsn} in round ${ack.round}, is gone`);
      assert.equal(
        entry.lsn,
        ack.lsn,
        `${label}: ${ack.key} acknowledged at LSN ${ack.lsn}, recorded at ${entry.lsn}`,
      );
    }
    // Every record has a key: the window holds exactly LSNs 1..k, one command each.
    const byLsn: BankCommand[] = new Array(k);
    for (const [key, entry] of window.entries) {
      assert.ok(entry.lsn >= 1 && entry.lsn <= k, `${label}: ${key} at LSN ${entry.lsn}, outside 1..${k}`);
      assert.equal(byLsn[entry.lsn - 1], undefined, `${label}: two keys at LSN ${entry.lsn}`);
      byLsn[entry.lsn - 1] = commandFor(key);
    }
    assert.equal(window.size, k, `${label}: ${window.size} keyed records for ${k} LSNs`);
    const model = BankModel.replay(byLsn);
    assert.equal(
      store.readStale((s) => hashState(s)),
      hashState(model.state),
      `${label}: recovered state differs from the model after ${k} commands`,
    );
    for (const [key, recorded] of model.byKey) {
      const entry = window.get(key)!;
      assert.ok(
        isDeepStrictEqual(entry.result, recorded.result),
        `${label}: ${key} recorded ${JSON.stringify(entry.result)}, the model says ${JSON.stringify(recorded.result)}`,
      );
    }
    // A retry answers from the record and appends nothing.
    for (const ack of acks.slice(-50)) {
      const c = commandFor(ack.key);
      const again = await (c.kind === 'deposit'
        ? store.execute('deposit', commandInput(c) as never)
        : store.execute('transfer', commandInput(c) as never));
      assert.equal((again as { lsn: number }).lsn, ack.lsn, `${label}: retry of ${ack.key}`);
    }
    assert.equal(store.lsnApplied, k, `${label}: retries appended records`);
    return k;
  } finally {
    await store.close();
  }
}

test('kill -9 of a process writing at the disk ack point loses no acknowledged command; recovery is exact', {
  timeout: 60_000,
}, async (t) => {
  const seed = Number(process.env.KILL9_SEED ?? Math.floor(Math.random() * 1_000_000));
  const prng = new Prng(seed);
  const dir = await mkdtemp(path.join(tmpdir(), 'engram-kill9-'));
  try {
    const all: Ack[] = [];
    let lastK = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // One round dies early (as it starts writing); the others under full load.
      const early = round === 2;
      const kill = early
        ? { acksBeforeKill: 0, delayMs: prng.int(30) }
        : { acksBeforeKill: ACKS_BEFORE_KILL_MIN + prng.int(ACKS_BEFORE_KILL_SPREAD), delayMs: 0 };
      const acks = await runAndKill(dir, round, kill);
      const label = `KILL9_SEED=${seed} round ${round}`;
      if (!early)
        assert.ok(acks.length >= kill.acksBeforeKill, `${label}: ${acks.length} acks before the kill`);
      all.push(...acks);
      const k = await recoverAndCheck(dir, all, label);
      assert.ok(k >= lastK, `${label}: recovered ${k} records, fewer than the ${lastK} recovered before`);
      t.diagnostic(`${label}: ${acks.length} acknowledged before the kill, ${k} records recovered`);
      lastK = k;
    }
    assert.ok(all.length >= 800, `acknowledgements checked: ${all.length}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a data directory in use by a live process is refused; the lock of a killed process is taken over', {
  timeout: 30_000,
}, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'engram-lock-'));
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, 'lock'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve) =>
      createInterface({ input: child.stdout }).on('line', (line) => line.startsWith('ack') && resolve()),
    );
    await assert.rejects(Store.open(bankDefinition, { dir }), (e: { code?: string; message: string }) => {
      assert.equal(e.code, 'store_locked');
      assert.match(e.message, new RegExp(`process ${child.pid}`));
      return true;
    });
    child.kill('SIGKILL');
    await exited;
    const store = await Store.open(bankDefinition, { dir });
    assert.ok(store.lsnApplied > 0);
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
