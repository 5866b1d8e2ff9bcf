/**
 * Engram as a benchmark target: the balance-gate state machine embedded in-process, with the same
 * submit-one-reservation interface as the peers (SQLite, lmdb-js), plus the group-commit figures only a
 * write-ahead log with group commit has (fsyncs/s, mean group size).
 */
import { balanceGateDefinition } from '../apps/balance-gate/domain.ts';
import type { AckPoint } from '../src/engine/ack-point.ts';
import { Store } from '../src/engine/store.ts';
import { OverloadedError } from '../src/errors.ts';

export interface ReservationRequest {
  reservationId: string;
  merchantId: string;
  amountCents: number;
}

type Outcome = { status: string; sequence?: number };

export interface EngramTarget {
  name: string;
  submit(request: ReservationRequest): Promise<Outcome>;
  /**
   * Many reservations under one acknowledgement (`executeMany`), as balance-gate's batch endpoint submits
   * them: one promise per batch, each item with its own result. Overload refuses the batch before any item
   * is decided, so the batch is retried whole after the advised wait.
   */
  submitMany(requests: ReservationRequest[]): Promise<unknown>;
  /**
   * Group commits and records since the last call (then reset), and how long each group's write took to
   * become durable (O_DSYNC write or write + fdatasync: what the log itself met on the disk).
   */
  takeFlushStats(): { flushes: number; records: number; elapsedMs: number; writeMs: number[] };
  close(): Promise<void>;
}

export async function openEngramTarget(
  dir: string,
  ackPoint: AckPoint,
  merchants: { merchantId: string; amountCents: number }[],
): Promise<EngramTarget> {
  let flushes = 0;
  let records = 0;
  let writeMs: number[] = [];
  let sinceMs = performance.now();
  const store = await Store.open(balanceGateDefinition, {
    dir,
    ackPoint,
    observer: {
      onFlush(stats) {
        flushes++;
        records += stats.records;
        writeMs.push(stats.syncMs);
      },
    },
  });
  const credits = merchants.map((m) => ({
    merchantId: m.merchantId,
    transferId: `seed-${m.merchantId}`,
    amountCents: m.amountCents,
  }));
  for (let i = 0; i < credits.length; i += 8190)
    await store.executeMany('credit', credits.slice(i, i + 8190));
  await store.sync();
  // At the memory ack point nothing waits for the disk, so a producer faster than the disk meets
  // backpressure; a well-behaved client waits the advised time and retries. The common path adds only a
  // `.catch` to the store's promise, as a peer's submit returns its library's: an async wrapper with an
  // await cost 4.5-5.9% of the disk throughput here (three alternating pairs).
  const retryOverloaded = async <T>(first: unknown, again: () => Promise<T>): Promise<T> => {
    let error = first;
    for (;;) {
      if (!(error instanceof OverloadedError)) throw error;
      const delayMs = error.retryAfterMs;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      try {
        return await again();
      } catch (next) {
        error = next;
      }
    }
  };
  return {
    name: `engram (${ackPoint})`,
    submit(request) {
      // The retry's closure is made only when the store refused: the common path allocates one arrow, as before.
      return store
        .execute('reserve', request)
        .catch((error) => retryOverloaded(error, () => store.execute('reserve', request)));
    },
    submitMany(requests) {
      return store
        .executeMany('reserve', requests)
        .catch((error) => retryOverloaded(error, () => store.executeMany('reserve', requests)));
    },
    takeFlushStats() {
      const now = performance.now();
      const result = { flushes, records, elapsedMs: now - sinceMs, writeMs };
      flushes = 0;
      records = 0;
      writeMs = [];
      sinceMs = now;
      return result;
    },
    close: () => store.close(),
  };
}
