/**
 * PostgreSQL as a peer of balance-gate: a private temporary cluster (Debian's PostgreSQL, initdb + pg_ctl as
 * the `postgres` user, since initdb refuses root) in a temp dir that user owns, on a free port, its unix
 * socket in that dir, `fsync=on` and `synchronous_commit=on` (a commit returns after its WAL is flushed).
 * One transaction per reservation: the PL/pgSQL function `reserve` with balance-gate's semantics. It locks
 * the merchant row first (SELECT ... FOR UPDATE): retries of one id name the same merchant, so they queue on
 * that lock and the later one sees the earlier one's committed decision (READ COMMITTED takes a snapshot per
 * statement); a same-id request for another merchant is a conflict anyway (unique violation or the check).
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { freePort, onCleanup, run, tempDir } from './processes.ts';

const SCHEMA = `
CREATE TABLE merchants (
  merchant_id text PRIMARY KEY,
  available bigint NOT NULL CHECK (available >= 0),
  held bigint NOT NULL,
  captured bigint NOT NULL,
  credited bigint NOT NULL,
  next_sequence bigint NOT NULL
);
CREATE TABLE reservations (
  reservation_id text PRIMARY KEY,
  merchant_id text NOT NULL,
  amount bigint NOT NULL,
  ttl_ms bigint,
  status text NOT NULL,
  sequence bigint,
  expires_at timestamptz,
  available_after bigint NOT NULL,
  held_after bigint NOT NULL,
  captured_after bigint NOT NULL,
  credited_after bigint NOT NULL
);
CREATE FUNCTION reserve(p_id text, p_merchant text, p_amount bigint, p_ttl_ms bigint DEFAULT NULL,
  OUT status text, OUT reason text, OUT sequence bigint,
  OUT available bigint, OUT held bigint, OUT captured bigint, OUT credited bigint)
AS $$
#variable_conflict use_column
DECLARE
  m merchants%ROWTYPE;
  r reservations%ROWTYPE;
BEGIN
  SELECT * INTO m FROM merchants WHERE merchant_id = p_merchant FOR UPDATE;
  SELECT * INTO r FROM reservations WHERE reservation_id = p_id;
  IF FOUND THEN
    IF r.merchant_id <> p_merchant OR r.amount <> p_amount OR r.ttl_ms IS DISTINCT FROM p_ttl_ms THEN
      RAISE EXCEPTION 'reservation % was decided for a different request', p_id
        USING ERRCODE = 'P0409', HINT = 'idempotency_conflict';
    END IF;
    status := r.status;
    reason := CASE WHEN r.status = 'rejected' THEN 'insufficient_funds' END;
    sequence := r.sequence;
    available := r.available_after; held := r.held_after;
    captured := r.captured_after; credited := r.credited_after;
    RETURN;
  END IF;
  IF m.merchant_id IS NULL THEN
    RAISE EXCEPTION 'merchant % does not exist', p_merchant USING ERRCODE = 'P0404', HINT = 'not_found';
  END IF;
  IF m.available >= p_amount THEN
    UPDATE merchants SET available = available - p_amount, held = held + p_amount,
      next_sequence = next_sequence + 1
      WHERE merchant_id = p_merchant
      RETURNING merchants.available, merchants.held INTO m.available, m.held;
    status := 'held';
    sequence := m.next_sequence;
  ELSE
    status := 'rejected';
    reason := 'insufficient_funds';
  END IF;
  INSERT INTO reservations VALUES (p_id, p_merchant, p_amount, p_ttl_ms, status, sequence,
    CASE WHEN status = 'held' AND p_ttl_ms IS NOT NULL THEN now() + p_ttl_ms * interval '1 millisecond' END,
    m.available, m.held, m.captured, m.credited);
  available := m.available; held := m.held; captured := m.captured; credited := m.credited;
END
$$ LANGUAGE plpgsql;
`;

/** The statement every generator runs (prepared): one reservation, one transaction (autocommit). */
export const RESERVE_SQL = 'SELECT * FROM reserve($1, $2, $3::bigint)';

export interface PostgresPeer {
  port: number;
  /** The postmaster (backends are its children). */
  pid: number;
  /** Directory holding the unix socket. */
  socketDir: string;
  user: string;
  database: string;
  version: string;
  binDir: string;
  /** Rows in `reservations`: proof that a tool's requests did real work. */
  reservationsRecorded(): Promise<number>;
  stop(): Promise<void>;
}

