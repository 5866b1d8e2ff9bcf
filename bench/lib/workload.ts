/**
 * The funds-reservation workload every system in bench:engine runs: merchants credited up front, then
 * reservations with unique ids, ~5% of them retries of an earlier id with the same body (the idempotent
 * path: the recorded decision comes back, nothing is reserved twice). Deterministic for a seed.
 */
import { Prng } from '../../src/util/prng.ts';

export interface Reservation {
  reservationId: string;
  merchantId: string;
  amountCents: number;
}

export interface Outcome {
  status: string;
  sequence?: number;
}

/** A system under test: one reservation in, its decision out once durable at the system's promise. */
export interface Target {
  name: string;
  submit(request: Reservation): Promise<Outcome>;
  close(): Promise<void>;
}

export const MERCHANT_BALANCE_CENTS = 1_000_000_000_000;

export function merchantIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `merchant-${i}`);
}

export class Workload {
  private readonly prng: Prng;
  private readonly issued: Reservation[] = [];
  private next = 0;

  constructor(
    readonly merchants: readonly string[],
    seed: number,
    readonly prefix: string,
  ) {
    this.prng = new Prng(seed);
  }

  /** The next request; precomputed strings, like ids parsed from a request body. */
  take(): Reservation {
    if (this.issued.length > 100 && this.prng.chance(0.05))
      return this.issued[this.prng.int(this.issued.length)];
    const request = {
      reservationId: `${this.prefix}-${this.next++}`,
      merchantId: this.merchants[this.prng.int(this.merchants.length)],
      amountCents: 1 + this.prng.int(10_000),
    };
    if (this.issued.length < 100_000) this.issued.push(request);
    return request;
  }
}
