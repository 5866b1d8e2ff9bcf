/**
 * Typed errors. Every error carries a stable `code` and the facts an operator or a caller needs to act
 * (`file`, `offset`, `lsn`, ...), and its message says what to do next.
 */
export type EngramErrorCode =
  | 'invalid_argument'
  | 'idempotency_conflict'
  | 'overloaded'
  | 'store_failed'
  | 'store_closed'
  | 'store_locked'
  | 'storage_io'
  | 'corruption'
  | 'unknown_record_type'
  | 'rejected_command'
  | 'log_gap'
  | 'snapshot_invalid';

export class EngramError extends Error {
  readonly code: EngramErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: EngramErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'EngramError';
    this.code = code;
    this.details = details;
  }
}

/** The command or request was malformed; nothing was changed. */
export function invalidArgument(message: string, details: Record<string, unknown> = {}): EngramError {
  return new EngramError('invalid_argument', message, details);
}

/** Too much unflushed data: the caller should retry after `retryAfterMs`. Nothing was changed. */
export class OverloadedError extends EngramError {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, details: Record<string, unknown> = {}) {
    super('overloaded', message, { ...details, retryAfterMs });
    this.retryAfterMs = retryAfterMs;
  }
}

/** Programmer error: a broken invariant. Never caught and handled; it crashes by design. */
export class AssertionFailure extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionFailure';
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}
