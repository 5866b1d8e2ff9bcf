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
}
