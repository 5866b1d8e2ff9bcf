import { OverloadedError } from '../../src/errors.ts';
import type { GateStore } from './app.ts';

const CHECK_INTERVAL_MS = 50;
/** Holds expired per record: keeps one record small. */
const EXPIRE_LIMIT = 1000;

export interface ExpiryLog {
  error(obj: unknown, msg: string): void;
}

/**
 * Expires unresolved holds past their ttl through logged `expire` records (so replay and replicas expire
 * exactly the same holds). Cheap when idle: one look at the expiry index per interval; a record only when
 * the earliest expiry is due. Runs one expiry at a time; a backlog drains in records of 1000.
 */
export class ExpiryTimer {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly log: ExpiryLog) {}

  start(store: GateStore): void {
    this.timer = setInterval(() => void this.tick(store), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(store: GateStore): Promise<void> {
    // A stopped write path is reported once by the store; retrying every tick would only add noise.
    if (this.running || store.failed) return;
    const next = store.readStale((_state, indexes) => indexes.expiry.peekTime());
    if (next === undefined || next > Date.now()) return;
    this.running = true;
    try {
      let expired = EXPIRE_LIMIT;
      while (expired === EXPIRE_LIMIT && this.timer !== undefined)
        expired = (await store.execute('expire', { limit: EXPIRE_LIMIT })).expired;
    } catch (error) {
      // Overloaded: the next tick retries; holds expire a little late, never early.
      if (!(error instanceof OverloadedError) && !store.failed)
        this.log.error({ err: error }, 'expiring holds failed');
    } finally {
      this.running = false;
    }
  }
}
