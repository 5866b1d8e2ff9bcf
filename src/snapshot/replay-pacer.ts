/**
 * Paces a replay that nobody waits for to a share of one core: after each burst of `burstMs`, the thread
 * sleeps as long as keeps it at `share` of the time. A resident checkpoint worker's catch-up after a start
 * (decision 017) replays up to the whole log at full speed otherwise, and on a two-core machine the store's
 * write p99 meanwhile was 2.5-7× its usual; its snapshot load, which faults in fresh memory at a gigabyte in
 * a few seconds, is paced the same way (`tick(units)` from the load's loops). The sleep blocks the thread (Atomics.wait), which only a worker
 * should do; it ends at once when `hurry` is set, as the store does when it asks for a snapshot.
 */
export class ReplayPacer {
  private readonly hurry: Int32Array;
  private burstStartMs = 0;
  private countdown = 0;
  /** Time slept so far, in all runs. */
  sleptMs = 0;

  constructor(
    readonly share: number,
    private readonly burstMs = 2,
    hurry?: Int32Array,
  ) {
    if (!(share > 0 && share <= 1)) {
      throw new RangeError(`a replay pacer's share of the CPU must be in (0, 1], got ${share}`);
    }
    this.hurry = hurry ?? new Int32Array(new SharedArrayBuffer(4));
  }

  /** Starts a paced run: the first burst begins now. */
  begin(): void {
    this.burstStartMs = performance.now();
    this.countdown = RECORDS_PER_CLOCK_READ;
  }

  /**
   * Called after each piece of work, with its size in about microseconds (a record replayed is one); sleeps
   * when the burst is over. The clock is read once 64 units have been done.
   */
  tick(units = 1): void {
    this.countdown -= units;
    if (this.countdown > 0) return;
    this.countdown = RECORDS_PER_CLOCK_READ;
    const busyMs = performance.now() - this.burstStartMs;
    if (busyMs < this.burstMs) return;
    if (Atomics.load(this.hurry, 0) === 0 && this.share < 1) {
      Atomics.wait(this.hurry, 0, 0, (busyMs * (1 - this.share)) / this.share);
      const now = performance.now();
      this.sleptMs += now - this.burstStartMs - busyMs;
      this.burstStartMs = now;
      return;
    }
    this.burstStartMs = performance.now();
  }
}

const RECORDS_PER_CLOCK_READ = 64;

/** The share of a core a resident worker's catch-up takes: decision 003's 30% duty cycle, measured there. */
export const CATCH_UP_CPU_SHARE = 0.3;
