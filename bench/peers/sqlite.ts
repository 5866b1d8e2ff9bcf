/**
 * SQLite (better-sqlite3) doing the funds-reservation workload of bench/lib/workload.ts.
 *
 * Durability: journal_mode=WAL with synchronous=FULL, so every commit fsyncs the WAL before it returns (both
 * pragmas are read back and checked). Tables: merchants (available, held, next sequence) and reservations (id
 * primary key, merchant, amount, status, sequence), both WITHOUT ROWID (the text key is the b-tree key, one
 * b-tree write per row instead of a table and an index).
 *
 * Two modes:
 * - `tx`: one transaction per reservation.
 * - `batch`: reservations submitted during one event-loop turn (up to `batchSize`) share one transaction; each
 *   is acknowledged when that transaction commits. The commit runs at the next `setImmediate` (or after
 *   `maxDelayMs`), so while one batch commits, the next one fills: group commit done by the caller.
 *
 * better-sqlite3 is synchronous, and `submit` is honest about it: in `tx` mode the transaction, fsync
 * included, runs inside the `submit` call and blocks the event loop for that long; the returned promise is
 * already settled. In `batch` mode the commit blocks the event loop when the batch runs. Nothing is moved to
 * another thread, so the drivers' latencies (from the call, or from the intended start) contain the blocking.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import {
  type Decision,
  MERCHANT_BALANCE_CENTS,
  type Merchant,
  type Peer,
  type Reservation,
} from '../lib/workload.ts';

export interface SqlitePeerOptions {
  /** Credited when the database is new; an existing database keeps its state (a reopen). */
  merchants: readonly Merchant[];
  /** Default `tx`. */
  mode?: 'tx' | 'batch';
  /** Most reservations per transaction in `batch` mode (default 1,000). */
  batchSize?: number;
  /** `batch` mode: wait this long for a batch to fill (default 0: commit at the next setImmediate). */
  maxDelayMs?: number;
  /** Database file name inside `dir` (default `reservations.db`). */
  file?: string;
  /** SQLite page cache (default 128 MiB, so the tables stay in it as in the other systems' memory). */
  cacheMiB?: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS merchants (
    id TEXT PRIMARY KEY,
    available INTEGER NOT NULL,
    held INTEGER NOT NULL,
    next_sequence INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL,
    sequence INTEGER
  ) WITHOUT ROWID;
