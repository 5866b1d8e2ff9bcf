import { Ajv, type ValidateFunction } from 'ajv';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify';
import type { Store } from '../../src/engine/store.ts';
import { type ErrorBody, type ErrorLog, toHttpError } from '../../src/server/errors.ts';
import { type HistogramChild, HistogramFamily } from '../../src/server/fast-metrics.ts';
import { addHealthRoutes } from '../../src/server/health.ts';
import type { HttpMetrics } from '../../src/server/http-metrics.ts';
import { JSON_CONTENT_TYPE } from '../../src/server/json-errors.ts';
import { createJsonServer } from '../../src/server/json-server.ts';
import type { EngineMetrics } from '../../src/server/metrics.ts';
import type {
  BalanceGateDefinition,
  GateIndexes,
  GateState,
  MerchantView,
  ReserveCommand,
} from './domain.ts';
import { merchantView, STATUS_NAMES } from './domain.ts';
import { parseBatchFast, parseReservationFast } from './reservation-parser.ts';
import { BatchAnswer, reservationResultJson } from './responses.ts';
import {
  BATCH_BODY_BYTES_MAX,
  BODY_BYTES_MAX,
  batchBody,
  type CreditBody,
  creditBody,
  merchantParams,
  type ReservationBody,
  reservationBody,
  reservationParams,
  reservationResult,
} from './schemas.ts';

export type GateStore = Store<
  GateState,
  BalanceGateDefinition['events'],
  BalanceGateDefinition['commands'],
  GateIndexes
>;

export interface AppOptions {
  /** The store, or undefined while it is recovering (API routes and /readyz answer 503 meanwhile). */
  store: () => GateStore | undefined;
  metrics: EngineMetrics;
  /** `balance_gate_http_requests_total{route,status}`; optional so tests can leave it out. */
  httpMetrics?: HttpMetrics;
  token: string | undefined;
  /** 500s (bugs) are logged here. */
  errorLog?: ErrorLog;
  /** Per-request logs: pass a logger only when running at debug level. */
  requestLogger?: FastifyBaseLogger;
}

export interface ReservationView {
  reservation_id: string;
  merchant_id: string;
  amount_cents: number;
  status: string;
}

const CONTRACT_HINT = 'see the API in docs/balance-gate.md';
const BATCH_ITEMS_BUCKETS = [1, 10, 100, 500, 1000, 2000, 4000, 8190];

/** Items per batch request, valid or not: how operators see whether clients batch. */
function batchItemsHistogram(metrics: EngineMetrics): HistogramChild {
  return new HistogramFamily(metrics.registry, {
    name: 'balance_gate_batch_items',
    help: 'Items per batch request taken (POST /v1/reservations/batch; valid or not, each answered on its own)',
    labelNames: [],
    buckets: BATCH_ITEMS_BUCKETS,
  }).child();
}

