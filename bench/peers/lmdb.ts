/**
 * lmdb-js doing the funds-reservation workload of bench/lib/workload.ts with durable commits: no `noSync`,
 * no `noMetaSync`, and each reservation acknowledged only once its commit is on disk.
 *
 * Each reservation is an async `transaction(() => ...)`: lmdb-js runs the callbacks queued meanwhile in one
 * write transaction (in call order, each seeing the writes of the ones before) and commits them together, so
 * many reservations in flight share one durable commit.
 *
 * Care is needed over what "committed" means. With lmdb-js's default `overlappingSync` (on, on Linux) a
 * transaction's promise resolves when the commit is *visible*, before it is flushed to disk; the flush follows
 * in the background. So:
 * - `sync: 'commit'` (default) opens the environment with `overlappingSync: false`: LMDB's commit itself
 *   fsyncs (data pages, then the meta page) before the promise resolves. Plain LMDB durability.
 * - `sync: 'overlapping'` keeps overlappingSync (the next transaction is written while the previous one is
 *   flushed) and acknowledges a reservation after its transaction committed AND `env.flushed` (the flush of
 *   the latest commit, which covers ours) resolved.
 * An environment keeps the flag it was created with; reopen it with the same `sync`.
 */
import * as path from 'node:path';
import { open } from 'lmdb';
import {
  type Decision,
  MERCHANT_BALANCE_CENTS,
  type Merchant,
  type Peer,
  type Reservation,
} from '../lib/workload.ts';

export interface LmdbPeerOptions {
  /** Credited when the environment is new; an existing one keeps its state (a reopen). */
  merchants: readonly Merchant[];
  /** How a reservation's durability is awaited (default 'commit'); see above. */
  sync?: 'commit' | 'overlapping';
  /** Environment directory inside `dir` (default `lmdb`). */
  name?: string;
}

interface MerchantRow {
  available: number;
  held: number;
  nextSequence: number;
}

interface ReservationRow {
  merchantId: string;
  amountCents: number;
  status: 'held' | 'rejected';
  sequence?: number;
}

export async function openLmdbPeer(dir: string, options: LmdbPeerOptions): Promise<Peer> {
  const sync = options.sync ?? 'commit';
  const root = open({
    path: path.join(dir, options.name ?? 'lmdb'),
    noSync: false,
    noMetaSync: false,
    overlappingSync: sync === 'overlapping',
    compression: false,
  });
  const merchantsDb = root.openDB<MerchantRow, string>({ name: 'merchants' });
  const reservationsDb = root.openDB<ReservationRow, string>({ name: 'reservations' });
  const metaDb = root.openDB<number, string>({ name: 'meta' });
  if (metaDb.get('merchants') === undefined) {
    await root.transaction(() => {
      for (const m of options.merchants)
        merchantsDb.put(m.merchantId, { available: m.balanceCents, held: 0, nextSequence: 1 });
      metaDb.put('merchants', options.merchants.length);
    });
    if (sync === 'overlapping') await root.flushed;
  }

  const decide = (r: Reservation): Decision => {
    const known = reservationsDb.get(r.reservationId);
    if (known)
      return known.status === 'held' ? { status: 'held', sequence: known.sequence } : { status: 'rejected' };
    const m = merchantsDb.get(r.merchantId);
    if (!m) throw new Error(`unknown merchant ${r.merchantId}`);
    if (m.available < r.amountCents) {
      reservationsDb.put(r.reservationId, {
        merchantId: r.merchantId,
        amountCents: r.amountCents,
        status: 'rejected',
      });
      return { status: 'rejected' };
    }
    const sequence = m.nextSequence;
    merchantsDb.put(r.merchantId, {
      available: m.available - r.amountCents,
      held: m.held + r.amountCents,
      nextSequence: sequence + 1,
    });
    reservationsDb.put(r.reservationId, {
      merchantId: r.merchantId,
      amountCents: r.amountCents,
      status: 'held',
      sequence,
    });
    return { status: 'held', sequence };
  };

  let closed = false;
  return {
    name: `lmdb-js (durable, ${sync === 'commit' ? 'sync in commit' : 'overlapping sync'})`,
    submit(request) {
      if (closed) return Promise.reject(new Error('lmdb peer is closed'));
      const committed = root.transaction(() => decide(request)) as Promise<Decision>;
      if (sync === 'commit') return committed;
      return committed.then(async (decision) => {
        await root.flushed;
        return decision;
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      await root.flushed;
      await root.close();
    },
  };
}

/** The first bench:engine interface: merchant ids all credited `MERCHANT_BALANCE_CENTS`. */
export async function openLmdb(dir: string, merchants: readonly string[]): Promise<Peer> {
  return openLmdbPeer(dir, {
    merchants: merchants.map((merchantId) => ({ merchantId, balanceCents: MERCHANT_BALANCE_CENTS })),
  });
}
