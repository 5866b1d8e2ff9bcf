/** Request schemas of the HTTP contract. Ids: 1–128 of [A-Za-z0-9._:-]; amounts: positive safe integers. */
export const ID_PATTERN = '^[A-Za-z0-9._:-]{1,128}$';
export const TTL_MS_MAX = 30 * 24 * 3600 * 1000;
export const BATCH_ITEMS_MAX = 8190;
/** Single requests are a few hundred bytes; 64 KiB leaves room for whitespace and nothing more. */
export const BODY_BYTES_MAX = 64 * 1024;
/**
 * The largest valid batch: 8190 items of two 128-character ids, a 16-digit amount and a ttl is 2.71 MiB
 * compact, ~3.1 MiB indented by 2; 4 MiB fits both, and bounds what one request can make us parse.
 */
export const BATCH_BODY_BYTES_MAX = 4 * 1024 * 1024;

const id = { type: 'string', pattern: ID_PATTERN } as const;
const amount = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;

export const creditBody = {
  type: 'object',
  required: ['transfer_id', 'amount_cents'],
  additionalProperties: false,
  properties: { transfer_id: id, amount_cents: amount },
} as const;

export const reservationBody = {
  type: 'object',
  required: ['reservation_id', 'merchant_id', 'amount_cents'],
  additionalProperties: false,
  properties: {
    reservation_id: id,
    merchant_id: id,
    amount_cents: amount,
    ttl_ms: { type: 'integer', minimum: 1, maximum: TTL_MS_MAX },
  },
} as const;

export const batchBody = {
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: { items: { type: 'array', minItems: 1, maxItems: BATCH_ITEMS_MAX } },
} as const;

const merchantView = {
  type: 'object',
  properties: {
    merchant_id: { type: 'string' },
    available_cents: { type: 'integer' },
    held_cents: { type: 'integer' },
    captured_cents: { type: 'integer' },
    credited_cents: { type: 'integer' },
  },
} as const;

/** The 200 answer of reserve, capture and release (serialised by responses.ts, in this key order). */
export const reservationResult = {
  type: 'object',
  required: ['reservation_id', 'status', 'merchant', 'lsn'],
  properties: {
    reservation_id: { type: 'string' },
    status: { type: 'string' },
    reason: { type: 'string' },
    sequence: { type: 'integer' },
    merchant: merchantView,
    lsn: { type: 'integer' },
  },
} as const;

export const merchantParams = {
  type: 'object',
  required: ['merchant_id'],
  properties: { merchant_id: id },
} as const;

export const reservationParams = {
  type: 'object',
  required: ['id'],
  properties: { id },
} as const;

export interface CreditBody {
  transfer_id: string;
  amount_cents: number;
}

export interface ReservationBody {
  reservation_id: string;
  merchant_id: string;
  amount_cents: number;
  ttl_ms?: number;
}
