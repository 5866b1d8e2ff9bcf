/**
 * PostgreSQL 15 as the peer: a private temporary cluster (fsync on, synchronous_commit on), a transaction
 * per reservation through a PL/pgSQL function with balance-gate's semantics (row lock on the merchant).
 */
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import type { Reservation } from '../lib/workload.ts';
import { freePort, onCleanup, run, start, waitFor } from './processes.ts';

const SCHEMA = `
CREATE TABLE merchants (id text PRIMARY KEY, available bigint NOT NULL, held bigint NOT NULL, next_sequence bigint NOT NULL);
CREATE TABLE reservations (id text PRIMARY KEY, merchant_id text NOT NULL, amount bigint NOT NULL, status text NOT NULL, sequence bigint);
CREATE FUNCTION reserve(p_id text, p_merchant text, p_amount bigint) RETURNS text AS $$
DECLARE r record; m record;
BEGIN
  SELECT merchant_id, amount, status, sequence INTO r FROM reservations WHERE id = p_id;
  IF FOUND THEN
    IF r.merchant_id <> p_merchant OR r.amount <> p_amount THEN RAISE EXCEPTION 'idempotency_conflict'; END IF;
    RETURN r.status;
  END IF;
  SELECT available, next_sequence INTO m FROM merchants WHERE id = p_merchant FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'not_found'; END IF;
  IF m.available < p_amount THEN
    INSERT INTO reservations VALUES (p_id, p_merchant, p_amount, 'rejected', NULL);
    RETURN 'rejected';
  END IF;
  UPDATE merchants SET available = available - p_amount, held = held + p_amount, next_sequence = next_sequence + 1 WHERE id = p_merchant;
  INSERT INTO reservations VALUES (p_id, p_merchant, p_amount, 'held', m.next_sequence);
  RETURN 'held';
END $$ LANGUAGE plpgsql;
`;

export interface PostgresPeer {
  submit(r: Reservation): Promise<unknown>;
  close(): Promise<void>;
}

function pgBin(name: string): string {
  const version = readdirSync('/usr/lib/postgresql').sort().at(-1);
  return `/usr/lib/postgresql/${version}/bin/${name}`;
}

export async function startPostgres(
  merchants: readonly string[],
  balanceCents: number,
  connections: number,
): Promise<PostgresPeer> {
  // initdb refuses to run as root: the cluster belongs to the postgres user, in a directory it owns.
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-pg-'));
  const uid = Number(run('id', ['-u', 'postgres']).trim());
  const gid = Number(run('id', ['-g', 'postgres']).trim());
  chownSync(dir, uid, gid);
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const data = path.join(dir, 'data');
  run(pgBin('initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'], {
    user: 'postgres',
  });
  const port = await freePort();
  const server = start('runuser', [
    '-u',
    'postgres',
    '--',
    pgBin('postgres'),
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=on',
    '-c',
    'synchronous_commit=on',
    '-c',
    'shared_buffers=256MB',
    '-c',
    'max_connections=200',
  ]);
  const pool = new pg.Pool({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'postgres',
    max: connections,
  });
  await waitFor(async () => (await pool.query('SELECT 1')).rowCount === 1, 'postgres');
  await pool.query(SCHEMA);
  for (let i = 0; i < merchants.length; i += 1000) {
    const ids = merchants.slice(i, i + 1000);
    await pool.query('INSERT INTO merchants SELECT unnest($1::text[]), $2, 0, 1', [ids, balanceCents]);
  }
  return {
    submit: async (r) => {
      const args = [r.reservationId, r.merchantId, r.amountCents];
      try {
        return await pool.query('SELECT reserve($1, $2, $3)', args);
      } catch (error) {
        // A retry racing its original insert: the loser's transaction aborts; asked again, it reads the
        // recorded decision (what a real client does on a unique violation).
        if ((error as { code?: string }).code !== '23505') throw error;
        return pool.query('SELECT reserve($1, $2, $3)', args);
      }
    },
    close: async () => {
      await pool.end().catch(() => undefined);
      server.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (server.exitCode === null) server.kill('SIGKILL');
    },
  };
}
