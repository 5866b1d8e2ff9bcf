/**
 * HTTP load against balance-gate: wrk (C, closed loop) for saturation, and an open-loop generator (undici,
 * latency from each request's intended send time) for fixed offered loads and batches.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Pool } from 'undici';
import { type LatencySummary, offer, saturate } from '../lib/latency.ts';
import type { Reservation } from '../lib/workload.ts';

const execFileAsync = promisify(execFile);

const WRK_SCRIPT = `
local counter = 0
local prefix = ""
local merchants = tonumber(os.getenv("BENCH_MERCHANTS") or "10000")
function setup(thread) thread:set("tid", tostring(math.random(1, 1000000000))) end
function init(args) prefix = "wrk" .. tid .. "-" end
request = function()
  counter = counter + 1
  local body = '{"reservation_id":"' .. prefix .. counter .. '","merchant_id":"merchant-' .. (counter % merchants) ..
    '","amount_cents":' .. (1 + counter % 9973) .. '}'
  return wrk.format("POST", "/v1/reservations", {["Content-Type"] = "application/json"}, body)
end
`;

export interface WrkResult {
  opsPerS: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
}

function toMs(value: string): number {
  const match = value.match(/^([\d.]+)(us|ms|s)$/);
  if (!match) return Number.NaN;
  const n = Number(match[1]);
  return match[2] === 'us' ? n / 1000 : match[2] === 's' ? n * 1000 : n;
}

export async function wrkReservations(
  url: string,
  workDir: string,
  seconds: number,
  connections: number,
  merchants: number,
): Promise<WrkResult> {
  const script = path.join(workDir, 'reserve.lua');
  await writeFile(script, WRK_SCRIPT);
  const { stdout } = await execFileAsync(
    'wrk',
    ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url],
    {
      env: { ...process.env, BENCH_MERCHANTS: String(merchants) },
    },
  );
  const rps = Number(stdout.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? Number.NaN);
  const p50 = stdout.match(/\s50%\s+(\S+)/)?.[1] ?? '';
  const p99 = stdout.match(/\s99%\s+(\S+)/)?.[1] ?? '';
  const non2xx = Number(stdout.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0);
  return { opsPerS: rps, p50Ms: toMs(p50), p99Ms: toMs(p99), non2xx };
}

export class HttpClient {
  private readonly pool: Pool;
  failures = 0;

  constructor(url: string, connections: number) {
    this.pool = new Pool(url, { connections, pipelining: 1 });
  }

  async post(pathname: string, body: unknown): Promise<string> {
    const response = await this.pool.request({
      path: pathname,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await response.body.text();
    if (response.statusCode !== 200) this.failures++;
    return text;
  }

  async get(pathname: string): Promise<string> {
    const response = await this.pool.request({ path: pathname, method: 'GET' });
    return response.body.text();
  }

  reserve(r: Reservation): Promise<string> {
    return this.post('/v1/reservations', {
      reservation_id: r.reservationId,
      merchant_id: r.merchantId,
      amount_cents: r.amountCents,
    });
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export async function openLoop(
  submit: (r: Reservation) => Promise<unknown>,
  next: () => Reservation,
  ratePerS: number,
  seconds: number,
): Promise<LatencySummary & { offeredPerS: number }> {
  return offer(submit, next, { ratePerS, durationMs: seconds * 1000, warmupMs: 500 });
}

export async function closedLoop(
  submit: (r: Reservation) => Promise<unknown>,
  next: () => Reservation,
  concurrency: number,
  seconds: number,
): Promise<LatencySummary> {
  return saturate(submit, next, { concurrency, durationMs: seconds * 1000, warmupMs: 500 });
}
