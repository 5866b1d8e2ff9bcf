/**
 * Redis 7 + Lua as a peer of balance-gate: a private `redis-server` on a free port in a temp dir, with
 * `appendonly yes` + `appendfsync always` (Redis fsyncs the AOF before it answers the commands of an event
 * loop turn, so a reply means durable) and no RDB saves. One Lua script, loaded with SCRIPT LOAD and called
 * with EVALSHA, keeps balance-gate's semantics:
 *   - a known reservation id returns the recorded decision (same request) or an IDEMPOTENCY_CONFLICT error
 *     (different merchant, amount or ttl), with the merchant's balances as recorded at decision time;
 *   - an unknown merchant is NOT_FOUND;
 *   - otherwise approve if available covers the amount (available -= amount, held += amount, the merchant's
 *     next payout sequence number), else reject (insufficient_funds); either decision is recorded.
 * Keys: `res:{reservation_id}` (hash: the request and its decision), `mer:{merchant_id}` (hash: balances).
 */
import { createClient } from 'redis';
import { freePort, run, type Spawned, spawnServer, tempDir, waitFor } from './processes.ts';

/** The decision procedure, shared by both entry points below. Returns {status, sequence|false, M...}. */
const RESERVE_CORE = `
local function reserve(rkey, mkey, merchant, amount, ttl)
  local rec = redis.call('HMGET', rkey, 'merchant', 'amount', 'ttl', 'status', 'sequence',
    'available', 'held', 'captured', 'credited')
  if rec[1] then
    if rec[1] ~= merchant or rec[2] ~= amount or rec[3] ~= ttl then
      return redis.error_reply('IDEMPOTENCY_CONFLICT reservation ' .. rkey .. ' was decided for a different request')
    end
    local seq = false
    if rec[5] ~= '' then seq = tonumber(rec[5]) end
    return {rec[4], seq, tonumber(rec[6]), tonumber(rec[7]), tonumber(rec[8]), tonumber(rec[9])}
  end
  local m = redis.call('HMGET', mkey, 'available', 'held', 'captured', 'credited')
  if not m[1] then return redis.error_reply('NOT_FOUND merchant ' .. merchant .. ' does not exist') end
  local n = tonumber(amount)
  local status, sequence = 'rejected', false
  if tonumber(m[1]) >= n then
    status = 'held'
    m[1] = redis.call('HINCRBY', mkey, 'available', -n)
    m[2] = redis.call('HINCRBY', mkey, 'held', n)
    sequence = redis.call('HINCRBY', mkey, 'next_sequence', 1) - 1
  end
  local expires = ''
  if ttl ~= '' and status == 'held' then
    local t = redis.call('TIME')
    expires = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ttl)
  end
  redis.call('HSET', rkey, 'merchant', merchant, 'amount', amount, 'ttl', ttl, 'status', status,
    'sequence', sequence or '', 'expires_at', expires,
    'available', m[1], 'held', m[2], 'captured', m[3], 'credited', m[4])
  return {status, sequence, tonumber(m[1]), tonumber(m[2]), tonumber(m[3]), tonumber(m[4])}
end
`;

/** EVALSHA sha 2 res:{id} mer:{merchant} merchant amount ttl ('' = none). */
export const RESERVE_LUA = `${RESERVE_CORE}
return reserve(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
`;

/**
 * The same procedure for redis-benchmark, whose only per-request variable is `__rand_int__` (a 12-digit
 * number): `EVALSHA sha 1 res:rb-__rand_int__`. The merchant and amount are derived from that number, so a
 * repeated number is a genuine retry (same request, recorded answer), never a conflict. The merchant key is
 * computed inside the script (fine outside cluster mode).
 */
export function benchmarkLua(merchants: number, amountCentsMax: number): string {
  return `${RESERVE_CORE}
local n = tonumber(string.sub(KEYS[1], 8))
local merchant = 'merchant-' .. (n % ${merchants})
local amount = tostring(1 + math.floor(n / ${merchants}) % ${amountCentsMax})
return reserve(KEYS[1], 'mer:' .. merchant, merchant, amount, '')
`;
}

