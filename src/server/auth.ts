import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';

const BEARER_PREFIX_LENGTH = 'Bearer '.length;

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Bearer-token check in constant time. Both sides are hashed first, so neither the token's prefix (a
 * comparison that stops early) nor its length (a length check before the comparison) leaks. The scheme
 * name is case-insensitive (RFC 9110 §11.1).
 */
export class BearerToken {
  private readonly expected: Buffer;

  constructor(token: string) {
    if (token.length === 0) throw new Error('a bearer token must not be empty');
    this.expected = digest(token);
  }

  matches(header: string | undefined): boolean {
    if (header === undefined || header.length <= BEARER_PREFIX_LENGTH) return false;
    if (header.slice(0, BEARER_PREFIX_LENGTH).toLowerCase() !== 'bearer ') return false;
    return timingSafeEqual(digest(header.slice(BEARER_PREFIX_LENGTH)), this.expected);
  }
}

/**
 * An `onRequest` hook that answers 401 (JSON, with `WWW-Authenticate`) unless the request carries the
 * token. Routes in `openRoutes` (route patterns, e.g. `/healthz` for liveness probes) need none. Callback
 * style, not async: it runs on every request.
 */
export function bearerAuthHook(token: string, openRoutes: readonly string[]) {
  const bearer = new BearerToken(token);
  const open = new Set(openRoutes);
  return (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const route = request.routeOptions.url;
    if ((route !== undefined && open.has(route)) || bearer.matches(request.headers.authorization)) {
      done();
      return;
    }
    reply.code(401).header('www-authenticate', 'Bearer').send({
      error: 'unauthorized',
      message: 'missing or wrong token: send "Authorization: Bearer <token>" with the configured token',
    });
  };
}

const LOOPBACK_NAMES = new Set(['localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1']);

/** Whether binding `host` keeps the port on this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host.toLowerCase()) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
