/**
 * The load generator's engine, run in its own process (loadgen-child.ts) so that it never shares an event
 * loop or a heap with the orchestrator. Raw keep-alive sockets, requests encoded on the fly with no client
 * library, one request in flight per connection.
 *
 * - closed loop: every connection sends its next request as soon as the previous answer arrives; throughput
 *   is completions in the measured window.
 * - open loop: request i is due at t0 + i/rate whether or not earlier ones were answered; it leaves on the
 *   first free connection at or after its due time, and its latency is measured from the due time (queueing
 *   in the generator included), so a stall of the target counts for every request it delays: no coordinated
 *   omission. The generator's own lateness (send time - due time) is reported separately.
 * Requests due in the warm-up are sent but not measured. A bound on every run: after the schedule ends the
 * generator waits at most `drainMs`; requests still unanswered then count as unfinished, with their latency
 * so far as a lower bound.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  HttpResponseParser,
  httpBatchPost,
  httpPost,
  type OnResponse,
  PgResponseParser,
  pgPrepare,
  pgReserve,
  pgStartup,
  type ResponseParser,
  RespResponseParser,
  reservationJson,
  respReserve,
} from './wire.ts';
import { ReservationStream } from './workload.ts';

export type TargetSpec =
  | { protocol: 'http'; port: number; path: string; batchItems?: number }
  | { protocol: 'resp'; port: number; sha: string }
  | { protocol: 'pg'; port: number; user: string; database: string; sql: string };

export interface LoadJob {
  target: TargetSpec;
  mode: 'closed' | 'open';
  connections: number;
  /** Open loop only: requests per second offered. */
  ratePerS?: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  /** Prefix of this run's reservation ids; unique per run. */
  prefix: string;
  seed: number;
  merchants: number;
}

export interface Percentiles {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export interface LoadResult {
  mode: 'closed' | 'open';
  connections: number;
  offeredPerS: number;
  /** Requests measured: closed loop, sent and answered in the window; open loop, due in the window. */
  completed: number;
  /** Answers that were errors (non-2xx, RESP error, PostgreSQL ErrorResponse), measured window. */
  errors: number;
  errorSample: string;
  /** Open loop: measured requests still unanswered at the drain deadline. */
  unfinished: number;
  /** Connections the target closed or broke during the run (their requests in flight never answered). */
  connectionsLost: number;
  /**
   * Open loop: % of measured requests that found every connection busy at their due time, i.e. more
   * requests in flight than the pool holds: the target answers slower than they arrive.
   */
  queuedPct: number;
  /**
   * Answers (times reservations per request, for batches) per second received in the measured window: below
   * the offered rate, the target fell behind.
   */
  achievedPerS: number;
  /** Open: from due time (coordinated omission corrected); closed: from send time. */
  latency: Percentiles;
  /** Open loop: from the actual send time (what a closed-loop tool would report). */
  serviceTime: Percentiles;
  /** Open loop: send time - due time: waiting for a free connection (the target is slow) plus `generatorLag`. */
  sendLag: Percentiles;
  /**
   * Open loop: the generator's own lateness: send time - max(due time, when a connection was free). What the
   * generator adds to `latency` by itself (timer granularity, its event loop being busy).
   */
  generatorLag: Percentiles;
  /** The generator process's CPU time over the run's wall time (100 = one core busy). */
  generatorCpuPct: number;
  /** The generator's event-loop utilisation (1 = never idle: the generator would be the bottleneck). */
  generatorElu: number;
  itemsPerRequest: number;
}

/** Latency samples in a growable Float64Array (milliseconds); sorted once at the end. */
class Samples {
  private values = new Float64Array(1 << 16);
  length = 0;

  push(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }

  percentiles(): Percentiles {
    const sorted = this.values.subarray(0, this.length).sort();
    const at = (q: number) =>
      sorted.length === 0
        ? Number.NaN
        : sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * q) - 1)];
    return { p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), p999Ms: at(0.999), maxMs: at(1) };
  }
}

