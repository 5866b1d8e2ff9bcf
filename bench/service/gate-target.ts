/**
 * balance-gate as a benchmark target: the service's own start command
 * (`PORT=<p> DATA_DIR=<dir> DURABILITY=disk` plus node-flags.ts's environment and flags) on a free port with
 * a fresh data dir, ready when GET /readyz answers 200; merchants seeded through the credits endpoint.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Pool } from 'undici';
import { GATE_NODE_FLAGS } from '../../apps/balance-gate/node-flags.ts';
import { freePort, type Spawned, spawnServer, tempDir, waitFor } from './processes.ts';

export const GATE_MAIN = new URL('../../apps/balance-gate/main.ts', import.meta.url).pathname;

export interface GateTarget {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Why balance-gate cannot be benchmarked in this tree, or undefined if it can. */
export function gateUnavailable(): string | undefined {
  return existsSync(GATE_MAIN) ? undefined : `${path.relative(process.cwd(), GATE_MAIN)} does not exist yet`;
}

export async function startGate(options: {
  merchants: readonly string[];
  balanceCents: number;
}): Promise<GateTarget> {
  const dataDir = path.join(tempDir('gate'), 'data');
  const port = await freePort();
  const server: Spawned = spawnServer(
    'balance-gate',
    process.execPath,
    [...GATE_NODE_FLAGS, '--import', 'tsx', GATE_MAIN],
    {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      DURABILITY: 'disk',
      LOG_LEVEL: 'warn',
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const pool = new Pool(url, { connections: 32 });
  try {
    await waitFor(async () => {
      if (server.child.exitCode !== null)
        throw new Error(`balance-gate exited (${server.child.exitCode}): ${server.stderrTail()}`);
      const response = await fetch(`${url}/readyz`);
      await response.arrayBuffer();
      return response.status === 200;
    }, `balance-gate /readyz on port ${port}`);
    await seed(pool, options.merchants, options.balanceCents);
    return { port, pid: server.child.pid!, stop: () => server.stop(10_000) };
  } catch (error) {
    if (server.child.exitCode !== null) process.stderr.write(server.stderrTail());
    await server.stop();
    throw error;
  } finally {
    await pool.close();
  }
}

/** One credit per merchant, 256 in flight; any non-200 stops the run. */
async function seed(pool: Pool, merchants: readonly string[], balanceCents: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < merchants.length) {
      const merchant = merchants[next++];
      const response = await pool.request({
        path: `/v1/merchants/${merchant}/credits`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ transfer_id: `seed-${merchant}`, amount_cents: balanceCents }),
      });
      const text = await response.body.text();
      if (response.statusCode !== 200)
        throw new Error(`seeding balance-gate: credit of ${merchant} got ${response.statusCode} ${text}`);
    }
  };
  await Promise.all(Array.from({ length: 256 }, worker));
}