`;

export async function openSqlitePeer(dir: string, options: SqlitePeerOptions): Promise<Peer> {
  const mode = options.mode ?? 'tx';
  const batchSize = Math.max(1, options.batchSize ?? 1000);
  const maxDelayMs = options.maxDelayMs ?? 0;
  mkdirSync(dir, { recursive: true });
  const db = new Database(path.join(dir, options.file ?? 'reservations.db'));
  try {
    const journal = db.pragma('journal_mode = WAL', { simple: true });
    db.pragma('synchronous = FULL');
    const synchronous = db.pragma('synchronous', { simple: true });
    if (journal !== 'wal' || synchronous !== 2)
      throw new Error(
        `sqlite: expected journal_mode=wal, synchronous=2 (FULL), got ${journal}, ${synchronous}`,
      );
    db.pragma(`cache_size = ${-1024 * (options.cacheMiB ?? 128)}`);
    db.exec(SCHEMA);
    const present = db.prepare('SELECT count(*) FROM merchants').pluck().get() as number;
    if (present === 0) {
      const insert = db.prepare('INSERT INTO merchants VALUES (?, ?, 0, 1)');
      db.transaction(() => {
        for (const m of options.merchants) insert.run(m.merchantId, m.balanceCents);
      })();
    }
  } catch (error) {
    db.close();
    throw error;
  }

  const findReservation = db.prepare('SELECT status, sequence FROM reservations WHERE id = ?').raw();
  const hold = db
    .prepare(
      `UPDATE merchants SET available = available - ?, held = held + ?, next_sequence = next_sequence + 1
       WHERE id = ? AND available >= ? RETURNING next_sequence - 1`,
    )
    .pluck();
  const merchantExists = db.prepare('SELECT 1 FROM merchants WHERE id = ?').pluck();
  const record = db.prepare(
    'INSERT INTO reservations (id, merchant_id, amount, status, sequence) VALUES (?, ?, ?, ?, ?)',
  );

  const decide = (r: Reservation): Decision => {
    const known = findReservation.get(r.reservationId) as [string, number | null] | undefined;
    if (known) return known[1] === null ? { status: 'rejected' } : { status: 'held', sequence: known[1] };
    const sequence = hold.get(r.amountCents, r.amountCents, r.merchantId, r.amountCents) as
      | number
      | undefined;
    if (sequence === undefined) {
      if (merchantExists.get(r.merchantId) === undefined) throw new Error(`unknown merchant ${r.merchantId}`);
      record.run(r.reservationId, r.merchantId, r.amountCents, 'rejected', null);
      return { status: 'rejected' };
    }
    record.run(r.reservationId, r.merchantId, r.amountCents, 'held', sequence);
    return { status: 'held', sequence };
  };
  const one = db.transaction(decide);
  const many = db.transaction((requests: readonly Reservation[]) => requests.map(decide));
  let commits = 0;
  let committed = 0;
  let closed = false;
  const commitStats = () => ({ commits, reservations: committed });

  if (mode === 'tx') {
    return {
      name: 'sqlite (WAL+FULL, tx per reservation)',
      submit(request) {
        if (closed) return Promise.reject(new Error('sqlite peer is closed'));
        try {
          // Synchronous: the transaction and its fsync happen here, before the promise is even returned.
          const decision = one(request);
          commits++;
          committed++;
          return Promise.resolve(decision);
        } catch (error) {
          return Promise.reject(error);
        }
      },
      commits: commitStats,
      async close() {
        if (closed) return;
        closed = true;
        db.close();
      },
    };
  }

  interface Waiting {
    request: Reservation;
    resolve: (decision: Decision) => void;
    reject: (error: unknown) => void;
  }
  let queue: Waiting[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const batch = queue.length <= batchSize ? queue : queue.slice(0, batchSize);
    queue = queue.length <= batchSize ? [] : queue.slice(batchSize);
    if (batch.length > 0) {
      let decisions: Decision[];
      try {
        decisions = many(batch.map((w) => w.request));
      } catch (error) {
        for (const w of batch) w.reject(error);
        decisions = [];
      }
      if (decisions.length > 0) {
        commits++;
        committed += batch.length;
        for (let i = 0; i < batch.length; i++) batch[i].resolve(decisions[i]);
      }
    }
    if (queue.length > 0) schedule();
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    if (maxDelayMs > 0) setTimeout(flush, maxDelayMs);
    else setImmediate(flush);
  };
  return {
    name: `sqlite (WAL+FULL, batched <=${batchSize}/tx)`,
    submit(request) {
      if (closed) return Promise.reject(new Error('sqlite peer is closed'));
      return new Promise<Decision>((resolve, reject) => {
        queue.push({ request, resolve, reject });
        schedule();
      });
    },
    commits: commitStats,
    async close() {
      if (closed) return;
      closed = true;
      while (queue.length > 0) flush();
      db.close();
    },
  };
}

/** The first bench:engine interface: merchant ids all credited `MERCHANT_BALANCE_CENTS`. */
export async function openSqlite(
  dir: string,
  merchants: readonly string[],
  mode: 'tx' | 'batch',
  batchMax = 1000,
): Promise<Peer> {
  return openSqlitePeer(dir, {
    merchants: merchants.map((merchantId) => ({ merchantId, balanceCents: MERCHANT_BALANCE_CENTS })),
    mode,
    batchSize: batchMax,
    file: `sqlite-${mode}.db`,
  });
}
