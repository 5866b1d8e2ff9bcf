import { Worker } from 'node:worker_threads';
import type { AnyEventDefs, StoreDefinition } from '../engine/definition.ts';
import type { IdempotencyLimits } from '../engine/idempotency.ts';
import { EngramError } from '../errors.ts';
import { compactLog } from '../log/compaction.ts';
import type { FileSystem } from '../storage/file-system.ts';
import { buildSnapshot, type SnapshotBuilt, walDir } from './build.ts';
import type { CheckpointJob } from './checkpoint-worker.ts';

export interface SnapshotPolicy {
  /** Take a snapshot when this long has passed since the last one (and the log moved). */
  everyMs?: number;
  /** ... or when this many log bytes were written since the last one, whichever comes first. */
  everyLogBytes?: number;
  /** Snapshots kept on disk (the newest). */
  keep?: number;
  /** Log records kept below the oldest kept snapshot (for lagging replicas and tools). */
  retainLogRecords?: number;
  /**
   * Build snapshots in a worker thread, off the store's event loop. The worker imports the definition
   * from `module` (a file URL or path) under `exportName`. Without it, snapshots are built in-process:
   * correct and point-in-time, but their CPU work shares the event loop with commands.
   */
  worker?: { module: string | URL; exportName: string };
}

export const DEFAULT_SNAPSHOT_POLICY = {
  everyMs: 5 * 60_000,
  everyLogBytes: 256 * 1024 * 1024,
  keep: 2,
  retainLogRecords: 0,
};

const CHECK_INTERVAL_MS = 1000;

export interface SnapshotSchedulerHost {
  fs: FileSystem;
  dataDir: string;
  definition: StoreDefinition<any, AnyEventDefs<any>, any, any>;
  idempotency: Partial<IdempotencyLimits>;
  /** The newest LSN that is durable: what a snapshot may cover. */
  lsnDurable(): number;
  onSnapshot(built: SnapshotBuilt, compaction: { deleted: string[]; bytesFreed: number }): void;
  onSnapshotError(error: EngramError): void;
}

/**
 * Decides when to snapshot (every T or every N log bytes, whichever first, or on demand), runs one build at
 * a time, then compacts the log below the oldest kept snapshot. Control plane only: nothing here runs on
 * the command path.
 */
export class SnapshotScheduler {
  private readonly policy: Required<Omit<SnapshotPolicy, 'worker'>> & Pick<SnapshotPolicy, 'worker'>;
  private running: Promise<SnapshotBuilt> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private logBytesSince = 0;
  lastSnapshotLsn: number;
  lastSnapshotAtMs: number;

  constructor(
    private readonly host: SnapshotSchedulerHost,
    policy: SnapshotPolicy,
    lastSnapshot: { lsn: number; createdAtMs: number } | undefined,
    private readonly automatic: boolean,
  ) {
    this.policy = { ...DEFAULT_SNAPSHOT_POLICY, ...policy };
    this.lastSnapshotLsn = lastSnapshot?.lsn ?? 0;
    this.lastSnapshotAtMs = lastSnapshot?.createdAtMs ?? Date.now();
    if (automatic) {
      this.timer = setInterval(() => this.check(), Math.min(CHECK_INTERVAL_MS, this.policy.everyMs));
      this.timer.unref();
    }
  }

  /** Called after every group commit with its size. */
  onLogBytes(bytes: number): void {
    this.logBytesSince += bytes;
    if (this.automatic && this.logBytesSince >= this.policy.everyLogBytes) this.check();
  }

  private check(): void {
    if (this.running) return;
    const due =
      this.logBytesSince >= this.policy.everyLogBytes ||
      Date.now() - this.lastSnapshotAtMs >= this.policy.everyMs;
    if (!due || this.host.lsnDurable() <= this.lastSnapshotLsn) return;
    this.snapshotNow().catch(() => undefined);
  }

  get inProgress(): boolean {
    return this.running !== undefined;
  }

  /** Takes a snapshot at the current durable LSN (or joins the one in progress). */
  snapshotNow(): Promise<SnapshotBuilt> {
    if (this.running) return this.running;
    const targetLsn = this.host.lsnDurable();
    this.logBytesSince = 0;
    const run = this.run(targetLsn).finally(() => {
      this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async run(targetLsn: number): Promise<SnapshotBuilt> {
    try {
      const built = this.policy.worker ? await this.inWorker(targetLsn) : await this.inProcess(targetLsn);
      this.lastSnapshotLsn = built.lsn;
      this.lastSnapshotAtMs = Date.now();
      const keepFromLsn = built.oldestKeptLsn + 1 - this.policy.retainLogRecords;
      const compaction = await compactLog(this.host.fs, walDir(this.host.dataDir), keepFromLsn);
      this.host.onSnapshot(built, compaction);
      return built;
    } catch (error) {
      const wrapped =
        error instanceof EngramError
          ? error
          : new EngramError(
              'storage_io',
              `snapshot at LSN ${targetLsn} failed: ${(error as Error).message}`,
              {},
              error,
            );
      this.host.onSnapshotError(wrapped);
      throw wrapped;
    }
  }

  private inProcess(targetLsn: number): Promise<SnapshotBuilt> {
    return buildSnapshot({
      fs: this.host.fs,
      dataDir: this.host.dataDir,
      definition: this.host.definition,
      targetLsn,
      keep: this.policy.keep,
      idempotency: this.host.idempotency,
    });
  }

  private inWorker(targetLsn: number): Promise<SnapshotBuilt> {
    const worker = this.policy.worker!;
    const job: CheckpointJob = {
      module: String(worker.module),
      exportName: worker.exportName,
      dataDir: this.host.dataDir,
      targetLsn,
      keep: this.policy.keep,
      idempotency: { ...this.host.idempotency } as Record<string, number>,
    };
    return new Promise((resolve, reject) => {
      const thread = new Worker(new URL('./checkpoint-worker-entry.mjs', import.meta.url), {
        workerData: job,
      });
      let settled = false;
      thread.once(
        'message',
        (message: {
          ok: boolean;
          built?: SnapshotBuilt;
          error?: { message: string; code?: string; details?: Record<string, unknown> };
        }) => {
          settled = true;
          if (message.ok) resolve(message.built!);
          else
            reject(
              new EngramError(
                (message.error?.code as never) ?? 'storage_io',
                message.error?.message ?? 'snapshot worker failed',
                message.error?.details ?? {},
              ),
            );
        },
      );
      thread.once('error', (error) => {
        settled = true;
        reject(error);
      });
      thread.once('exit', (code) => {
        if (!settled) reject(new Error(`snapshot worker exited with code ${code} before reporting`));
      });
    });
  }

  /** Stops scheduling and waits for a snapshot in progress to finish. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }
}
