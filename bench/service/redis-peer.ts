/**
 * Redis 7 as the peer a team would pick: a private redis-server (appendonly yes, appendfsync always: every
 * write is fsync'd before the reply) and a Lua script with balance-gate's semantics (idempotency key with
 * conflict detection, balance check, hold, per-merchant sequence).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createClient } from 'redis';
import type { Reservation } from '../lib/workload.ts';
import { freePort, portOpen, start, waitFor } from './processes.ts';

const RESERVE_LUA = `
local body = ARGV[1] .. ':' .. KEYS[2]
local known = redis.call('HGET', KEYS[1], 'body')
if known then
  if known ~= body then return redis.error_reply('idempotency_conflict') end
  return redis.call('HGET', KEYS[1], 'decision')
end
local available = tonumber(redis.call('HGET', KEYS[2], 'available'))
if available == nil then return redis.error_reply('not_found') end
local amount = tonumber(ARGV[1])
local decision
if available < amount then
  decision = 'rejected'
else
  redis.call('HINCRBY', KEYS[2], 'available', -amount)
  redis.call('HINCRBY', KEYS[2], 'held', amount)
  decision = 'held:' .. (redis.call('HINCRBY', KEYS[2], 'next_sequence', 1) - 1)
end
redis.call('HSET', KEYS[1], 'body', body, 'decision', decision)
return decision
`;

export interface RedisPeer {
  submit(r: Reservation): Promise<unknown>;
  close(): Promise<void>;
}

export async function startRedis(merchants: readonly string[], balanceCents: number): Promise<RedisPeer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-redis-'));
  const port = await freePort();
  const server = start('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--protected-mode',
    'no',
  ]);
  await waitFor(() => portOpen(port), 'redis-server');
  const client = createClient({ socket: { host: '127.0.0.1', port } });
  await client.connect();
  const sha = await client.scriptLoad(RESERVE_LUA);
  for (let i = 0; i < merchants.length; i += 1000) {
    const multi = client.multi();
    for (const id of merchants.slice(i, i + 1000))
      multi.hSet(`m:${id}`, { available: balanceCents, held: 0, next_sequence: 1 });
    await multi.exec();
  }
  return {
    submit: (r) =>
      client.evalSha(sha, {
        keys: [`r:${r.reservationId}`, `m:${r.merchantId}`],
        arguments: [String(r.amountCents)],
      }),
    close: async () => {
      await client.quit().catch(() => undefined);
      server.kill('SIGKILL');
    },
  };
}
