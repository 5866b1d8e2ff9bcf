import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { startGate } from '../../test/support/gate-process.ts';

/** A write that got a 200: what was sent and the exact bytes that came back. */
interface Acked {
  url: string;
  payload: unknown;
  body: string;
}

const MERCHANTS = 8;
const WORKERS = 32;
const ROUNDS = 4;
const VERIFY_CONCURRENCY = 16;

async function post(base: string, url: string, payload: unknown): Promise<{ status: number; body: string }> {
  const response = await fetch(base + url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
  return { status: response.status, body: await response.text() };
}

async function getJson<T>(base: string, url: string): Promise<T> {
  return (await (await fetch(base + url)).json()) as T;
}

/** Runs `fn` over `items` with a bounded number in flight. */
async function forEach<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: VERIFY_CONCURRENCY }, worker));
}

/**
 * The request for the i-th operation of a round: a credit every 10th, a capture and a release of earlier
 * reservations (which may not exist yet, or be resolved already: 404 and 409 are part of the mix),
 * reservations otherwise, some of them too big for the balance (rejected).
 */
function operation(round: number, i: number): { url: string; payload: unknown } {
  const merchant = `m${i % MERCHANTS}`;
  switch (i % 10) {
    case 0:
      return {
        url: `/v1/merchants/${merchant}/credits`,
        payload: { transfer_id: `r${round}-t${i}`, amount_cents: 5_000 },
      };
    case 8:
      return { url: `/v1/reservations/r${round}-h${i - 2}/release`, payload: {} };
    case 9:
      return { url: `/v1/reservations/r${round}-h${i - 2}/capture`, payload: {} };
    default:
      return {
        url: '/v1/reservations',
        payload: { reservation_id: `r${round}-h${i}`, merchant_id: merchant, amount_cents: 100 + (i % 700) },
      };
  }
}

/** Concurrent writes until `stop` or the process dies; records every write that got a 200. */
async function load(base: string, round: number, stop: { now: boolean }, acked: Acked[]): Promise<void> {
  let n = 0;
  const worker = async () => {
    while (!stop.now) {
      const request = operation(round, n++);
      try {
        const response = await post(base, request.url, request.payload);
        if (response.status === 200) acked.push({ ...request, body: response.body });
      } catch {
        return; // the process died under us: this request's outcome is unknown, so it is not recorded
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
}

/** Every acknowledged write is present, with its recorded answer, and every merchant balances. */
async function verify(base: string, acked: Acked[]): Promise<void> {
  await forEach(acked, async (write) => {
    const retry = await post(base, write.url, write.payload);
    assert.equal(retry.status, 200, `${write.url} ${JSON.stringify(write.payload)}: ${retry.body}`);
    assert.equal(retry.body, write.body, `retry of ${write.url} is byte-identical`);
  });
  const resolvedTo = new Map<string, string>();
  for (const write of acked) {
    const action = write.url.match(/^\/v1\/reservations\/([^/]+)\/(capture|release)$/);
    if (action) resolvedTo.set(action[1], action[2] === 'capture' ? 'captured' : 'released');
  }
  const reservations = acked.filter((w) => w.url === '/v1/reservations');
  await forEach(reservations, async (write) => {
    const id = (write.payload as { reservation_id: string }).reservation_id;
    const { status } = await getJson<{ status: string }>(base, `/v1/reservations/${id}`);
    const decided = JSON.parse(write.body).status as string;
    const expected = resolvedTo.get(id);
    if (decided === 'rejected') assert.equal(status, 'rejected', id);
    else if (expected) assert.equal(status, expected, `${id} was acknowledged as ${expected}`);
    // A hold may have moved on through a write whose 200 was lost in the crash.
    else assert.ok(['held', 'captured', 'released'].includes(status), `${id}: held → ${status}`);
  });
  const creditedAcked = new Map<string, number>();
  for (const write of acked) {
    const credit = write.url.match(/^\/v1\/merchants\/([^/]+)\/credits$/);
    if (credit) {
      const amount = (write.payload as { amount_cents: number }).amount_cents;
      creditedAcked.set(credit[1], (creditedAcked.get(credit[1]) ?? 0) + amount);
    }
  }
  for (let m = 0; m < MERCHANTS; m++) {
    const merchant = await getJson<Record<string, number>>(base, `/v1/merchants/m${m}`);
    assert.ok(merchant.available_cents >= 0, `m${m} available ${merchant.available_cents}`);
    assert.equal(
      merchant.credited_cents,
      merchant.available_cents + merchant.held_cents + merchant.captured_cents,
      `m${m}: credited = available + held + captured`,
    );
    assert.ok(merchant.credited_cents >= (creditedAcked.get(`m${m}`) ?? 0), `m${m} lost a credit`);
  }
}

test('kill -9 under concurrent load loses no acknowledged write and keeps every merchant balanced', {
  timeout: 120_000,
}, async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'gate-crash-'));
  const acked: Acked[] = [];
  const children: import('node:child_process').ChildProcess[] = [];
  try {
    const seeding = await startGate(dataDir, { DURABILITY: 'disk' });
    children.push(seeding.child);
    for (let m = 0; m < MERCHANTS; m++) {
      const seed = { transfer_id: `seed-${m}`, amount_cents: 50_000 };
      const response = await post(seeding.url, `/v1/merchants/m${m}/credits`, seed);
      assert.equal(response.status, 200);
      acked.push({ url: `/v1/merchants/m${m}/credits`, payload: seed, body: response.body });
    }
    seeding.child.kill('SIGTERM');
    assert.equal(await seeding.exited, 0, 'graceful shutdown exits 0');
    let ackedBefore = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const gate = await startGate(dataDir, { DURABILITY: 'disk' });
      children.push(gate.child);
      // The previous round's writes right after its crash; everything again at the end.
      if (round > 0) await verify(gate.url, acked.slice(ackedBefore));
      ackedBefore = acked.length;
      const stop = { now: false };
      const running = load(gate.url, round, stop, acked);
      await new Promise((resolve) => setTimeout(resolve, 400 + round * 250));
      gate.child.kill('SIGKILL');
      await gate.exited;
      stop.now = true;
      await running;
      assert.ok(acked.length - ackedBefore > 50, `round ${round}: only ${acked.length - ackedBefore} writes`);
    }
    const gate = await startGate(dataDir, { DURABILITY: 'disk' });
    children.push(gate.child);
    await verify(gate.url, acked);
    assert.ok(
      acked.some((w) => w.url.endsWith('/capture')) && acked.some((w) => w.url.endsWith('/release')),
      'the load resolved holds both ways',
    );
    t.diagnostic(`${acked.length} acknowledged writes over ${ROUNDS} kills, all present after restart`);
    gate.child.kill('SIGTERM');
    assert.equal(await gate.exited, 0);
  } finally {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
});
