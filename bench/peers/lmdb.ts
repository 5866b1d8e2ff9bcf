/**
 * lmdb-js doing the reservation workload with durable commits (sync on commit, the default): each
 * reservation is an async transaction; lmdb-js batches concurrent ones into one durable commit.
 */
import * as path from 'node:path';
import { open } from 'lmdb';
import { MERCHANT_BALANCE_CENTS, type Outcome, type Target } from '../lib/workload.ts';

interface MerchantRow {
  available: number;
  held: number;
  nextSequence: number;
}

export async function openLmdb(dir: string, merchants: readonly string[]): Promise<Target> {
  const root = open({ path: path.join(dir, 'lmdb'), noSync: false, noMetaSync: false });
  const merchantsDb = root.openDB<MerchantRow, string>({ name: 'merchants' });
  const reservationsDb = root.openDB<Outcome, string>({ name: 'reservations' });
  await root.transaction(() => {
    for (const id of merchants)
      merchantsDb.put(id, { available: MERCHANT_BALANCE_CENTS, held: 0, nextSequence: 1 });
  });
  return {
    name: 'lmdb-js (durable async transactions)',
    submit: (r) =>
      root.transaction(() => {
        const known = reservationsDb.get(r.reservationId);
        if (known) return known;
        const m = merchantsDb.get(r.merchantId)!;
        let outcome: Outcome;
        if (m.available < r.amountCents) outcome = { status: 'rejected' };
        else {
          outcome = { status: 'held', sequence: m.nextSequence };
          merchantsDb.put(r.merchantId, {
            available: m.available - r.amountCents,
            held: m.held + r.amountCents,
            nextSequence: m.nextSequence + 1,
          });
        }
        reservationsDb.put(r.reservationId, outcome);
        return outcome;
      }),
    close: () => root.close(),
  };
}
