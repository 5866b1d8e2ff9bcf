/** A caller waiting for an LSN to become durable, with the value to resolve it with. */
export interface Waiter {
  lsn: number;
  value: unknown;
  resolve: (value: any) => void;
  reject: (error: unknown) => void;
  startMs: number;
  commandName: string | undefined;
}

/**
 * Callers waiting on durability, in LSN order (records are appended in LSN order, so pushing keeps the
 * queue sorted). Resolving a prefix is O(resolved); the array is compacted lazily.
 */
export class WaiterQueue {
  private items: Waiter[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  /**
   * Queues a waiter. A waiter for an LSN below the newest queued one (a retry of an older, still pending
   * command, or a read) waits for that newer LSN instead: later durability implies earlier durability, and
   * the queue stays sorted without a search.
   */
  push(waiter: Waiter): void {
    if (this.size > 0) {
      const last = this.items[this.items.length - 1];
      if (waiter.lsn < last.lsn) waiter.lsn = last.lsn;
    }
    this.items.push(waiter);
  }

  /** Removes and returns, one by one, every waiter with lsn <= `lsn`. */
  resolveUpTo(lsn: number, each: (waiter: Waiter) => void): void {
    const items = this.items;
    while (this.head < items.length && items[this.head].lsn <= lsn) {
      const waiter = items[this.head];
      items[this.head++] = undefined as unknown as Waiter;
      each(waiter);
    }
    if (this.head === items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
  }

  drain(each: (waiter: Waiter) => void): void {
    this.resolveUpTo(Number.POSITIVE_INFINITY, each);
  }
}
