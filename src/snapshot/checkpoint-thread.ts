import { Worker } from 'node:worker_threads';
import { EngramError } from '../errors.ts';
import type { SnapshotBuilt } from './build.ts';
import type {
  CheckpointFailure,
  CheckpointJob,
  CheckpointReply,
  CheckpointRequest,
} from './checkpoint-worker.ts';

interface Pending {
  resolve(built: SnapshotBuilt | undefined): void;
  reject(error: Error): void;
}

function asError(failure: CheckpointFailure | undefined): EngramError {
  return new EngramError(
    (failure?.code as never) ?? 'storage_io',
    failure?.message ?? 'snapshot worker failed',
    (failure?.details as Record<string, unknown> | undefined) ?? {},
  );
}

/**
 * The store's side of a checkpoint worker (checkpoint-worker.ts): one snapshot and exit, or, `resident`, a
 * worker that keeps its state and follows the log between snapshots. Once the worker fails or exits, every
 * request fails with that error; the scheduler then starts a new one.
 */
export class CheckpointThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private readonly hurry = new Int32Array(new SharedArrayBuffer(4));

  /** `onFailure` hears of failures no request is waiting for (a resident worker that could not start). */
  constructor(
    job: CheckpointJob,
    private readonly onFailure?: (error: Error) => void,
  ) {
    this.worker = new Worker(new URL('./checkpoint-worker-entry.mjs', import.meta.url), {
      workerData: { ...job, hurry: this.hurry.buffer },
    });
    // A worker waiting for its next request must not keep the process alive.
    if (job.resident) this.worker.unref();
    this.worker.on('message', (reply: CheckpointReply) => {
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error === undefined) waiting?.resolve(reply.built);
      else if (waiting) waiting.reject(asError(reply.error));
      // A resident worker that could not start (its definition did not import) says so, then exits.
      else this.fail(asError(reply.error), true);
    });
    this.worker.once('error', (error) => this.fail(error, true));
    this.worker.once('exit', (code) =>
      this.fail(new Error(`snapshot worker exited with code ${code} before reporting`), job.resident),
    );
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** The snapshot a one-shot worker was started for. */
  async result(): Promise<SnapshotBuilt> {
    return (await this.waitFor(0))!;
  }

  /** Asks a resident worker for a snapshot at `targetLsn`. */
  async snapshot(targetLsn: number): Promise<SnapshotBuilt> {
    const id = this.nextId++;
    const result = this.waitFor(id);
    if (!this.failure) {
      // A paced catch-up still running ahead of the snapshot finishes at full speed.
      Atomics.store(this.hurry, 0, 1);
      Atomics.notify(this.hurry, 0);
      this.worker.postMessage({ type: 'snapshot', id, targetLsn } satisfies CheckpointRequest);
    }
    return (await result)!;
  }

  /**
   * Asks a resident worker to follow the log to `lsn` (a durable group end), at a share of a core (the
   * background pace, replay-pacer.ts) unless a snapshot is asked for meanwhile; settles when it has.
   */
  async catchUp(lsn: number): Promise<void> {
    const id = this.nextId++;
    const result = this.waitFor(id);
    if (!this.failure) this.worker.postMessage({ type: 'catchUp', id, lsn } satisfies CheckpointRequest);
    await result;
  }

  async terminate(): Promise<void> {
    this.fail(new Error('snapshot worker stopped: the store is closing'), false);
    await this.worker.terminate();
  }

  private waitFor(id: number): Promise<SnapshotBuilt | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  private fail(error: Error, report: boolean): void {
    if (this.failure) return;
    this.failure = error;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const request of waiting) request.reject(error);
    if (report && waiting.length === 0) this.onFailure?.(error);
  }
}