/** The routes of the HTTP contract (docs/balance-gate.md) on the shared JSON server plumbing. */
export function buildApp(options: AppOptions): FastifyInstance {
  const itemValidator = new Ajv({ coerceTypes: false, allErrors: false }).compile(reservationBody);
  const batchItems = batchItemsHistogram(options.metrics);
  const app = createJsonServer({
    bodyBytesMax: BODY_BYTES_MAX,
    token: options.token,
    httpMetrics: options.httpMetrics,
    errorLog: options.errorLog,
    requestLogger: options.requestLogger,
    contractHint: CONTRACT_HINT,
    // One reservation per request is the service's hot path: answered before fastify's pipeline. The
    // fastify route below stays for every case the hot route hands over (and for `inject`).
    hotRoutes: [
      {
        url: '/v1/reservations',
        bodyBytesMax: BODY_BYTES_MAX,
        validate: itemValidator,
        ready: () => options.store() !== undefined,
        parseFast: parseReservationFast,
        run: (body) =>
          (options.store() as GateStore)
            .execute('reserve', isCommand(body) ? body : toReserve(body as ReservationBody))
            .then(reservationResultJson),
      },
      {
        // Batches in the exact common shape skip JSON.parse and the schema (reservation-parser.ts); the rest
        // are parsed and validated as fastify would, item by item.
        url: '/v1/reservations/batch',
        bodyBytesMax: BATCH_BODY_BYTES_MAX,
        validate: new Ajv({ coerceTypes: false, allErrors: false }).compile(batchBody),
        ready: () => options.store() !== undefined,
        parseFast: parseBatchFast,
        run: (body) => {
          const store = options.store() as GateStore;
          // parseFast gives the commands (an array); a validated body is an object with `items`.
          if (Array.isArray(body)) return decideBatch(store, batchItems, body);
          return runBatch(store, batchItems, itemValidator, (body as { items: unknown[] }).items);
        },
      },
    ],
  });
  addHealthRoutes(app, options.store, options.metrics.registry);
  // Write and read handlers return the store's promise: a rejection (domain rejection, conflict,
  // overload, stopped write path) goes to the server's error handler, which maps it to status and JSON.
  const storeOr503 = (reply: FastifyReply): GateStore | undefined => {
    const store = options.store();
    if (store === undefined)
      reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: 'unavailable', message: 'the store is recovering; retry in a second' });
    return store;
  };

  app.post<{ Params: { merchant_id: string }; Body: CreditBody }>(
    '/v1/merchants/:merchant_id/credits',
    { schema: { params: merchantParams, body: creditBody } },
    (request, reply) => {
      const store = storeOr503(reply);
      if (store === undefined) return reply;
      const body = request.body;
      return store.execute('credit', {
        merchantId: request.params.merchant_id,
        transferId: body.transfer_id,
        amountCents: body.amount_cents,
      });
    },
  );

  // The hot path: validation is compiled by fastify, the result is already the HTTP body.
  app.post<{ Body: ReservationBody }>(
    '/v1/reservations',
    {
      schema: { body: reservationBody, response: { 200: reservationResult } },
      serializerCompiler: reservationAnswer,
    },
    (request, reply) => {
      const store = storeOr503(reply);
      if (store === undefined) return reply;
      return store.execute('reserve', toReserve(request.body));
    },
  );

  app.post<{ Body: { items: unknown[] } }>(
    '/v1/reservations/batch',
    { schema: { body: batchBody }, bodyLimit: BATCH_BODY_BYTES_MAX },
    async (request, reply) => {
      const store = storeOr503(reply);
      if (store === undefined) return reply;
      return reply
        .type(JSON_CONTENT_TYPE)
        .send(await runBatch(store, batchItems, itemValidator, request.body.items));
    },
  );

  for (const action of ['capture', 'release'] as const) {
    app.post<{ Params: { id: string } }>(
      `/v1/reservations/:id/${action}`,
      {
        schema: { params: reservationParams, response: { 200: reservationResult } },
        serializerCompiler: reservationAnswer,
      },
      (request, reply) => {
        const store = storeOr503(reply);
        if (store === undefined) return reply;
        return store.execute(action, { reservationId: request.params.id });
      },
    );
  }

  app.get<{ Params: { id: string } }>(
    '/v1/reservations/:id',
    { schema: { params: reservationParams } },
    async (request, reply) => {
      const store = storeOr503(reply);
      if (store === undefined) return reply;
      const id = request.params.id;
      const found = await store.read((state) => reservationView(state, id));
      if (found === undefined)
        return reply.code(404).send({ error: 'not_found', message: `reservation '${id}' does not exist` });
      return found;
    },
  );

  app.get<{ Params: { merchant_id: string } }>(
    '/v1/merchants/:merchant_id',
    { schema: { params: merchantParams } },
    async (request, reply) => {
      const store = storeOr503(reply);
      if (store === undefined) return reply;
      const id = request.params.merchant_id;
      const found = await store.read((state) => merchantOrUndefined(state, id));
      if (found === undefined)
        return reply
          .code(404)
          .send({ error: 'not_found', message: `merchant '${id}' does not exist; credit it first` });
      return found;
    },
  );

  return app;
}

