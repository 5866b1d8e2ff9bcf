/**
 * The embedded peers keep the workload's semantics and their acknowledgements:
 * - each peer, driven with many reservations in flight, returns exactly the reference model's decisions
 *   (holds, sequences, rejections, retries answered from the record, also within one batch);
 * - closed and reopened, it answers every retry with the recorded decision and goes on from the same balances
 *   and sequence numbers (the preload does not run again);
 * - killed with SIGKILL mid-load (a child process), it comes back with every acknowledged reservation, and the
 *   state is the reference model's state after an in-order prefix of the requests.
 * A kill -9 leaves the page cache alone, so it checks acknowledgement after commit, not fsync; that each
 * commit syncs is checked by the peers' pragmas/options (and was checked with strace, see run-peers.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type Decision,
  generateMerchants,
  type Peer,
  ReferenceLedger,
  type Reservation,
  Workload,
} from '../lib/workload.ts';
import { crashTestMerchants, crashTestRequests } from './crash-fixture.ts';
import { openPeer, PEER_KINDS, type PeerKind } from './registry.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');

/** Submits `requests` in order with `inFlight` outstanding; decisions by index. */
async function drive(peer: Peer, requests: readonly Reservation[], inFlight: number): Promise<Decision[]> {
  const decisions: Decision[] = new Array(requests.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < requests.length) {
        const index = next++;
        decisions[index] = await peer.submit(requests[index]);
      }
    }),
  );
  return decisions;
}

async function tempDir(name: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `engram-peers-${name}-`));
}

for (const kind of PEER_KINDS) {
  test(`${kind}: same decisions as the reference model; a reopen keeps them and goes on from the same state`, async () => {
    const merchants = generateMerchants(200, { seed: 5, rejectFraction: 0.2 });
    // Retries close behind their original, so some land in the same batch / transaction.
    const workload = new Workload(merchants, 11, 'p', { retryMinDistance: 4, retryWindow: 512 });
    const reference = new ReferenceLedger(merchants);
    const first = workload.batch(2000);
    const expected = first.map((r) => reference.reserve(r));
    assert.ok(workload.retries > 50, 'the workload has retries');
    assert.ok(expected.filter((d) => d.status === 'rejected').length > 100, 'the workload has rejections');

    const dir = await tempDir(kind);
    try {
      let peer = await openPeer(kind, dir, merchants);
      assert.deepEqual(await drive(peer, first, 64), expected);
      await peer.close();

      peer = await openPeer(kind, dir, merchants);
      assert.deepEqual(await drive(peer, first, 64), expected, 'retries after the reopen');
      const more = workload.batch(500);
      assert.deepEqual(
        await drive(peer, more, 16),
        more.map((r) => reference.reserve(r)),
        'new reservations after the reopen',
      );
      await peer.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

/** Runs the crash child for `kind`, SIGKILLs it after `killAfter` acks; its acknowledged decisions by index. */
async function runAndKill(kind: PeerKind, dir: string, killAfter: number): Promise<Map<number, Decision>> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(here, 'crash-child.ts'), kind, dir, '32'],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const acked = new Map<number, Decision>();
  let pending = '';
  let stderr = '';
  let finished = false;
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    const lines = (pending + text).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line === 'ready') continue;
      if (line === 'done') {
        finished = true;
        continue;
      }
      const [index, status, sequence] = line.split(' ');
      acked.set(
        Number(index),
        status === 'held' ? { status: 'held', sequence: Number(sequence) } : { status: 'rejected' },
      );
    }
    if (acked.size >= killAfter && child.exitCode === null && !child.killed) child.kill('SIGKILL');
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (c, s) => resolve([c, s])),
  );
  assert.equal(signal, 'SIGKILL', `child ended by ${signal ?? `exit ${code}`} before the kill: ${stderr}`);
  assert.ok(!finished, 'the child was killed mid-load');
  return acked;
}

test('kill -9 mid-load: every acknowledged reservation survives, on every peer', async (t) => {
  const requests = crashTestRequests();
  const merchants = crashTestMerchants();
  await Promise.all(
    PEER_KINDS.map((kind) =>
      t.test(kind, async () => {
        const dir = await tempDir(`crash-${kind}`);
        try {
          const acked = await runAndKill(kind, dir, 1500);
          assert.ok(acked.size >= 1500);
          const last = Math.max(...acked.keys());
          const reference = new ReferenceLedger(merchants);
          const prefix = requests.slice(0, last + 1);
          const expected = prefix.map((r) => reference.reserve(r));
          for (const [index, decision] of acked)
            assert.deepEqual(decision, expected[index], `acknowledged decision of request ${index}`);

          const peer = await openPeer(kind, dir, merchants);
          try {
            // In order from the start: acknowledged ones must come back as recorded, and the whole prefix must
            // match the reference (commits happen in request order, so the state is a prefix of it).
            assert.deepEqual(await drive(peer, prefix, 32), expected);
          } finally {
            await peer.close();
          }
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
    ),
  );
});
