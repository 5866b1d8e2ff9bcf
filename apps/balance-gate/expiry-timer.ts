import type { GateStore } from './app.ts';

const CHECK_INTERVAL_MS = 50;
/** Holds expired per record: keeps one record small. */
const EXPIRE_LIMIT = 1000;

/**
 * Expires unresolved holds past their ttl through logged `expire` records (so replay and replicas expire
 * exactly the same holds). Cheap when idle: one look at the expiry index per interval.
 */
export class ExpiryTimer {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly onError: (error: unknown) => void) {}

  start(store: GateStore): void {
    this.timer = setInterval(() => void this.tick(store), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(store: GateStore): Promise<void> {
    if (this.running || store.failed) return;
    const next = store.readStale((_state, indexes) => indexes.expiry.peekTime());
    if (next === undefined || next > Date.now()) return;
    this.running = true;
    try {
      let expired = EXPIRE_LIMIT;
      while (expired === EXPIRE_LIMIT)
        expired = (await store.execute('expire', { limit: EXPIRE_LIMIT })).expired;
    } catch (error) {
      this.onError(error);
    } finally {
      this.running = false;
    }
  }
}
