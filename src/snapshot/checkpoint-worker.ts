import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { BlockingNodeFileSystem } from '../storage/node-file-system.ts';
import { prefaultedMemory } from '../util/prefaulted-memory.ts';
import { Checkpointer, type SnapshotBuilt } from './build.ts';
import { CATCH_UP_CPU_SHARE, ReplayPacer } from './replay-pacer.ts';

/**
 * Worker-thread entry: builds one snapshot off the event loop of the store. The definition is imported
 * from its module (functions cannot cross threads), so a store that wants non-blocking snapshots names
 * the module and export its definition lives in.
 */
export interface CheckpointJob {
  module: string;
  exportName: string;
  dataDir: string;
  /** One snapshot at this LSN, then exit (unless `resident`). */
  targetLsn: number;
  keep: number;
  idempotency: Record<string, number>;
  /** Stay, keep the state, and follow the log on request (decision 017). */
  resident: boolean;
  /**
   * One Int32 the store sets to 1 when it asks a resident worker for a snapshot: a paced catch-up then runs
   * at full speed, as the snapshot waits for it. The worker clears it once the snapshot is written.
   */
  hurry?: SharedArrayBuffer;
}

/**
 * To a resident worker: follow the durable log to `lsn`, paced (background work, replay-pacer.ts), or
 * write a snapshot at `targetLsn`.
 */
export type CheckpointRequest =
  | { type: 'catchUp'; id: number; lsn: number }
  | { type: 'snapshot'; id: number; targetLsn: number };

export interface CheckpointFailure {
  message: string;
  code?: string;
  details?: unknown;
}

/** From the worker: a request's outcome (id 0: the one-shot snapshot, or a failure to start). */
export interface CheckpointReply {
  id: number;
  built?: SnapshotBuilt;
  error?: CheckpointFailure;
}

/**
 * The lowest CPU priority for this thread (on Linux, setpriority on "this process" applies to the calling
 * thread only): building a snapshot is background work, and on a machine with few cores it must not take
 * time slices from the event loop that acknowledges commands. Best effort: a platform may refuse.
 */
function yieldCpuToTheStore(): void {
  try {
    setPriority(0, 19);
  } catch {
    // Not permitted or not supported: the snapshot still gets built, only at normal priority.
  }
}

const job = workerData as CheckpointJob;
const hurry = job.hurry ? new Int32Array(job.hurry) : undefined;
yieldCpuToTheStore();
// The rebuild replays in synchronous bursts that spares cannot keep up with (as a recovery does): a helper
// here only faulted memory in for nothing, beside the store's event loop (gate CPU at 10k/s: 106-120% of a
// core with it, 86% without).
prefaultedMemory.suspend();

function reportable(error: unknown): CheckpointFailure {
  const e = error as Error & { code?: string; details?: unknown };
  return { message: e.message, code: e.code, details: e.details };
}

try {
  const imported = await import(job.module);
  const definition = imported[job.exportName];
  if (!definition || typeof definition.initialState !== 'function') {
    throw new Error(`module ${job.module} has no store definition exported as '${job.exportName}'`);
  }
  const checkpointer = new Checkpointer({
    // Its own thread does its I/O: the process's libuv thread pool is left to the store's group commits.
    fs: new BlockingNodeFileSystem(),
    dataDir: job.dataDir,
    definition,
    keep: job.keep,
    idempotency: job.idempotency,
    mapLastSegment: job.resident,
    pacer: new ReplayPacer(CATCH_UP_CPU_SHARE, undefined, hurry),
  });
  if (job.resident) {
    parentPort!.on('message', (request: CheckpointRequest) => {
      const work =
        request.type === 'catchUp'
          ? checkpointer.catchUp(request.lsn, { paced: true }).then(() => undefined)
          : checkpointer.snapshot(request.targetLsn).finally(() => hurry && Atomics.store(hurry, 0, 0));
      work.then(
        (built) => parentPort!.postMessage({ id: request.id, built } satisfies CheckpointReply),
        (error: unknown) =>
          parentPort!.postMessage({ id: request.id, error: reportable(error) } satisfies CheckpointReply),
      );
    });
  } else {
    const built = await checkpointer.snapshot(job.targetLsn);
    parentPort!.postMessage({ id: 0, built } satisfies CheckpointReply);
  }
} catch (error) {
  parentPort!.postMessage({ id: 0, error: reportable(error) } satisfies CheckpointReply);
}
