/**
 * Virtual time and randomness for the crash simulation, so that a seed replays exactly.
 *
 * The engine reads time through the globals (`setTimeout` for the batch and interval flush policies,
 * `setInterval` for the snapshot scheduler, `performance.now()` and `Date.now()` for ages and delays) and
 * draws record seeds from `Math.random()`. With the real ones, the order of a flush timer against the
 * simulated disk's I/O (which advances by `setImmediate` ticks) depends on how fast the machine is, and a
 * failing seed would not fail again. While installed, this replaces them: time moves only when the
 * simulation calls `advance`, timers fire from there in deadline order (ties in creation order), and
 * `Math.random` is a seeded stream.
 *
 * Install around one seed and uninstall in a `finally`: the globals are process-wide. Handles created by
 * real timers before installation still clear through the real functions.
 */
import { Prng } from '../../src/util/prng.ts';

interface VirtualTimer {
  id: number;
  dueMs: number;
  delayMs: number;
  /** Set for intervals: the period to reschedule with. */
  periodMs: number | undefined;
  callback: () => void;
}

/** What a virtual timer returns in place of a `NodeJS.Timeout`: enough of its surface for the engine. */
class VirtualTimerHandle {
  constructor(
    readonly id: number,
    private readonly time: VirtualTime,
  ) {}
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  hasRef(): boolean {
    return false;
  }
  refresh(): this {
    this.time.refresh(this.id);
    return this;
  }
  [Symbol.toPrimitive](): number {
    return this.id;
  }
}

/** The epoch `Date.now()` reports at virtual time 0: fixed, so record timestamps are identical per seed. */
const EPOCH_MS = Date.UTC(2030, 0, 1);
/** Timers a single `advance` may fire: a timer re-arming itself at delay 0 must not loop forever. */
const FIRINGS_PER_ADVANCE_MAX = 100_000;

export class VirtualTime {
  nowMs = 0;
  private readonly timers = new Map<number, VirtualTimer>();
  private nextId = 1;
  private readonly random: Prng;
  private saved: (() => void) | undefined;

  constructor(seed: number) {
    this.random = new Prng(seed);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  install(): void {
    if (this.saved) return;
    const g = globalThis as Record<string, unknown>;
    const names = ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] as const;
    const originals = names.map((name) => g[name]);
    const realClear = globalThis.clearTimeout;
    const realClearInterval = globalThis.clearInterval;
    const dateNow = Date.now;
    const perfNow = performance.now;
    const mathRandom = Math.random;
    const clear = (real: (h: unknown) => void) => (handle: unknown) => {
      if (handle instanceof VirtualTimerHandle) this.timers.delete(handle.id);
      else real(handle);
    };
    g.setTimeout = (callback: (...args: unknown[]) => void, delayMs?: number, ...args: unknown[]) =>
      this.add(() => callback(...args), delayMs, undefined);
    g.setInterval = (callback: (...args: unknown[]) => void, delayMs?: number, ...args: unknown[]) =>
      this.add(() => callback(...args), delayMs, Math.max(1, Number(delayMs) || 1));
    g.clearTimeout = clear(realClear as (h: unknown) => void);
    g.clearInterval = clear(realClearInterval as (h: unknown) => void);
    Date.now = () => EPOCH_MS + Math.floor(this.nowMs);
    performance.now = () => this.nowMs;
    Math.random = () => this.random.nextFloat();
    this.saved = () => {
      names.forEach((name, i) => {
        g[name] = originals[i];
      });
      Date.now = dateNow;
      performance.now = perfNow;
      Math.random = mathRandom;
    };
  }

  /** Restores the real globals and drops every virtual timer (they belong to the finished seed). */
  uninstall(): void {
    this.saved?.();
    this.saved = undefined;
    this.timers.clear();
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in deadline order. */
  advance(ms: number): void {
    const targetMs = this.nowMs + ms;
    for (let fired = 0; ; fired++) {
      if (fired >= FIRINGS_PER_ADVANCE_MAX)
        throw new Error(`virtual time: more than ${FIRINGS_PER_ADVANCE_MAX} timers fired in one advance`);
      const next = this.nextDue();
      if (!next || next.dueMs > targetMs) break;
      if (next.dueMs > this.nowMs) this.nowMs = next.dueMs;
      if (next.periodMs === undefined) this.timers.delete(next.id);
      else next.dueMs = this.nowMs + next.periodMs;
      next.callback();
    }
    this.nowMs = targetMs;
  }

  refresh(id: number): void {
    const timer = this.timers.get(id);
    if (timer) timer.dueMs = this.nowMs + timer.delayMs;
  }

  private add(callback: () => void, delayMs: number | undefined, periodMs: number | undefined) {
    const id = this.nextId++;
    const delay = Math.max(0, Number(delayMs) || 0);
    this.timers.set(id, { id, dueMs: this.nowMs + delay, delayMs: delay, periodMs, callback });
    return new VirtualTimerHandle(id, this);
  }

  private nextDue(): VirtualTimer | undefined {
    let best: VirtualTimer | undefined;
    for (const timer of this.timers.values())
      if (!best || timer.dueMs < best.dueMs || (timer.dueMs === best.dueMs && timer.id < best.id))
        best = timer;
    return best;
  }
}
