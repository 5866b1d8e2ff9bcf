/**
 * A parser for the reservation bodies in their common, exact shape, straight from the request's bytes into
 * commands: one reservation `{"reservation_id":"…","merchant_id":"…","amount_cents":N,"ttl_ms":N?}`, or a
 * batch `{"items":[<reservation>, …]}`, with any JSON whitespace, the keys in any order. In a profile of the
 * batch endpoint at saturation, JSON.parse, the prototype-poisoning scan and the schema checks were a fifth
 * of the service's CPU (decision 016); for a single reservation, V8's JSON.parse alone spends as much
 * putting its short strings into the string table as the store spends deciding (decision 021).
 *
 * It accepts only bodies whose every reservation the schema accepts: ids of 1–128 characters of [A-Za-z0-9._:-]
 * (so no escapes), amounts and ttls as plain decimal integers in range, each key once, no other key, 1 to
 * BATCH_ITEMS_MAX items. For anything else (an invalid item, a duplicate key, `1.0`, an escape, a key
 * `__proto__`, malformed JSON) it returns undefined and the request takes the general path, JSON.parse and
 * the schema, whose answer (an error, or per-item errors) is then the only one there is.
 */
import type { ReserveCommand } from './domain.ts';
import { BATCH_ITEMS_MAX, TTL_MS_MAX } from './schemas.ts';

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const ID_LENGTH_MAX = 128;

/** Bytes allowed in an id: [A-Za-z0-9._:-]. */
const ID_BYTE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-')
  ID_BYTE[c.charCodeAt(0)] = 1;

const ITEMS = Buffer.from('items', 'latin1');
const RESERVATION_ID = Buffer.from('reservation_id', 'latin1');
const MERCHANT_ID = Buffer.from('merchant_id', 'latin1');
const AMOUNT_CENTS = Buffer.from('amount_cents', 'latin1');
const TTL_MS = Buffer.from('ttl_ms', 'latin1');

enum Field {
  ReservationId = 1,
  MerchantId = 2,
  AmountCents = 4,
  TtlMs = 8,
}
const REQUIRED = Field.ReservationId | Field.MerchantId | Field.AmountCents;

/** Thrown inside the parser to leave it; never escapes `parseBatchFast`. */
const NOT_FAST = new Error('not the fast shape');

class Scanner {
  at = 0;
  constructor(readonly b: Buffer) {}

  /** Skips JSON whitespace; the next byte, or -1 at the end. */
  peek(): number {
    const b = this.b;
    let at = this.at;
    while (at < b.length) {
      const c = b[at];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      at++;
    }
    this.at = at;
    return at < b.length ? b[at] : -1;
  }

  expect(c: number): void {
    if (this.peek() !== c) throw NOT_FAST;
    this.at++;
  }

  /** After a list element: true at `close` (consumed), false at a comma (consumed); else not the shape. */
  closes(close: number): boolean {
    const next = this.peek();
    this.at++;
    if (next === close) return true;
    if (next !== COMMA) throw NOT_FAST;
    return false;
  }

  /** A quoted key equal to one of ours: its field, or throws. The colon after it is consumed too. */
  key(): Field {
    this.expect(QUOTE);
    const b = this.b;
    const start = this.at;
    let end = start;
    while (end < b.length && b[end] !== QUOTE) end++;
    if (end >= b.length) throw NOT_FAST;
    this.at = end + 1;
    const length = end - start;
    let field: Field;
    if (length === RESERVATION_ID.length && same(b, start, RESERVATION_ID)) field = Field.ReservationId;
    else if (length === MERCHANT_ID.length && same(b, start, MERCHANT_ID)) field = Field.MerchantId;
    else if (length === AMOUNT_CENTS.length && same(b, start, AMOUNT_CENTS)) field = Field.AmountCents;
    else if (length === TTL_MS.length && same(b, start, TTL_MS)) field = Field.TtlMs;
    else throw NOT_FAST;
    this.expect(COLON);
    return field;
  }

