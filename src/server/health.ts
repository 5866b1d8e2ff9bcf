import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { EngramError } from '../errors.ts';

/** What health needs to know of a store: whether its write path stopped, and how far it got. */
export interface HealthSource {
  readonly failed: EngramError | undefined;
  readonly lsnDurable: number;
}

/**
 * `GET /healthz`: 200 while the process serves HTTP (liveness: restart it if this fails).
 * `GET /readyz`: 200 once the store has recovered and while its write path works (readiness: send it
 * traffic); 503 `recovering` before, 503 `failed` with the error after a storage failure (a restart is
 * the recovery).
 * `GET /metrics`: the registry in Prometheus text format.
 */
export function addHealthRoutes(
  app: FastifyInstance,
  store: () => HealthSource | undefined,
  registry: Registry,
): void {
  app.get('/healthz', (_request, reply) => {
    reply.send({ status: 'ok' });
  });

  app.get('/readyz', (_request, reply) => {
    const current = store();
    if (current === undefined) {
      reply.code(503).header('retry-after', '1').send({ status: 'recovering' });
      return;
    }
    const failure = current.failed;
    if (failure !== undefined) {
      reply.code(503).send({ status: 'failed', error: failure.code, message: failure.message });
      return;
    }
    reply.send({ status: 'ready', lsn_durable: current.lsnDurable });
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
}
