/**
 * The reservation workload every target of bench:service runs, whatever the generator (wrk, redis-benchmark,
 * pgbench or ours): merchants `merchant-0 … merchant-{N-1}` credited with the same balance up front, then
 * reservations with a fresh id each (the decide-and-record path, not the idempotent replay), a merchant drawn
 * uniformly and an amount of 1–10,000 cents. The balance is large enough that no reservation of a run is
 * rejected, so every system does the same work: a hold, a sequence number, a durable record.
 */
export const MERCHANT_COUNT = 10_000;
export const MERCHANT_BALANCE_CENTS = 1_000_000_000_000;
export const AMOUNT_CENTS_MAX = 10_000;

export const merchantId = (index: number) => `merchant-${index}`;

export function merchantIds(count = MERCHANT_COUNT): string[] {
  return Array.from({ length: count }, (_, i) => merchantId(i));
}

export interface ReservationRequest {
  reservationId: string;
  merchantId: string;
  amountCents: number;
}

/** Deterministic for a seed; ids are `${prefix}${n}`, so a fresh prefix per phase keeps them unique. */
export class ReservationStream {
  private state: number;
  private counter = 0;

  constructor(
    private readonly prefix: string,
    seed: number,
    private readonly merchants = MERCHANT_COUNT,
  ) {
    this.state = seed >>> 0 || 0x9e3779b9;
    this.prefixBytes = Buffer.from(prefix, 'latin1');
  }

  /** xorshift32: a few ns, no allocation; plenty for spreading load over merchants. */
  private random(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  next(): ReservationRequest {
    return {
      reservationId: `${this.prefix}${this.counter++}`,
      merchantId: merchantId(this.random() % this.merchants),
      amountCents: 1 + (this.random() % AMOUNT_CENTS_MAX),
    };
  }

  /**
   * The next reservation as the JSON of `reservationJson(next())`, written into `out` at `at` (room for
   * the prefix plus JSON_BYTES_MAX); returns the end. Batch bodies are built this way: with
   * strings, the generator spent ~10 ms of CPU on each 8,190-item body, on the cores the service shares.
   */
  writeJson(out: Buffer, at: number): number {
    let o = put(out, at, JSON_ID);
    o = put(out, o, this.prefixBytes);
    o = writeDecimal(out, o, this.counter++);
    o = put(out, o, JSON_MERCHANT);
    o = writeDecimal(out, o, this.random() % this.merchants);
    o = put(out, o, JSON_AMOUNT);
    o = writeDecimal(out, o, 1 + (this.random() % AMOUNT_CENTS_MAX));
    out[o++] = 0x7d;
    return o;
  }

  private readonly prefixBytes: Buffer;

  get prefixLength(): number {
    return this.prefixBytes.length;
  }

  /** Bytes `writeJson` writes beyond the prefix at most: 64 fixed, and three numbers below 2^31 (10 digits each). */
  static readonly JSON_BYTES_MAX = 96;
}

const JSON_ID = Buffer.from('{"reservation_id":"');
const JSON_MERCHANT = Buffer.from(`","merchant_id":"${merchantId(0).slice(0, -1)}`);
const JSON_AMOUNT = Buffer.from('","amount_cents":');

/** A few bytes: a loop, where Buffer.copy's call would cost more than the copy. */
function put(out: Buffer, at: number, bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) out[at + i] = bytes[i];
  return at + bytes.length;
}

/** A non-negative integer below 2^31 (counters, indexes, amounts) in decimal at `at`; returns the end. */
function writeDecimal(out: Buffer, at: number, value: number): number {
  let digits = 1;
  for (let v = value; v >= 10; v = (v / 10) | 0) digits++;
  const end = at + digits;
  let v = value;
  for (let o = end - 1; o >= at; o--) {
    const q = (v / 10) | 0;
    out[o] = 0x30 + v - q * 10;
    v = q;
  }
  return end;
}
