/**
 * The C load tools used for saturation throughput, each a cross-check of our own generator: wrk (HTTP, with a
 * Lua script that makes every request a new reservation), redis-benchmark (EVALSHA of the benchmark variant
 * of the Lua script) and pgbench (a custom script calling `reserve`). All are closed loop: their latency
 * figures suffer from coordinated omission, so only their throughput is used. Every run is bounded in time.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { onCleanup } from './processes.ts';
import { AMOUNT_CENTS_MAX } from './workload.ts';

export interface ToolResult {
  tool: string;
  opsPerS: number;
  /** Requests the tool completed (NaN where it does not say). */
  requests: number;
  errors: number;
  /** Closed-loop latency as the tool reports it (from send time; not corrected for coordinated omission). */
  p99Ms: number;
}

/** Runs a tool to completion, killed after `timeoutMs` or when the benchmark is interrupted. */
function execBounded(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => {
        unregister();
        if (error) reject(new Error(`${command} failed: ${error.message}\n${stderr}\n${stdout}`.trim()));
        else resolve(`${stdout}\n${stderr}`);
      },
    );
    const unregister = onCleanup(command, () => child.kill('SIGKILL'));
  });
}

const WRK_SCRIPT = `-- Every request is a new reservation: a unique id per thread and counter, a random merchant and amount.
local counter = 0
local prefix, merchants, amount_max
local headers = { ["Content-Type"] = "application/json" }
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  prefix = args[1] .. "-" .. tid .. "-"
  merchants = tonumber(args[2])
  amount_max = tonumber(args[3])
  math.randomseed(tid * 7919)
end
function request()
  counter = counter + 1
  local body = '{"reservation_id":"' .. prefix .. counter .. '","merchant_id":"merchant-' ..
    math.random(0, merchants - 1) .. '","amount_cents":' .. math.random(1, amount_max) .. '}'
  return wrk.format("POST", "/v1/reservations", headers, body)
end
`;

function durationMs(value: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(value);
  if (!match) return Number.NaN;
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[match[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(match[1]) * scale;
}

/** wrk, one thread (the machine has 2 cores, the target needs one), closed loop over `connections`. */
export async function wrkReservations(options: {
  port: number;
  workDir: string;
  seconds: number;
  connections: number;
  threads: number;
  merchants: number;
  prefix: string;
}): Promise<ToolResult> {
  const script = path.join(options.workDir, 'wrk-reserve.lua');
  writeFileSync(script, WRK_SCRIPT);
  const out = await execBounded(
    'wrk',
    [
      `-t${options.threads}`,
      `-c${options.connections}`,
      `-d${options.seconds}s`,
      '--latency',
      '-s',
      script,
      `http://127.0.0.1:${options.port}`,
      '--',
      options.prefix,
      String(options.merchants),
      String(AMOUNT_CENTS_MAX),
    ],
    options.seconds * 1000 + 30_000,
  );
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return {
    tool: `wrk -t${options.threads} -c${options.connections}`,
    opsPerS: rps,
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN),
    errors,
    p99Ms: durationMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ''),
  };
}

function redisBenchmarkCsv(out: string): { rps: number; p99Ms: number } {
  // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  const row = out
    .split('\n')
    .filter((line) => line.startsWith('"') && !line.startsWith('"test"'))
    .at(-1);
  const cells = (row ?? '').split('","').map((cell) => cell.replaceAll('"', ''));
  return { rps: Number(cells[1] ?? Number.NaN), p99Ms: Number(cells[6] ?? Number.NaN) };
}

/** redis-benchmark's server, connection count and request count arguments. */
function redisBenchmarkTarget(options: { port: number; connections: number; requests: number }): string[] {
  return [
    '-h',
    '127.0.0.1',
    '-p',
    String(options.port),
    '-c',
    String(options.connections),
    '-n',
    String(options.requests),
  ];
}

/**
 * redis-benchmark has a request count, not a duration: `requests` is sized by the caller from an estimate
 * of the rate (our generator's closed-loop figure) so that the run lasts about the phase's length.
 */
export async function redisBenchmarkReservations(options: {
  port: number;
  benchSha: string;
  requests: number;
  connections: number;
  timeoutMs: number;
}): Promise<ToolResult> {
  const out = await execBounded(
    'redis-benchmark',
    [
      ...redisBenchmarkTarget(options),
      // __rand_int__ draws random() % r: r must fit a C int (a larger one silently becomes a single key);
      // random() spans 2^31, so a few dozen of a few hundred thousand draws repeat: genuine retries.
      '-r',
      '2000000000',
      '--csv',
      'EVALSHA',
      options.benchSha,
      '1',
      'res:rb-__rand_int__',
    ],
    options.timeoutMs,
  );
  const errors = (out.match(/ERR|Error/g) ?? []).length;
  const { rps, p99Ms } = redisBenchmarkCsv(out);
  return {
    tool: `redis-benchmark -c${options.connections}`,
    opsPerS: rps,
    requests: options.requests,
    errors,
    p99Ms,
  };
}

/** redis-benchmark's own ceiling: PING (no work in Redis) over the same connections. */
export async function redisBenchmarkPing(options: {
  port: number;
  requests: number;
  connections: number;
}): Promise<ToolResult> {
  const out = await execBounded(
    'redis-benchmark',
    [...redisBenchmarkTarget(options), '-t', 'ping_mbulk', '--csv'],
    60_000,
  );
  const { rps, p99Ms } = redisBenchmarkCsv(out);
  return {
    tool: `redis-benchmark PING -c${options.connections}`,
    opsPerS: rps,
    requests: options.requests,
    errors: 0,
    p99Ms,
  };
}

const PGBENCH_RESERVE = `\\set n random(1, 9000000000000000000)
\\set m random(0, :merchants - 1)
\\set a random(1, ${AMOUNT_CENTS_MAX})
SELECT * FROM reserve('pgb-' || :n, 'merchant-' || :m, :a);
`;

/** pgbench with a custom script; `SELECT 1` measures pgbench's (and the protocol's) own ceiling. */
export async function pgbench(options: {
  binDir: string;
  port: number;
  workDir: string;
  seconds: number;
  connections: number;
  merchants: number;
  script: 'reserve' | 'select1';
}): Promise<ToolResult> {
  const file = path.join(options.workDir, `pgbench-${options.script}.sql`);
  writeFileSync(file, options.script === 'reserve' ? PGBENCH_RESERVE : 'SELECT 1;\n');
  const out = await execBounded(
    `${options.binDir}/pgbench`,
    [
      '-n',
      '-M',
      'prepared',
      '-h',
      '127.0.0.1',
      '-p',
      String(options.port),
      '-U',
      'postgres',
      '-c',
      String(options.connections),
      '-j',
      '2',
      '-T',
      String(options.seconds),
      '-D',
      `merchants=${options.merchants}`,
      '-f',
      file,
      'postgres',
    ],
    options.seconds * 1000 + 60_000,
  );
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1] ?? Number.NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  const requests = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? Number.NaN);
  return {
    tool: `pgbench${options.script === 'select1' ? ' SELECT 1' : ''} -c${options.connections} -j2`,
    opsPerS: tps,
    requests,
    errors: failed,
    p99Ms: Number.NaN,
  };
}
