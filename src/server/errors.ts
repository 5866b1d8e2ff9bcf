import type { FastifyReply } from 'fastify';
import { CommandRejected } from '../engine/definition.ts';
import { EngramError, OverloadedError } from '../errors.ts';

/** The JSON error body every route returns: a stable code and a message that says what to do. */
export interface ErrorBody {
  error: string;
  message: string;
}

export interface HttpError {
  status: number;
  body: ErrorBody;
  headers?: Record<string, string>;
}

/** Where errors worth an operator's attention go (a pino logger fits). */
export interface ErrorLog {
  error(obj: unknown, msg: string): void;
}

/** Domain rejection codes and their status; a code not listed is a 409 (the request conflicts with state). */
const REJECTION_STATUS: Record<string, number> = {
  not_found: 404,
  illegal_transition: 409,
  idempotency_conflict: 409,
  invalid_amount: 400,
  invalid_input: 400,
};

/**
 * Maps engine and domain errors to HTTP: rejections by their code, `overloaded` to 503 with Retry-After,
 * a stopped write path to 503. Anything else is a 500 whose body hides internals (the details go to the
 * log): a client never sees a stack trace.
 */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof CommandRejected) {
    return {
      status: REJECTION_STATUS[error.code] ?? 409,
      body: { error: error.code, message: error.message },
    };
  }
  if (error instanceof OverloadedError) {
    const retryAfterS = Math.max(1, Math.ceil(error.retryAfterMs / 1000));
    return {
      status: 503,
      body: { error: 'overloaded', message: error.message },
      headers: { 'retry-after': String(retryAfterS) },
    };
  }
  if (error instanceof EngramError) {
    switch (error.code) {
      case 'idempotency_conflict':
        return { status: 409, body: { error: error.code, message: error.message } };
      case 'invalid_argument':
        return { status: 400, body: { error: 'invalid_input', message: error.message } };
      case 'store_closed':
        return {
          status: 503,
          body: {
            error: 'unavailable',
            message: 'the service is shutting down; retry on another instance or after the restart',
          },
          headers: { 'retry-after': '1' },
        };
      default:
        return {
          status: 503,
          body: {
            error: 'unavailable',
            message: `the write path has stopped (${error.code}): ${error.message}. Nothing unacknowledged was kept; the service needs a restart (it recovers from the log).`,
          },
        };
    }
  }
  return {
    status: 500,
    body: {
      error: 'internal',
      message: 'internal error; the request may not have been applied: retry it with the same id',
    },
  };
}

/**
 * Sends `error` as the JSON error shape. Only 500s are logged here (with the cause): they are bugs. A 503
 * is an operating condition already reported once where it started (backpressure metrics, the store's
 * failure log line), not once per refused request.
 */
export function sendError(reply: FastifyReply, error: unknown, log: ErrorLog | undefined): FastifyReply {
  const http = toHttpError(error);
  logIfInternal(http, error, reply.request.url, log);
  if (http.headers) reply.headers(http.headers);
  return reply.code(http.status).send(http.body);
}

/** Logs `error` (with its cause) when it mapped to a 500: a bug, not an operating condition. */
export function logIfInternal(http: HttpError, error: unknown, url: string, log: ErrorLog | undefined): void {
  if (http.status === 500) log?.error({ err: error, url }, `request failed: ${http.body.error}`);
}
