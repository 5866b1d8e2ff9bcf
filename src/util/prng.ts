import assert from 'node:assert/strict';

/** 2^32: the number of distinct `nextU32` values, and the divisor that maps them onto [0, 1). */
const U32_RANGE = 4294967296;
/**
 * Rounds discarded after seeding: sfc32's state starts mostly constant, and these rounds spread the seed's
 * bits through all four words so that neighbouring seeds (1, 2, 3...) give unrelated streams.
 */
const WARM_UP_ROUNDS = 16;

/**
 * A small seeded PRNG (sfc32, Chris Doty-Humphrey's "small fast chaotic" generator): 32-bit integer
 * arithmetic only (`| 0`, `>>> 0`, shifts), so the stream is identical across runs, platforms and Node
 * versions, which is what lets a failing simulation seed be replayed anywhere. Not for secrets.
 *
 * The stream for a given seed is part of the project's test fixtures (simulation seeds, benchmarks):
 * changing the algorithm or the seeding changes every recorded seed, so don't, without re-running them.
 */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  /** Also sfc32's counter: it guarantees a period of at least 2^32 whatever the seed. */
  private d: number;

  /** `seed` is reduced to an unsigned 32-bit integer; use integers to keep seeds meaningful. */
  constructor(seed: number) {
    assert.ok(Number.isFinite(seed), `Prng seed must be a finite number, got ${seed}`);
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < WARM_UP_ROUNDS; i++) this.nextU32();
  }

  /** Uniform integer in [0, 2^32). */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1), with 32 bits of resolution. */
  nextFloat(): number {
    return this.nextU32() / U32_RANGE;
  }

  /** Uniform integer in [0, maxExclusive); `maxExclusive` is an integer in [1, 2^32]. */
  int(maxExclusive: number): number {
    // Checked before any message is built: this runs for every draw of every workload and simulation, and
    // a template literal per call was ~200 bytes of garbage per benchmark request.
    if (!(Number.isInteger(maxExclusive) && maxExclusive >= 1 && maxExclusive <= U32_RANGE)) {
      assert.fail(`Prng.int bound must be an integer in [1, 2^32], got ${maxExclusive}`);
    }
    return Math.floor(this.nextFloat() * maxExclusive);
  }

  /** True with probability `p` (0 never, 1 always). */
  chance(p: number): boolean {
    return this.nextFloat() < p;
  }

  pick<T>(items: readonly T[]): T {
    assert.ok(items.length > 0, 'Prng.pick needs at least one item');
    return items[this.int(items.length)];
  }

  /**
   * An independent stream derived from this one (consumes one value of this stream): give each
   * subsystem its own fork so that adding draws in one does not shift the others.
   */
  fork(): Prng {
    return new Prng(this.nextU32());
  }
}
