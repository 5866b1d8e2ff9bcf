import type { DecideContext } from './definition.ts';

/**
 * The context handed to `decide`, reused across commands so the hot path allocates nothing for it.
 * `random()` is a mulberry32 stream seeded from the record's seed, so it is reproducible from the log.
 */
export class DecideContextImpl<I> implements DecideContext<I> {
  lsn = 0;
  nowMs = 0;
  private randomState = 0;

  constructor(public indexes: I) {}

  reset(lsn: number, nowMs: number, seed: number): void {
    this.lsn = lsn;
    this.nowMs = nowMs;
    this.randomState = seed;
  }

  random(): number {
    this.randomState = (this.randomState + 0x6d2b79f5) | 0;
    let t = this.randomState;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