/** One keep-alive connection with at most one request in flight. */
class Connection {
  /** Due time (open loop) or send time (closed loop) of the request in flight; -1 when idle. */
  dueMs = -1;
  sentMs = 0;
  /** Open loop: since when a connection had been free when this request left. */
  freeSinceMs = 0;
  /** Called if the target closes the connection (or it fails) before the run is over. */
  onLost: (connection: Connection, why: string) => void = () => undefined;
  private closing = false;
  private readonly parser: ResponseParser;

  private constructor(
    private readonly socket: Socket,
    protocol: TargetSpec['protocol'],
    onResponse: (connection: Connection, error: string | undefined) => void,
  ) {
    const handler: OnResponse = (error) => onResponse(this, error);
    this.parser =
      protocol === 'http'
        ? new HttpResponseParser(handler)
        : protocol === 'resp'
          ? new RespResponseParser(handler)
          : new PgResponseParser(handler);
    socket.on('data', (chunk: Buffer) => this.parser.feed(chunk));
    let failure = 'connection closed by the target';
    socket.on('error', (error) => {
      failure = `connection failed: ${error.message}`;
    });
    socket.on('close', () => {
      if (!this.closing) this.onLost(this, failure);
    });
  }

  static async open(
    target: TargetSpec,
    onResponse: (connection: Connection, error: string | undefined) => void,
  ): Promise<Connection> {
    const socket = connect({ host: '127.0.0.1', port: target.port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    if (target.protocol !== 'pg') return new Connection(socket, target.protocol, onResponse);
    // PostgreSQL: startup (trust) until ReadyForQuery, then prepare the statement once per connection.
    let step: ((error: string | undefined) => void) | undefined;
    const connection = new Connection(socket, 'pg', (_c, error) => step?.(error));
    const nextReady = () =>
      new Promise<void>((resolve, reject) => {
        step = (error) => (error ? reject(new Error(`postgres: ${error}`)) : resolve());
      });
    let ready = nextReady();
    socket.write(pgStartup(target.user, target.database));
    await ready;
    ready = nextReady();
    socket.write(pgPrepare(target.sql));
    await ready;
    step = (error) => onResponse(connection, error);
    return connection;
  }

  send(payload: string | Buffer): void {
    this.socket.write(payload);
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }
}

/** Encodes the next request of the job's workload for its protocol. */
function encoder(job: LoadJob): () => string | Buffer {
  const stream = new ReservationStream(job.prefix, job.seed, job.merchants);
  const target = job.target;
  if (target.protocol === 'resp') return () => respReserve(target.sha, stream.next());
  if (target.protocol === 'pg') return () => pgReserve(stream.next());
  const items = target.batchItems;
  if (items === undefined) return () => httpPost(target.path, reservationJson(stream.next()));
  return () => httpBatchPost(target.path, stream, items);
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  const next = encoder(job);
  const latency = new Samples();
  const service = new Samples();
  const lag = new Samples();
  const ownLag = new Samples();
  /** Start of the current stretch during which `idle` has been non-empty. */
  let idleSinceMs = 0;
  const idle: Connection[] = [];
  let completed = 0;
  let answeredInWindow = 0;
  let errors = 0;
  let errorSample = '';
  let lost = 0;
  let queued = 0;
  let inFlight = 0;
  const open = job.mode === 'open';
  const rate = job.ratePerS ?? 0;
  const intervalMs = open ? 1000 / rate : 0;
  const total = open ? Math.floor((rate * (job.warmupMs + job.durationMs)) / 1000) : Number.POSITIVE_INFINITY;
  let t0 = 0;
  let measuredFromMs = 0;
  let measuredToMs = 0;
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  let finish: () => void = () => undefined;

  const onResponse = (c: Connection, error: string | undefined) => {
    const now = performance.now();
    inFlight--;
    if (now >= measuredFromMs && now <= measuredToMs) answeredInWindow++;
    const measured = open ? c.dueMs >= measuredFromMs : c.sentMs >= measuredFromMs && now <= measuredToMs;
    if (measured) {
      completed++;
      latency.push(now - c.dueMs);
      if (open) {
        service.push(now - c.sentMs);
        lag.push(c.sentMs - c.dueMs);
        ownLag.push(c.sentMs - Math.max(c.dueMs, c.freeSinceMs));
        if (c.freeSinceMs > c.dueMs) queued++;
      }
      if (error !== undefined) {
        errors++;
        if (!errorSample) errorSample = error.slice(0, 300);
      }
    }
    c.dueMs = -1;
    if (idle.length === 0) idleSinceMs = now;
    idle.push(c);
    pump();
    if (inFlight === 0 && (open ? sent >= total : now >= measuredToMs)) finish();
  };

  const pump = () => {
    const now = performance.now();
    if (!open) {
      while (idle.length > 0 && now < measuredToMs) {
        const c = idle.pop()!;
        c.dueMs = now;
        c.sentMs = now;
        inFlight++;
        c.send(next());
      }
      return;
    }
    while (idle.length > 0 && sent < total) {
      const dueMs = t0 + sent * intervalMs;
      if (dueMs > now) break;
      const c = idle.pop()!;
      c.dueMs = dueMs;
      c.sentMs = now;
      c.freeSinceMs = idleSinceMs;
      sent++;
      inFlight++;
      c.send(next());
    }
    if (timer === undefined && idle.length > 0 && sent < total) {
      timer = setTimeout(
        () => {
          timer = undefined;
          pump();
        },
        Math.max(0, t0 + sent * intervalMs - now),
      );
    }
  };

  const connections = await Promise.all(
    Array.from({ length: job.connections }, () => Connection.open(job.target, onResponse)),
  );
  const onLost = (c: Connection, why: string) => {
    lost++;
    errorSample ||= why;
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    else if (c.dueMs >= 0) {
      inFlight--;
      if (!open) c.dueMs = -1; // open loop: stays pending, counted as unfinished at the end
    }
    if (inFlight === 0 && (lost === connections.length || (open ? sent >= total : true))) finish();
  };
  for (const c of connections) c.onLost = onLost;
  idle.push(...connections);
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  t0 = performance.now();
  idleSinceMs = t0;
  measuredFromMs = t0 + job.warmupMs;
  measuredToMs = measuredFromMs + job.durationMs;
  const deadlineMs = measuredToMs + job.drainMs;
  await new Promise<void>((resolve) => {
    const guard = setTimeout(() => finish(), deadlineMs - t0);
    finish = () => {
      clearTimeout(guard);
      resolve();
    };
    pump();
  });
  if (timer !== undefined) clearTimeout(timer);
  const endMs = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  // Unfinished requests of an open-loop run: latency so far is a lower bound, and it belongs in the tail.
  let unfinished = 0;
  if (open) {
    for (const c of connections) {
      if (c.dueMs >= measuredFromMs) {
        unfinished++;
        latency.push(endMs - c.dueMs);
      }
    }
    for (let i = sent; i < total; i++) {
      const dueMs = t0 + i * intervalMs;
      if (dueMs >= measuredFromMs) {
        unfinished++;
        latency.push(endMs - dueMs);
      }
    }
  }
  for (const c of connections) c.close();
  const itemsPerRequest = job.target.protocol === 'http' ? (job.target.batchItems ?? 1) : 1;
  return {
    mode: job.mode,
    connections: job.connections,
    offeredPerS: rate,
    completed,
    errors,
    errorSample,
    unfinished,
    connectionsLost: lost,
    queuedPct: completed > 0 ? (100 * queued) / completed : 0,
    achievedPerS: ((answeredInWindow * itemsPerRequest) / job.durationMs) * 1000,
    latency: latency.percentiles(),
    serviceTime: service.percentiles(),
    sendLag: lag.percentiles(),
    generatorLag: ownLag.percentiles(),
    generatorCpuPct: ((cpu.user + cpu.system) / 1000 / (endMs - t0)) * 100,
    generatorElu: elu.utilization,
    itemsPerRequest,
  };
}
