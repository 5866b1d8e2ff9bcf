import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { Store } from '../../src/engine/store.ts';
import { bankDefinition } from '../../src/engine/testing/bank.ts';

const CHILD = new URL('./writer-child.ts', import.meta.url).pathname;

interface Ack {
  id: string;
  lsn: number;
  amount: number;
  account: string;
}

/** Runs the writer child until it has acknowledged `acksBeforeKill` deposits, then kill -9s it. */
async function runAndKill(dir: string, round: number, acksBeforeKill: number): Promise<Ack[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(round)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acks: Ack[] = [];
  const exited = new Promise((resolve) => child.on('exit', resolve));
  await new Promise<void>((resolve) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [kind, id, lsn, amount, account] = line.split(' ');
      if (kind !== 'ack') return;
      acks.push({ id, lsn: Number(lsn), amount: Number(amount), account });
      if (acks.length === acksBeforeKill) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    void exited.then(() => resolve());
  });
  await exited;
  return acks;
}

test('kill -9 of a process writing at the disk ack point loses no acknowledged command', {
  timeout: 60_000,
}, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'engram-kill9-'));
  try {
    const all: Ack[] = [];
    for (let round = 0; round < 4; round++) {
      const acks = await runAndKill(dir, round, 500 + round * 700);
      assert.ok(acks.length >= 500, `round ${round}: ${acks.length} acks before the kill`);
      all.push(...acks);
      const store = await Store.open(bankDefinition, { dir });
      const maxAcked = Math.max(...acks.map((a) => a.lsn));
      assert.ok(
        store.lsnApplied >= maxAcked,
        `round ${round}: recovered up to ${store.lsnApplied}, acknowledged ${maxAcked}`,
      );
      for (const ack of all) {
        // A retry of an acknowledged deposit must return its recorded result: it is in the log.
        const again = await store.execute('deposit', {
          id: ack.id,
          account: ack.account,
          amount: ack.amount,
        });
        assert.equal(again.lsn, ack.lsn, `${ack.id} recorded at LSN ${ack.lsn}`);
      }
      // The state is exactly the sum of the recovered records: every deposit counted once.
      const total = store.readStale((s) => [...s.balances.values()].reduce((a, b) => a + b, 0));
      const recoveredDeposits = store.lsnApplied;
      assert.ok(total >= all.reduce((sum, a) => sum + a.amount, 0));
      assert.equal(store.idempotency.size, recoveredDeposits, 'one recorded deposit per LSN, none twice');
      await store.close();
    }
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
