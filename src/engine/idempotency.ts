/**
 * The idempotency window: key → the recorded decision. It is part of the state (snapshotted, replayed,
 * identical on replicas), so it changes only while a record is applied, and evicts deterministically:
 * by count, and by age measured in record time (never the wall clock).
 */
export interface IdempotencyEntry {
  lsn: number;
  nowMs: number;
  fingerprintA: number;
  fingerprintB: number;
  commandId: number;
  result: unknown;
}

export interface IdempotencyLimits {
  /** Entries kept at most; the oldest is evicted first. */
  maxEntries: number;
  /** Entries older than this (in record time) are evicted. */
  maxAgeMs: number;
}

export const DEFAULT_IDEMPOTENCY_LIMITS: IdempotencyLimits = {
  maxEntries: 10_000_000,
  maxAgeMs: 7 * 24 * 3600 * 1000,
};

export class IdempotencyWindow {
  /** Insertion order is LSN order, so the first entry is always the oldest. */
  readonly entries = new Map<string, IdempotencyEntry>();

  constructor(readonly limits: IdempotencyLimits) {}

  get(key: string): IdempotencyEntry | undefined {
    return this.entries.get(key);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Records a decision and evicts what the limits no longer allow. Called only while applying a record. */
  record(key: string, entry: IdempotencyEntry): void {
    this.entries.set(key, entry);
    this.evict(entry.nowMs);
  }

  private evict(nowMs: number): void {
    const { maxEntries, maxAgeMs } = this.limits;
    const oldestAllowedMs = nowMs - maxAgeMs;
    while (this.entries.size > 0) {
      const first = this.entries.entries().next().value as [string, IdempotencyEntry];
      if (this.entries.size <= maxEntries && first[1].nowMs >= oldestAllowedMs) return;
      this.entries.delete(first[0]);
    }
  }
}