/** Debian's newest installed PostgreSQL (15 on Debian 12). */
export function postgresBinDir(): string {
  const versions = readdirSync('/usr/lib/postgresql')
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(a) - Number(b));
  if (versions.length === 0)
    throw new Error('no PostgreSQL under /usr/lib/postgresql (run scripts/bench-deps.sh)');
  return `/usr/lib/postgresql/${versions.at(-1)}/bin`;
}

export async function startPostgresPeer(options: {
  merchants: readonly string[];
  balanceCents: number;
}): Promise<PostgresPeer> {
  const binDir = postgresBinDir();
  const dir = tempDir('postgres', 'postgres');
  const data = path.join(dir, 'data');
  const port = await freePort();
  const asPostgres = { user: 'postgres', timeoutMs: 120_000 };
  // --no-sync: only the freshly created catalog skips fsync; the server below runs with fsync=on.
  run(
    `${binDir}/initdb`,
    ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'],
    asPostgres,
  );
  const settings = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    '-c fsync=on',
    '-c synchronous_commit=on',
    '-c full_page_writes=on',
    '-c max_connections=300',
    '-c shared_buffers=256MB',
    '-c max_wal_size=4GB',
    '-c log_min_messages=warning',
  ].join(' ');
  const stopNow = () =>
    run(`${binDir}/pg_ctl`, ['-D', data, '-m', 'immediate', '-w', 'stop'], {
      user: 'postgres',
      timeoutMs: 30_000,
    });
  const unregister = onCleanup(`postgres in ${data}`, stopNow);
  run(
    `${binDir}/pg_ctl`,
    ['-D', data, '-l', path.join(dir, 'server.log'), '-o', settings, '-w', '-t', '60', 'start'],
    asPostgres,
  );
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  try {
    await client.connect();
    const shown = await client.query(
      "SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc, current_setting('server_version') AS version",
    );
    const { fsync, sc, version } = shown.rows[0];
    if (fsync !== 'on' || sc !== 'on')
      throw new Error(`postgres runs with fsync=${fsync} synchronous_commit=${sc}`);
    await client.query(SCHEMA);
    await client.query('INSERT INTO merchants SELECT id, $2, 0, 0, $2, 1 FROM unnest($1::text[]) AS id', [
      options.merchants,
      options.balanceCents,
    ]);
    await client.query('ANALYZE');
    await checkSemantics(client);
    return {
      port,
      pid: Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]),
      socketDir: dir,
      user: 'postgres',
      database: 'postgres',
      version,
      binDir,
      reservationsRecorded: async () =>
        Number((await client.query('SELECT count(*) AS n FROM reservations')).rows[0].n),
      stop: async () => {
        await client.end().catch(() => undefined);
        run(`${binDir}/pg_ctl`, ['-D', data, '-m', 'fast', '-w', 'stop'], asPostgres);
        unregister();
      },
    };
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

/** A few calls through `reserve` that must answer exactly as balance-gate's contract says. */
async function checkSemantics(client: pg.Client): Promise<void> {
  await client.query("INSERT INTO merchants VALUES ('check', 1000, 0, 0, 1000, 1)");
  const reserve = (id: string, merchant: string, amount: number) =>
    client.query(RESERVE_SQL, [id, merchant, amount]).then(
      (result) => JSON.stringify(Object.values(result.rows[0])),
      (error: { hint?: string; message: string }) => error.hint ?? error.message,
    );
  const expect = async (what: string, actual: Promise<string>, expected: string) => {
    const got = await actual;
    if (got !== expected) throw new Error(`postgres peer: ${what}: expected ${expected}, got ${got}`);
  };
  await expect('hold', reserve('c1', 'check', 300), '["held",null,"1","700","300","0","1000"]');
  await expect('retry', reserve('c1', 'check', 300), '["held",null,"1","700","300","0","1000"]');
  await expect('conflict', reserve('c1', 'check', 301), 'idempotency_conflict');
  await expect(
    'insufficient',
    reserve('c2', 'check', 701),
    '["rejected","insufficient_funds",null,"700","300","0","1000"]',
  );
  await expect('unknown merchant', reserve('c3', 'nobody', 1), 'not_found');
  await expect('next sequence', reserve('c4', 'check', 700), '["held",null,"2","0","1000","0","1000"]');
}
