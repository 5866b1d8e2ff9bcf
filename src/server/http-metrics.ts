import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { Registry } from 'prom-client';
import { type CounterChild, CounterFamily } from './fast-metrics.ts';

type Child = CounterChild;

/** Requests that matched no route share one label value: raw URLs would make the label set unbounded. */
const UNMATCHED_ROUTE = 'unmatched';
const STATUS_MAX = 599;

/**
 * `<name>{route, status}`: responses by route pattern (`/v1/reservations/:id`, not the concrete URL) and
 * status code. Each child is bound once and kept in an array indexed by status, so counting a response is
 * a map lookup by an interned string, an array read and an add: no label strings built or hashed.
 */
export class HttpMetrics {
  private readonly counter: CounterFamily;
  private readonly byRoute = new Map<string, Child[]>();

  constructor(registry: Registry, name: string) {
    this.counter = new CounterFamily(registry, {
      name,
      help: 'HTTP responses by route pattern and status code',
      labelNames: ['route', 'status'],
    });
  }

  /** Binds the children a dashboard expects to see at 0 before any traffic. */
  preBind(route: string, statuses: readonly number[]): void {
    for (const status of statuses) this.child(route, status);
  }

  /** The `onResponse` hook (callback style: it runs on every request). */
  readonly hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    this.count(request.routeOptions.url ?? UNMATCHED_ROUTE, reply.statusCode);
    done();
  };

  /** Counts one response of `route` (a route pattern) outside fastify's hooks (hot-routes.ts). */
  count(route: string, status: number): void {
    this.child(route, status).inc();
  }

  private child(route: string, status: number): Child {
    let children = this.byRoute.get(route);
    if (children === undefined) {
      children = [];
      this.byRoute.set(route, children);
    }
    const code = status >= 100 && status <= STATUS_MAX ? status : 0;
    let child = children[code];
    if (child === undefined) {
      child = this.counter.child(route, String(code));
      children[code] = child;
    }
    return child;
  }
}