  /** A quoted id of 1–128 id bytes (no escape can appear: a backslash is not one). */
  id(): string {
    this.expect(QUOTE);
    const b = this.b;
    const start = this.at;
    let end = start;
    while (end < b.length && ID_BYTE[b[end]] === 1) end++;
    if (end >= b.length || b[end] !== QUOTE || end === start || end - start > ID_LENGTH_MAX) throw NOT_FAST;
    this.at = end + 1;
    return b.toString('latin1', start, end);
  }

  /** A plain decimal integer in [1, max]: no sign, fraction, exponent or leading zero. */
  integer(max: number): number {
    const first = this.peek();
    if (first < 0x31 || first > 0x39) throw NOT_FAST;
    const b = this.b;
    let at = this.at;
    let value = 0;
    let digits = 0;
    while (at < b.length && b[at] >= 0x30 && b[at] <= 0x39) {
      value = value * 10 + (b[at] - 0x30);
      at++;
      // Past 16 digits a double may have rounded: leave such numbers to JSON.parse and the schema.
      if (++digits > 16) throw NOT_FAST;
    }
    if (at < b.length && (b[at] === 0x2e || b[at] === 0x65 || b[at] === 0x45)) throw NOT_FAST;
    if (value > max) throw NOT_FAST;
    this.at = at;
    return value;
  }
}

function same(b: Buffer, start: number, word: Buffer): boolean {
  for (let k = 0; k < word.length; k++) if (b[start + k] !== word[k]) return false;
  return true;
}

function item(s: Scanner): ReserveCommand {
  s.expect(OPEN_BRACE);
  let seen = 0;
  let reservationId = '';
  let merchantId = '';
  let amountCents = 0;
  let ttlMs: number | undefined;
  while (true) {
    const field = s.key();
    if ((seen & field) !== 0) throw NOT_FAST;
    seen |= field;
    if (field === Field.ReservationId) reservationId = s.id();
    else if (field === Field.MerchantId) merchantId = s.id();
    else if (field === Field.AmountCents) amountCents = s.integer(Number.MAX_SAFE_INTEGER);
    else ttlMs = s.integer(TTL_MS_MAX);
    if (s.closes(CLOSE_BRACE)) break;
  }
  if ((seen & REQUIRED) !== REQUIRED) throw NOT_FAST;
  return { reservationId, merchantId, amountCents, ttlMs };
}

/** The command of a single reservation's body in the exact shape above; otherwise undefined. */
export function parseReservationFast(body: Buffer): ReserveCommand | undefined {
  return whole(body, item);
}

/** A batch body's commands, in order, when it has the exact shape above; otherwise undefined. */
export function parseBatchFast(body: Buffer): ReserveCommand[] | undefined {
  return whole(body, batch);
}

function batch(s: Scanner): ReserveCommand[] {
  const body = s.b;
  s.expect(OPEN_BRACE);
  s.expect(QUOTE);
  if (!(body.length - s.at > ITEMS.length && same(body, s.at, ITEMS) && body[s.at + ITEMS.length] === QUOTE))
    throw NOT_FAST;
  s.at += ITEMS.length + 1;
  s.expect(COLON);
  s.expect(OPEN_BRACKET);
  const commands: ReserveCommand[] = [];
  while (true) {
    if (commands.length === BATCH_ITEMS_MAX) throw NOT_FAST;
    commands.push(item(s));
    if (s.closes(CLOSE_BRACKET)) break;
  }
  s.expect(CLOSE_BRACE);
  return commands;
}

/** What `read` reads from the whole body (nothing but whitespace after it), or undefined if not the shape. */
function whole<T>(body: Buffer, read: (s: Scanner) => T): T | undefined {
  const s = new Scanner(body);
  try {
    const value = read(s);
    if (s.peek() !== -1) throw NOT_FAST;
    return value;
  } catch (error) {
    if (error === NOT_FAST) return undefined;
    throw error;
  }
}
