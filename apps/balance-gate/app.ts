import { Ajv } from 'ajv';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Store } from '../../src/engine/store.ts';
import { bearerMatches } from '../../src/server/auth.ts';
import { toHttpError } from '../../src/server/errors.ts';
import type { EngineMetrics } from '../../src/server/metrics.ts';
import type { BalanceGateDefinition, GateIndexes, GateState, ReserveCommand } from './domain.ts';
import { merchantView, STATUS_NAMES } from './domain.ts';
import {
  batchBody,
  type CreditBody,
  creditBody,
  merchantParams,
  type ReservationBody,
  reservationBody,
  reservationParams,
} from './schemas.ts';

export type GateStore = Store<
  GateState,
  BalanceGateDefinition['events'],
  BalanceGateDefinition['commands'],
  GateIndexes
>;

export interface AppOptions {
  /** The store, or undefined while it is recovering (writes and reads answer 503, /readyz too). */
  store: () => GateStore | undefined;
  metrics: EngineMetrics;
  token: string | undefined;
  logger?: boolean | object;
}

const BODY_BYTES_MAX = 64 * 1024;
const BATCH_BODY_BYTES_MAX = 4 * 1024 * 1024;

/** Builds the HTTP API (routes, validation, errors, auth, metrics) around a store. */
export function buildApp(options: AppOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: BODY_BYTES_MAX,
    // Money amounts must not be coerced: "100" is a wrong type, not 100.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    // Long path ids must reach validation (a 400 that explains the id rules), not the router's 414.
    routerOptions: { maxParamLength: 1024 },
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      reply.code(400).send({
        error: 'invalid_request',
        message: `${error.message}; check the URL against the API contract`,
      });
    },
  });
  // The API speaks JSON only; a text body is refused as the wrong media type rather than parsed.
  app.removeContentTypeParser('text/plain');
  const itemValidator = new Ajv({ coerceTypes: false, allErrors: false }).compile(reservationBody);

  app.addHook('onRequest', async (request, reply) => {
    if (options.token === undefined || request.url === '/healthz') return;
    if (!bearerMatches(request.headers.authorization, options.token)) {
      reply.code(401).header('www-authenticate', 'Bearer').send({
        error: 'unauthorized',
        message: 'send "Authorization: Bearer <token>" with the configured token',
      });
    }
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      const where = error.validationContext ?? 'request';
      return reply.code(400).send({
        error: 'invalid_input',
        message: `${where}${error.validation[0]?.instancePath ?? ''} ${error.validation[0]?.message ?? error.message}; see the API contract in docs/balance-gate.md`,
      });
    }
    switch (error.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return reply.code(400).send({
          error: 'invalid_json',
          message: `the body is not valid JSON (${error.message}); send a JSON object`,
        });
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply.code(413).send({
          error: 'body_too_large',
          message: `the body exceeds the limit of this route (${request.url.endsWith('/batch') ? BATCH_BODY_BYTES_MAX : BODY_BYTES_MAX} bytes); send fewer items per request`,
        });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply
          .code(415)
          .send({ error: 'unsupported_media_type', message: 'send the body as application/json' });
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return reply
          .code(400)
          .send({ error: 'invalid_input', message: 'the Content-Length header does not match the body' });
    }
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(error.statusCode).send({ error: 'invalid_request', message: error.message });
    }
    return sendError(reply, error, request.log);
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({
      error: 'not_found',
      message: `no route ${request.method} ${request.url}; see docs/balance-gate.md for the API`,
    });
  });

  const storeOr503 = (reply: FastifyReply): GateStore | undefined => {
    const store = options.store();
    if (!store) {
      reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: 'unavailable', message: 'recovering the store; retry shortly' });
      return undefined;
    }
    return store;
  };

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const store = options.store();
    if (!store) return reply.code(503).send({ status: 'recovering' });
    if (store.failed)
      return reply
        .code(503)
        .send({ status: 'failed', error: store.failed.code, message: store.failed.message });
    return { status: 'ready', lsn: store.lsnDurable };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', options.metrics.registry.contentType);
    return options.metrics.registry.metrics();
  });

  app.post<{ Params: { merchant_id: string }; Body: CreditBody }>(
    '/v1/merchants/:merchant_id/credits',
    { schema: { params: merchantParams, body: creditBody } },
    async (request, reply) => {
      const store = storeOr503(reply);
      if (!store) return reply;
      const { transfer_id, amount_cents } = request.body;
      try {
        return await store.execute('credit', {
          merchantId: request.params.merchant_id,
          transferId: transfer_id,
          amountCents: amount_cents,
        });
      } catch (error) {
        return sendError(reply, error, request.log);
      }
    },
  );

  app.post<{ Body: ReservationBody }>(
    '/v1/reservations',
    { schema: { body: reservationBody } },
    async (request, reply) => {
      const store = storeOr503(reply);
      if (!store) return reply;
      try {
        return await store.execute('reserve', toReserve(request.body));
      } catch (error) {
        return sendError(reply, error, request.log);
      }
    },
  );

  app.post<{ Body: { items: unknown[] } }>(
    '/v1/reservations/batch',
    { schema: { body: batchBody }, bodyLimit: BATCH_BODY_BYTES_MAX },
    async (request, reply) => {
      const store = storeOr503(reply);
      if (!store) return reply;
      const items = request.body.items;
      const results: unknown[] = new Array(items.length);
      const valid: ReserveCommand[] = [];
      const slots: number[] = [];
      for (let i = 0; i < items.length; i++) {
        if (itemValidator(items[i])) {
          valid.push(toReserve(items[i] as ReservationBody));
          slots.push(i);
        } else {
          const issue = itemValidator.errors?.[0];
          results[i] = {
            error: 'invalid_input',
            message: `items[${i}]${issue?.instancePath ?? ''} ${issue?.message ?? 'is invalid'}`,
          };
        }
      }
      try {
        const decided = valid.length > 0 ? await store.executeMany('reserve', valid) : [];
        for (let k = 0; k < decided.length; k++) {
          const outcome = decided[k];
          results[slots[k]] = outcome.ok ? outcome.result : toHttpError(outcome.error).body;
        }
      } catch (error) {
        return sendError(reply, error, request.log);
      }
      return { results };
    },
  );

  for (const action of ['capture', 'release'] as const) {
    app.post<{ Params: { id: string } }>(
      `/v1/reservations/:id/${action}`,
      { schema: { params: reservationParams } },
      async (request, reply) => {
        const store = storeOr503(reply);
        if (!store) return reply;
        try {
          return await store.execute(action, { reservationId: request.params.id });
        } catch (error) {
          return sendError(reply, error, request.log);
        }
      },
    );
  }

  app.get<{ Params: { id: string } }>(
    '/v1/reservations/:id',
    { schema: { params: reservationParams } },
    async (request, reply) => {
      const store = storeOr503(reply);
      if (!store) return reply;
      const id = request.params.id;
      try {
        const found = await store.read((state) => {
          const r = state.reservations.get(id);
          return (
            r && {
              reservation_id: r.id,
              merchant_id: r.merchantId,
              amount_cents: r.amount,
              status: STATUS_NAMES[r.status],
            }
          );
        });
        if (!found)
          return reply.code(404).send({ error: 'not_found', message: `reservation '${id}' does not exist` });
        return found;
      } catch (error) {
        return sendError(reply, error, request.log);
      }
    },
  );

  app.get<{ Params: { merchant_id: string } }>(
    '/v1/merchants/:merchant_id',
    { schema: { params: merchantParams } },
    async (request, reply) => {
      const store = storeOr503(reply);
      if (!store) return reply;
      const id = request.params.merchant_id;
      try {
        const found = await store.read((state) => {
          const m = state.merchants.get(id);
          return m && merchantView(m);
        });
        if (!found)
          return reply
            .code(404)
            .send({ error: 'not_found', message: `merchant '${id}' does not exist; credit it first` });
        return found;
      } catch (error) {
        return sendError(reply, error, request.log);
      }
    },
  );

  return app;
}

function toReserve(body: ReservationBody): ReserveCommand {
  return {
    reservationId: body.reservation_id,
    merchantId: body.merchant_id,
    amountCents: body.amount_cents,
    ttlMs: body.ttl_ms,
  };
}

function sendError(
  reply: FastifyReply,
  error: unknown,
  log: { error(obj: unknown, msg: string): void },
): FastifyReply {
  const http = toHttpError(error);
  if (http.status >= 500) log.error({ err: error }, 'request failed');
  if (http.headers) reply.headers(http.headers);
  return reply.code(http.status).send(http.body);
}