export interface RedisPeer {
  port: number;
  pid: number;
  /** SHA of RESERVE_LUA. */
  sha: string;
  /** SHA of benchmarkLua(...). */
  benchSha: string;
  version: string;
  /** Reservation records stored (`res:*` keys): proof that a tool's requests did real work. */
  reservationsRecorded(): Promise<number>;
  stop(): Promise<void>;
}

export async function startRedisPeer(options: {
  merchants: readonly string[];
  balanceCents: number;
  amountCentsMax: number;
}): Promise<RedisPeer> {
  const dir = tempDir('redis');
  const port = await freePort();
  const server: Spawned = spawnServer('redis-server', 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'no',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--daemonize',
    'no',
    '--logfile',
    '',
  ]);
  const client = createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await waitFor(async () => {
      if (server.child.exitCode !== null) throw new Error(`redis-server exited: ${server.stderrTail()}`);
      if (!client.isOpen) await client.connect();
      return (await client.ping()) === 'PONG';
    }, `redis-server on port ${port}`);
    const config = await client.configGet('appendfsync');
    if (config.appendfsync !== 'always') throw new Error(`redis appendfsync is ${config.appendfsync}`);
    const sha = await client.scriptLoad(RESERVE_LUA);
    const benchSha = await client.scriptLoad(benchmarkLua(options.merchants.length, options.amountCentsMax));
    for (let i = 0; i < options.merchants.length; i += 1000) {
      const multi = client.multi();
      for (const id of options.merchants.slice(i, i + 1000)) {
        multi.hSet(`mer:${id}`, {
          available: options.balanceCents,
          held: 0,
          captured: 0,
          credited: options.balanceCents,
          next_sequence: 1,
        });
      }
      await multi.exec();
    }
    await checkSemantics(client, sha);
    // Every other key is a reservation record.
    const otherKeys = options.merchants.length + 1;
    const version = run('redis-server', ['--version']).match(/v=(\S+)/)?.[1] ?? '?';
    return {
      port,
      pid: server.child.pid!,
      sha,
      benchSha,
      version,
      reservationsRecorded: async () => (await client.dbSize()) - otherKeys,
      stop: async () => {
        await client.quit().catch(() => undefined);
        await server.stop();
      },
    };
  } catch (error) {
    await client.disconnect().catch(() => undefined);
    await server.stop();
    throw error;
  }
}

type Client = ReturnType<typeof createClient>;

/** A few calls through the script that must answer exactly as balance-gate's contract says. */
async function checkSemantics(client: Client, sha: string): Promise<void> {
  await client.hSet('mer:check', { available: 1000, held: 0, captured: 0, credited: 1000, next_sequence: 1 });
  const reserve = (id: string, merchant: string, amount: number) =>
    client
      .evalSha(sha, { keys: [`res:${id}`, `mer:${merchant}`], arguments: [merchant, String(amount), ''] })
      .then(
        (reply) => JSON.stringify(reply),
        (error: Error) => error.message.split(' ')[0],
      );
  const expect = async (what: string, actual: Promise<string>, expected: string) => {
    const got = await actual;
    if (got !== expected) throw new Error(`redis peer: ${what}: expected ${expected}, got ${got}`);
  };
  await expect('hold', reserve('c1', 'check', 300), '["held",1,700,300,0,1000]');
  await expect('retry', reserve('c1', 'check', 300), '["held",1,700,300,0,1000]');
  await expect('conflict', reserve('c1', 'check', 301), 'IDEMPOTENCY_CONFLICT');
  await expect('insufficient', reserve('c2', 'check', 701), '["rejected",null,700,300,0,1000]');
  await expect('unknown merchant', reserve('c3', 'nobody', 1), 'NOT_FOUND');
  await expect('next sequence', reserve('c4', 'check', 700), '["held",2,0,1000,0,1000]');
}
