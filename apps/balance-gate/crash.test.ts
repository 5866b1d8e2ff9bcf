import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { startGate } from '../../test/support/gate-process.ts';

interface Acked {
  url: string;
  payload: unknown;
  body: string;
}

const MERCHANTS = 8;
const WORKERS = 32;

async function post(base: string, url: string, payload: unknown): Promise<{ status: number; body: string }> {
  const response = await fetch(base + url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
  return { status: response.status, body: await response.text() };
}

/** Concurrent credits, reservations and captures until `stop`; records every write that got a 200. */
async function load(base: string, round: number, stop: { now: boolean }, acked: Acked[]): Promise<void> {
  let n = 0;
  const worker = async (w: number) => {
    while (!stop.now) {
      const i = n++;
      const merchant = `m${i % MERCHANTS}`;
      let request: { url: string; payload: unknown };
      if (i % 10 === 0)
        request = {
          url: `/v1/merchants/${merchant}/credits`,
          payload: { transfer_id: `r${round}-t${i}`, amount_cents: 5_000 },
        };
      else if (i % 10 === 9) request = { url: `/v1/reservations/r${round}-h${i - 1}/capture`, payload: {} };
      else
        request = {
          url: '/v1/reservations',
          payload: {
            reservation_id: `r${round}-h${i}`,
            merchant_id: merchant,
            amount_cents: 100 + (i % 700),
          },
        };
      try {
        const response = await post(base, request.url, request.payload);
        if (response.status === 200) acked.push({ ...request, body: response.body });
      } catch {
        return; // the process died under us
      }
    }
    void w;
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
}

test('kill -9 under concurrent load loses no acknowledged write and keeps every merchant balanced', {
  timeout: 120_000,
}, async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'gate-crash-'));
  const acked: Acked[] = [];
  const children: import('node:child_process').ChildProcess[] = [];
  try {
    const seeding = await startGate(dataDir);
    children.push(seeding.child);
    for (let m = 0; m < MERCHANTS; m++) {
      assert.equal(
        (
          await post(seeding.url, `/v1/merchants/m${m}/credits`, {
            transfer_id: `seed-${m}`,
            amount_cents: 50_000,
          })
        ).status,
        200,
      );
    }
    seeding.child.kill('SIGTERM');
    assert.equal(await seeding.exited, 0, 'graceful shutdown exits 0');
    for (let round = 0; round < 3; round++) {
      const gate = await startGate(dataDir);
      children.push(gate.child);
      const stop = { now: false };
      const running = load(gate.url, round, stop, acked);
      await new Promise((resolve) => setTimeout(resolve, 600 + round * 300));
      gate.child.kill('SIGKILL');
      await gate.exited;
      stop.now = true;
      await running;
    }
    const gate = await startGate(dataDir);
    children.push(gate.child);
    assert.ok(acked.length > 100, `only ${acked.length} writes were acknowledged`);
    for (const write of acked) {
      const retry = await post(gate.url, write.url, write.payload);
      assert.equal(
        retry.status,
        200,
        `${write.url} ${JSON.stringify(write.payload)} after restart: ${retry.body}`,
      );
      assert.equal(retry.body, write.body, `retry of ${write.url} is byte-identical`);
    }
    for (const write of acked.filter((w) => w.url === '/v1/reservations')) {
      const id = (write.payload as { reservation_id: string }).reservation_id;
      const status = ((await (await fetch(`${gate.url}/v1/reservations/${id}`)).json()) as { status: string })
        .status;
      const decided = JSON.parse(write.body).status;
      assert.ok(
        decided === 'rejected' ? status === 'rejected' : ['held', 'captured'].includes(status),
        `${id}: ${decided} → ${status}`,
      );
    }
    for (let m = 0; m < MERCHANTS; m++) {
      const merchant = (await (await fetch(`${gate.url}/v1/merchants/m${m}`)).json()) as Record<
        string,
        number
      >;
      assert.ok(merchant.available_cents >= 0);
      assert.equal(
        merchant.credited_cents,
        merchant.available_cents + merchant.held_cents + merchant.captured_cents,
      );
    }
    gate.child.kill('SIGTERM');
    assert.equal(await gate.exited, 0);
  } finally {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
});
