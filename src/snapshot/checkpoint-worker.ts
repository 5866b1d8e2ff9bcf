import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { BlockingNodeFileSystem } from '../storage/node-file-system.ts';
import { prefaultedMemory } from '../util/prefaulted-memory.ts';
import { buildSnapshot } from './build.ts';

/**
 * Worker-thread entry: builds one snapshot off the event loop of the store. The definition is imported
 * from its module (functions cannot cross threads), so a store that wants non-blocking snapshots names
 * the module and export its definition lives in.
 */
export interface CheckpointJob {
  module: string;
  exportName: string;
  dataDir: string;
  targetLsn: number;
  keep: number;
  idempotency: Record<string, number>;
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
yieldCpuToTheStore();
// The rebuild replays in synchronous bursts that spares cannot keep up with (as a recovery does): a helper
// here only faulted memory in for nothing, beside the store's event loop (gate CPU at 10k/s: 106-120% of a
// core with it, 86% without).
prefaultedMemory.suspend();
try {
  const imported = await import(job.module);
  const definition = imported[job.exportName];
  if (!definition || typeof definition.initialState !== 'function') {
    throw new Error(`module ${job.module} has no store definition exported as '${job.exportName}'`);
  }
  const built = await buildSnapshot({
    // Its own thread does its I/O: the process's libuv thread pool is left to the store's group commits.
    fs: new BlockingNodeFileSystem(),
    dataDir: job.dataDir,
    definition,
    targetLsn: job.targetLsn,
    keep: job.keep,
    idempotency: job.idempotency,
  });
  parentPort!.postMessage({ ok: true, built });
} catch (error) {
  const e = error as Error & { code?: string; details?: unknown };
  parentPort!.postMessage({ ok: false, error: { message: e.message, code: e.code, details: e.details } });
}