/** A 200 of reserve, capture or release: the fixed template of responses.ts instead of JSON.stringify. */
const reservationAnswer = () => reservationResultJson as (data: unknown) => string;

/**
 * A validated batch body's items: each valid one becomes a command, decided in order under one
 * acknowledgement; an invalid one is answered with its own error.
 */
function runBatch(
  store: GateStore,
  batchItems: HistogramChild,
  itemValidator: ValidateFunction,
  items: unknown[],
): Promise<Buffer> {
  const invalid: (ErrorBody | undefined)[] = new Array(items.length);
  const valid: ReserveCommand[] = [];
  const slots: number[] = [];
  for (let i = 0; i < items.length; i++) {
    if (itemValidator(items[i])) {
      valid.push(toReserve(items[i] as ReservationBody));
      slots.push(i);
    } else {
      const issue = itemValidator.errors?.[0];
      invalid[i] = {
        error: 'invalid_input',
        message: `items[${i}]${issue?.instancePath ?? ''} ${issue?.message ?? 'is invalid'}; ${CONTRACT_HINT}`,
      };
    }
  }
  return decideBatch(store, batchItems, valid, { invalid, slots });
}

/**
 * Decides `commands` in order under one acknowledgement and answers once it is reached. Each outcome is
 * written into the answer as soon as it is decided (an item's rejection is its own), so a batch of 8190
 * waits for the disk as one buffer, not as 8190 results. With `refused`, command k answers item
 * `slots[k]` and the items between hold their errors (invalid input, never decided).
 */
function decideBatch(
  store: GateStore,
  batchItems: HistogramChild,
  commands: ReserveCommand[],
  refused?: { invalid: readonly (ErrorBody | undefined)[]; slots: readonly number[] },
): Promise<Buffer> {
  const total = refused ? refused.invalid.length : commands.length;
  batchItems.observe(total);
  const answer = new BatchAnswer(total);
  let next = 0;
  const answerUpTo = (item: number) => {
    for (; next < item; next++) answer.add(refused?.invalid[next] as ErrorBody);
  };
  const place = (k: number) => {
    if (refused) answerUpTo(refused.slots[k]);
    next++;
  };
  const durable =
    commands.length === 0
      ? Promise.resolve()
      : store.executeEach('reserve', commands, {
          decided: (result, k) => {
            place(k);
            answer.add(result);
          },
          refused: (error, k) => {
            place(k);
            answer.add(toHttpError(error).body);
          },
        });
  // Not an async function: its suspended frame would keep `commands` (8190 objects) alive until the ack.
  return durable.then(() => {
    answerUpTo(total);
    return answer.finish();
  });
}

/**
 * Whether a hot route's body is already a command (parseFast read it) rather than a validated body: the
 * schema allows no key but its own, so a validated body never has `reservationId`.
 */
function isCommand(body: unknown): body is ReserveCommand {
  return (body as Partial<ReserveCommand>).reservationId !== undefined;
}

function toReserve(body: ReservationBody): ReserveCommand {
  return {
    reservationId: body.reservation_id,
    merchantId: body.merchant_id,
    amountCents: body.amount_cents,
    ttlMs: body.ttl_ms,
  };
}

function reservationView(state: Readonly<GateState>, id: string): ReservationView | undefined {
  const r = state.reservations.get(id);
  if (r === undefined) return undefined;
  return {
    reservation_id: r.id,
    merchant_id: r.merchantId,
    amount_cents: r.amount,
    status: STATUS_NAMES[r.status],
  };
}

function merchantOrUndefined(state: Readonly<GateState>, id: string): MerchantView | undefined {
  const m = state.merchants.get(id);
  return m === undefined ? undefined : merchantView(m);
}
