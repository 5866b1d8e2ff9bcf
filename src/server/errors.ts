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

const REJECTION_STATUS: Record<string, number> = {
  not_found: 404,
  illegal_transition: 409,
  idempotency_conflict: 409,
  invalid_amount: 400,
};

/**
 * Maps engine and domain errors to HTTP. Unknown errors become a 500 whose body hides internals (the
 * details go to the log): a client never sees a stack trace.
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
      body: { error: 'overloaded', message: `${error.message}` },
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
            message: 'the service is shutting down; retry on another instance or after restart',
          },
        };
      default:
        return {
          status: 503,
          body: {
            error: 'unavailable',
            message: `the write path has stopped (${error.code}); nothing unacknowledged was kept. ${error.message}`,
          },
        };
    }
  }
  return {
    status: 500,
    body: {
      error: 'internal',
      message: 'internal error; the request may not have been applied, retry with the same id',
    },
  };
}
