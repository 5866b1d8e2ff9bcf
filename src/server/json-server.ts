import { createServer, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerFactory,
} from 'fastify';
import { BearerToken, bearerAuthHook } from './auth.ts';
import { type ErrorLog, sendError } from './errors.ts';
import { type HotRoute, HotRoutes } from './hot-routes.ts';
import { attachHttpFront, type HttpFront } from './http-front.ts';
import type { HttpMetrics } from './http-metrics.ts';
import { invalidJsonBody, validationErrorBody } from './json-errors.ts';

export interface JsonServerOptions {
  /** Default request body limit; a route may raise its own (`bodyLimit` in its options). */
  bodyBytesMax: number;
  /** When set, every route but `openRoutes` needs `Authorization: Bearer <token>`. */
  token: string | undefined;
  /** Route patterns reachable without the token; default `['/healthz']` (liveness probes). */
  openRoutes?: readonly string[];
  /** Counts every response by route and status. */
  httpMetrics?: HttpMetrics;
  /** Gets 500s (bugs); nothing per request. */
  errorLog?: ErrorLog;
  /**
   * A logger for one debug line per request (method, URL, status, time). Pass one only when running at
   * debug level: at 36k requests/s, a log line per request costs more than the request.
   */
  requestLogger?: FastifyBaseLogger;
  /** Appended to error messages so a client finds the contract, e.g. "see docs/balance-gate.md". */
  contractHint: string;
  /**
   * POST routes answered before fastify on the happy path (hot-routes.ts); the caller registers the same
   * routes in fastify too, for every other case and for `inject`. Unused with a `requestLogger`.
   */
  hotRoutes?: readonly HotRoute[];
}

/** A request that takes longer than this to arrive (slow or stalled client) is cut: it holds a socket. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Longer than any valid id (128), so a long id reaches validation and gets a 400 that says why. */
const PATH_PARAM_LENGTH_MAX = 1024;

/**
 * A fastify instance for a JSON API on an Engram store: strict validation (no type coercion: "100" is not
 * 100), JSON-only bodies, every error in the shape `{"error": code, "message": what to do}` with a 4xx for
 * anything the client sent (never HTML, never a stack trace, never a 5xx for bad input), optional bearer
 * auth and per-route HTTP metrics. The caller adds its routes.
 */
export function createJsonServer(options: JsonServerOptions): FastifyInstance {
  const hint = options.contractHint;
  // Per-request debug lines come from fastify's hooks, so a logged server sends everything through fastify.
  const hot =
    options.hotRoutes && options.hotRoutes.length > 0 && !options.requestLogger
      ? new HotRoutes(options.hotRoutes, {
          token: options.token === undefined ? undefined : new BearerToken(options.token),
          httpMetrics: options.httpMetrics,
          errorLog: options.errorLog,
          contractHint: hint,
        })
      : undefined;
  const app = Fastify({
    serverFactory: hot && hotServerFactory(hot),
    ...(options.requestLogger
      ? { loggerInstance: options.requestLogger, disableRequestLogging: true }
      : { logger: false }),
    bodyLimit: options.bodyBytesMax,
    requestTimeout: REQUEST_TIMEOUT_MS,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    routerOptions: { maxParamLength: PATH_PARAM_LENGTH_MAX },
    clientErrorHandler: answerClientError,
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      reply.code(400).send({
        error: 'invalid_request',
        message: `${error.message}; check the URL (${hint})`,
      });
    },
  });
  acceptJsonOnly(app);
  if (hot) {
    hotRoutesByApp.set(app, hot);
    // Before Node's connection handler on the server hotServerFactory made, with the timeouts set there.
    const front = attachHttpFront(app.server, hot, {
      keepAliveTimeoutMs: app.server.keepAliveTimeout,
      requestTimeoutMs: app.server.requestTimeout,
    });
    frontsByApp.set(app, front);
    app.addHook('preClose', (done) => {
      hot.close();
      front.close();
      done();
    });
  }
  // The hot routes run none of the hooks below: each has its counterpart in hot-routes.ts (token check,
  // metric; no hot routes with a request logger). A hook added here needs one there too.
  if (options.token !== undefined)
    app.addHook('onRequest', bearerAuthHook(options.token, options.openRoutes ?? ['/healthz']));
  if (options.requestLogger)
    app.addHook('onResponse', (request, reply, done) => {
      request.log.debug(
        { method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime },
        'request',
      );
      done();
    });
  const httpMetrics = options.httpMetrics;
  if (httpMetrics) {
    app.addHook('onResponse', httpMetrics.hook);
    app.addHook('onRoute', (route) => {
      if (route.method !== 'HEAD') httpMetrics.preBind(route.url, [200]);
    });
  }
  app.setErrorHandler((error: FastifyError, request, reply) =>
    handleError(error, request, reply, options.errorLog, hint),
  );
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({
      error: 'not_found',
      message: `no route ${request.method} ${request.url}; ${hint}`,
    });
  });
  return app;
}

/**
 * A plain Node HTTP server with the hot routes in front: the front (http-front.ts) answers their requests
 * off the socket, and Node's server offers every request that reaches it to the hot routes before
 * fastify's handler (a connection the front handed over may still send hot requests).
 */
