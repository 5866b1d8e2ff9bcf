/**
 * The funds-reservation workload every system in the embedded benchmarks runs, deterministic for a seed.
 *
 * - Merchants (`generateMerchants`, default 10,000) are credited an initial balance before the run. A seeded
 *   tenth of them (`rejectFraction`) are "tight": credited 1..1,000 cents, so they reject nearly every
 *   reservation they receive (amounts are 1..10,000) and hold only the odd small one. The rest are credited `MERCHANT_BALANCE_CENTS`, far more
 *   than any run can spend. Merchants are picked uniformly, so ~10% of reservations are rejected for
 *   insufficient funds at every point of a run, however long it lasts and whatever the system's throughput
 *   (a share that grew as balances drained would favour whichever system got further).
 * - Requests (`Workload.next()`): unique ids `${prefix}-${n}`, a uniformly chosen merchant, 1..10,000 cents.
 *   ~5% (`retryFraction`) are retries: the very same object (same id, same body) as a request issued at least
 *   `retryMinDistance` and at most `retryWindow` requests earlier, as a client would retry after a timeout.
 *   The idempotent path must return the recorded decision and reserve nothing twice.
 * - Semantics every system implements identically (`ReferenceLedger` is the executable statement): a known
 *   reservation id returns its recorded decision; otherwise, if available >= amount, the reservation is held
 *   (available -= amount, held += amount, the merchant's next payout sequence number, starting at 1, is
 *   assigned) else it is rejected; either decision is recorded under the id.
 *
 * Two streams built with the same merchants, seed and options issue the same merchants, amounts and retries
 * in the same order; the prefix only renames the ids (so several systems, or phases, never share an id).
 */
import { Prng } from '../../src/util/prng.ts';

export interface Reservation {
  reservationId: string;
  merchantId: string;
  amountCents: number;
}

/** The decision of a reservation, as every peer and the reference model return it. */
export interface Decision {
  status: 'held' | 'rejected';
  /** The merchant's payout sequence number (1, 2, ...) of a held reservation; absent when rejected. */
  sequence?: number;
}

/** A decision as a looser system may type it (Engram's target returns `status: string`). */
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

/** An embedded peer (SQLite, lmdb-js): a `Target` whose decisions are typed exactly. */
export interface Peer extends Target {
  submit(request: Reservation): Promise<Decision>;
  /** Durable commits (transactions) so far and the reservations they carried, where the peer can count them. */
  commits?(): { commits: number; reservations: number };
}

export interface Merchant {
  merchantId: string;
  /** Initial credit, in cents. */
  balanceCents: number;
}

export const DEFAULT_MERCHANTS = 10_000;
/** The balance of an untight merchant: more than any run can reserve (and exact as a double and an int64). */
export const MERCHANT_BALANCE_CENTS = 1_000_000_000_000;
export const MIN_AMOUNT_CENTS = 1;
export const MAX_AMOUNT_CENTS = 10_000;
/** A tight merchant is credited 1..TIGHT_BALANCE_MAX_CENTS. */
export const TIGHT_BALANCE_MAX_CENTS = 1_000;

export function merchantIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `merchant-${i}`);
}

export interface MerchantOptions {
  /** Seed of the choice of tight merchants and their balances (default 1). */
  seed?: number;
  /** Share of merchants credited only 1..1,000 cents, ~ the share of rejected reservations (default 0.1). */
  rejectFraction?: number;
}

/** The merchants every system is preloaded with: ids `merchant-${i}`, balances as described above. */
export function generateMerchants(count = DEFAULT_MERCHANTS, options: MerchantOptions = {}): Merchant[] {
  const rejectFraction = options.rejectFraction ?? 0.1;
  if (!(rejectFraction >= 0 && rejectFraction <= 1)) throw new RangeError('rejectFraction must be in [0, 1]');
  const prng = new Prng(options.seed ?? 1);
  // A seeded shuffle, so exactly round(count * rejectFraction) merchants are tight.
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const merchants = merchantIds(count).map((merchantId) => ({
    merchantId,
    balanceCents: MERCHANT_BALANCE_CENTS,
  }));
  const tight = Math.round(count * rejectFraction);
  for (let k = 0; k < tight; k++) merchants[order[k]].balanceCents = 1 + prng.int(TIGHT_BALANCE_MAX_CENTS);
  return merchants;
}

