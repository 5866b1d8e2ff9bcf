/**
 * Held reservations by expiry time: a binary min-heap of (expiresAtMs, reservationId). Entries of holds
 * that were captured or released are dropped lazily when they reach the top, so resolving a hold costs
 * nothing here. Derived from state (an index), never logged.
 */
export class ExpiryQueue {
  private times: number[] = [];
  private ids: string[] = [];

  get size(): number {
    return this.times.length;
  }

  add(expiresAtMs: number, id: string): void {
    const times = this.times;
    const ids = this.ids;
    let i = times.length;
    times.push(expiresAtMs);
    ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent] <= expiresAtMs) break;
      times[i] = times[parent];
      ids[i] = ids[parent];
      i = parent;
    }
    times[i] = expiresAtMs;
    ids[i] = id;
  }

  /** The earliest expiry time queued, or undefined. */
  peekTime(): number | undefined {
    return this.times[0];
  }

  /**
   * Up to `limit` ids due at `nowMs` that are still live (per `isLive`). Does not remove them: the queue
   * changes only when the resulting record is applied (see `dropDue`), so decide stays pure.
   */
  due(nowMs: number, limit: number, isLive: (id: string) => boolean): string[] {
    const result: string[] = [];
    // Walk the heap without mutating it: a small explicit stack over the tree, pruned by time.
    const stack = this.times.length > 0 ? [0] : [];
    while (stack.length > 0 && result.length < limit) {
      const i = stack.pop()!;
      if (this.times[i] > nowMs) continue;
      if (isLive(this.ids[i])) result.push(this.ids[i]);
      const left = 2 * i + 1;
      if (left < this.times.length) stack.push(left);
      if (left + 1 < this.times.length) stack.push(left + 1);
    }
    return result;
  }

  /** Pops every entry due at `nowMs` whose hold is no longer live. */
  dropResolved(nowMs: number, isLive: (id: string) => boolean): void {
    while (this.times.length > 0 && this.times[0] <= nowMs && !isLive(this.ids[0])) this.pop();
  }

  private pop(): void {
    const times = this.times;
    const ids = this.ids;
    const lastTime = times.pop()!;
    const lastId = ids.pop()!;
    if (times.length === 0) return;
    let i = 0;
    const n = times.length;
    while (true) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && times[right] < times[left] ? right : left;
      if (times[child] >= lastTime) break;
      times[i] = times[child];
      ids[i] = ids[child];
      i = child;
    }
    times[i] = lastTime;
    ids[i] = lastId;
  }
}