function hotServerFactory(hot: HotRoutes): FastifyServerFactory {
  return (handler, options) => {
    // Fastify passes its options with its defaults filled in; the type says less.
    const settings = options as {
      keepAliveTimeout?: number;
      requestTimeout?: number;
      connectionTimeout?: number;
      maxRequestsPerSocket?: number;
    };
    const server = createServer((request, response) => {
      if (!hot.take(request, response)) handler(request, response);
    });
    // What fastify sets on a server it creates itself (lib/server.js).
    if (settings.keepAliveTimeout !== undefined) server.keepAliveTimeout = settings.keepAliveTimeout;
    if (settings.requestTimeout !== undefined) server.requestTimeout = settings.requestTimeout;
    if (settings.connectionTimeout !== undefined) server.setTimeout(settings.connectionTimeout);
    if (settings.maxRequestsPerSocket) server.maxRequestsPerSocket = settings.maxRequestsPerSocket;
    return server;
  };
}

const hotRoutesByApp = new WeakMap<FastifyInstance, HotRoutes>();
const frontsByApp = new WeakMap<FastifyInstance, HttpFront>();

/** The front before `app`'s HTTP server, if it has hot routes (tests read its connections). */
export function frontOf(app: FastifyInstance): HttpFront | undefined {
  return frontsByApp.get(app);
}

/** The hot routes in front of `app`, if it has any (tests read how many requests they answered). */
export function hotRoutesOf(app: FastifyInstance): HotRoutes | undefined {
  return hotRoutesByApp.get(app);
}

/**
 * Bodies are JSON or nothing. An empty body with `Content-Type: application/json` counts as no body (curl
 * and many clients send the header on a bodiless POST such as a capture); the route's schema decides
 * whether a body was required. Text bodies are refused with 415 instead of being parsed.
 */
function acceptJsonOnly(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body.length === 0) done(null, undefined);
    else parseJson(request, body as string, done);
  });
}

function handleError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
  errorLog: ErrorLog | undefined,
  hint: string,
): FastifyReply {
  if (error.validation) {
    // `/v1/things/` matches `/v1/things/:id` with an empty id: that is no route, not a bad id.
    if (error.validationContext === 'params' && hasEmptyParam(request.params))
      return reply.code(404).send({
        error: 'not_found',
        message: `no route ${request.method} ${request.url}; ${hint}`,
      });
    return reply
      .code(400)
      .send(validationErrorBody(error.validationContext, error.validation[0], hint, error.message));
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return reply.code(400).send(invalidJsonBody(hint));
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return reply.code(413).send({
        error: 'body_too_large',
        message: `the body exceeds this route's limit of ${request.routeOptions.bodyLimit} bytes; send less (fewer items per batch)`,
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return reply.code(415).send({
        error: 'unsupported_media_type',
        message: 'send the body as JSON with "Content-Type: application/json"',
      });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return reply.code(400).send({
        error: 'invalid_request',
        message: 'the Content-Length header does not match the body',
      });
  }
  const status = error.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500)
    return reply.code(status).send({ error: 'invalid_request', message: `${error.message}; ${hint}` });
  return sendError(reply, error, errorLog);
}

/**
 * A request Node's HTTP parser refused before fastify saw it (malformed HTTP, headers over 16 KiB, a request
 * slower than the timeout): answered in the same JSON error shape, then the connection is closed.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let status = 400;
  let body: { error: string; message: string } = {
    error: 'invalid_request',
    message: 'the request is not valid HTTP/1.1',
  };
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    body = {
      error: 'headers_too_large',
      message: 'the request headers exceed 16 KiB; send fewer or shorter headers',
    };
  } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    body = {
      error: 'request_timeout',
      message: `the request did not arrive within ${REQUEST_TIMEOUT_MS} ms`,
    };
  }
  const text = JSON.stringify(body);
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  socket.destroy(error);
}

function hasEmptyParam(params: unknown): boolean {
  if (typeof params !== 'object' || params === null) return false;
  for (const value of Object.values(params)) if (value === '') return true;
  return false;
}

/**
 * Stops accepting connections and waits for in-flight requests, but not for idle keep-alive connections:
 * `close()` alone closes the connections idle at that moment, while one whose request was still in flight
 * turns idle later and would hold the shutdown for the keep-alive timeout (72 s). So idle connections are
 * swept every 50 ms; after `graceMs` even busy ones are cut (a client retries; writes are idempotent).
 */
export async function closeGracefully(app: FastifyInstance, graceMs: number): Promise<void> {
  const closing = app.close();
  const sweep = setInterval(() => app.server.closeIdleConnections(), SHUTDOWN_SWEEP_MS);
  // The front's connections are not the HTTP server's: they end once idle (see HttpFront.close).
  const cut = setTimeout(() => {
    app.server.closeAllConnections();
    frontOf(app)?.destroyAll();
  }, graceMs);
  try {
    await closing;
  } finally {
    clearInterval(sweep);
    clearTimeout(cut);
  }
}

const SHUTDOWN_SWEEP_MS = 50;
