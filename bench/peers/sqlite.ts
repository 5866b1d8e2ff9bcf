/**
 * SQLite (better-sqlite3) doing the reservation workload: WAL journal, synchronous=FULL (each commit is
 * fsync'd), a transaction per reservation, or one transaction per batch of reservations (each acknowledged
 * when its batch commits).
 */
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { MERCHANT_BALANCE_CENTS, type Outcome, type Reservation, type Target } from '../lib/workload.ts';

export async function openSqlite(
  dir: string,
  merchants: readonly string[],
  mode: 'tx' | 'batch',
  batchMax = 1000,
): Promise<Target> {
  const db = new Database(path.join(dir, `sqlite-${mode}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`
    CREATE TABLE merchants (id TEXT PRIMARY KEY, available INTEGER NOT NULL, held INTEGER NOT NULL, next_sequence INTEGER NOT NULL);
    CREATE TABLE reservations (id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, amount INTEGER NOT NULL, status TEXT NOT NULL, sequence INTEGER);
  `);
  const insertMerchant = db.prepare('INSERT INTO merchants VALUES (?, ?, 0, 1)');
  db.transaction(() => {
    for (const id of merchants) insertMerchant.run(id, MERCHANT_BALANCE_CENTS);
  })();
  const findReservation = db.prepare('SELECT status, sequence FROM reservations WHERE id = ?');
  const findMerchant = db.prepare('SELECT available, next_sequence FROM merchants WHERE id = ?');
  const hold = db.prepare(
    'UPDATE merchants SET available = available - ?, held = held + ?, next_sequence = next_sequence + 1 WHERE id = ?',
  );
  const record = db.prepare('INSERT INTO reservations VALUES (?, ?, ?, ?, ?)');

  const decide = (r: Reservation): Outcome => {
    const known = findReservation.get(r.reservationId) as
      | { status: string; sequence: number | null }
      | undefined;
    if (known) return { status: known.status, sequence: known.sequence ?? undefined };
    const m = findMerchant.get(r.merchantId) as { available: number; next_sequence: number };
    if (m.available < r.amountCents) {
      record.run(r.reservationId, r.merchantId, r.amountCents, 'rejected', null);
      return { status: 'rejected' };
    }
    hold.run(r.amountCents, r.amountCents, r.merchantId);
    record.run(r.reservationId, r.merchantId, r.amountCents, 'held', m.next_sequence);
    return { status: 'held', sequence: m.next_sequence };
  };
  const one = db.transaction(decide);
  const many = db.transaction((requests: Reservation[]) => requests.map(decide));

  if (mode === 'tx') {
    return {
      name: 'sqlite (tx per reservation)',
      // better-sqlite3 is synchronous: the commit (and its fsync) blocks the event loop, honestly so.
      submit: async (request) => one(request),
      close: async () => void db.close(),
    };
  }
  let queue: { request: Reservation; resolve: (o: Outcome) => void }[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const batch = queue.splice(0, batchMax);
    const outcomes = many(batch.map((q) => q.request));
    for (let i = 0; i < batch.length; i++) batch[i].resolve(outcomes[i]);
    if (queue.length > 0) schedule();
  };
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return {
    name: `sqlite (batched, up to ${batchMax} per tx)`,
    submit: (request) =>
      new Promise((resolve) => {
        queue.push({ request, resolve });
        schedule();
      }),
    close: async () => {
      while (queue.length > 0) flush();
      queue = [];
      db.close();
    },
  };
}