export interface WorkloadOptions {
  /** Share of requests that are retries of an earlier request (default 0.05). */
  retryFraction?: number;
  /** A retry repeats one of the last `retryWindow` requests issued (default 65,536). */
  retryWindow?: number;
  /**
   * ... but none of the last `retryMinDistance` (default 1,024), so that with up to that many requests in
   * flight the original has normally been decided: a client retries after a timeout, not at once.
   */
  retryMinDistance?: number;
}

/** A deterministic stream of reservation requests over a set of merchants. */
export class Workload {
  /** Requests issued so far, retries included. */
  issued = 0;
  /** Retries among them. */
  retries = 0;
  private readonly prng: Prng;
  private readonly ids: readonly string[];
  private readonly retryFraction: number;
  private readonly retryMinDistance: number;
  /**
   * The last `retryWindow` fresh requests as numbers (merchant index, amount), not objects: 65,536 live
   * request objects would be promoted and collected by the benchmark process's GC, and an embedded
   * benchmark charges its generator's GC pauses to the system under test.
   */
  private readonly ringMerchant: Int32Array;
  private readonly ringAmount: Int32Array;
  private readonly mask: number;
  private fresh = 0;

  constructor(
    merchants: readonly (string | Merchant)[],
    seed = 1,
    readonly prefix = 'r',
    options: WorkloadOptions = {},
  ) {
    if (merchants.length === 0) throw new RangeError('a workload needs at least one merchant');
    this.ids = merchants.map((m) => (typeof m === 'string' ? m : m.merchantId));
    this.prng = new Prng(seed);
    this.retryFraction = options.retryFraction ?? 0.05;
    this.retryMinDistance = Math.max(0, Math.floor(options.retryMinDistance ?? 1024));
    let capacity = 1;
    while (capacity < Math.max(1, options.retryWindow ?? 65_536)) capacity *= 2;
    this.ringMerchant = new Int32Array(capacity);
    this.ringAmount = new Int32Array(capacity);
    this.mask = capacity - 1;
    if (this.retryMinDistance >= capacity) throw new RangeError('retryMinDistance must be below retryWindow');
  }

  /** The next request. A retry is equal to the request issued before (same id, same body). */
  next(): Reservation {
    this.issued++;
    const u = this.prng.nextFloat();
    const eligible = this.fresh - this.retryMinDistance;
    if (u < this.retryFraction && eligible > 0) {
      const span = Math.min(eligible, this.ringMerchant.length - this.retryMinDistance);
      const n = this.fresh - 1 - this.retryMinDistance - this.prng.int(span);
      this.retries++;
      return this.request(n, this.ringMerchant[n & this.mask], this.ringAmount[n & this.mask]);
    }
    const merchant = this.prng.int(this.ids.length);
    const amount = MIN_AMOUNT_CENTS + this.prng.int(MAX_AMOUNT_CENTS - MIN_AMOUNT_CENTS + 1);
    this.ringMerchant[this.fresh & this.mask] = merchant;
    this.ringAmount[this.fresh & this.mask] = amount;
    return this.request(this.fresh++, merchant, amount);
  }

  private request(n: number, merchant: number, amountCents: number): Reservation {
    return { reservationId: `${this.prefix}-${n}`, merchantId: this.ids[merchant], amountCents };
  }

  /** Same as `next()` (the name the first benchmarks used). */
  take(): Reservation {
    return this.next();
  }

  /** The next `count` requests. */
  batch(count: number): Reservation[] {
    return Array.from({ length: count }, () => this.next());
  }
}

interface LedgerAccount {
  available: number;
  held: number;
  nextSequence: number;
}

/** The reference model: the semantics above in plain memory, to check every peer against. */
export class ReferenceLedger {
  readonly decisions = new Map<string, Decision>();
  private readonly accounts = new Map<string, LedgerAccount>();

  constructor(merchants: readonly Merchant[]) {
    for (const m of merchants)
      this.accounts.set(m.merchantId, { available: m.balanceCents, held: 0, nextSequence: 1 });
  }

  reserve(r: Reservation): Decision {
    const known = this.decisions.get(r.reservationId);
    if (known) return known;
    const account = this.accounts.get(r.merchantId);
    if (!account) throw new Error(`unknown merchant ${r.merchantId}`);
    let decision: Decision;
    if (account.available >= r.amountCents) {
      account.available -= r.amountCents;
      account.held += r.amountCents;
      decision = { status: 'held', sequence: account.nextSequence++ };
    } else decision = { status: 'rejected' };
    this.decisions.set(r.reservationId, decision);
    return decision;
  }

  account(merchantId: string): Readonly<LedgerAccount> | undefined {
    return this.accounts.get(merchantId);
  }
}
