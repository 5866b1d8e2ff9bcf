import type { AnyEventDefs, StoreDefinition } from '../engine/definition.ts';
import type { IdempotencyLimits } from '../engine/idempotency.ts';
import { EngramError } from '../errors.ts';
import { compactLog } from '../log/compaction.ts';
import { fileMappingStatus } from '../storage/file-mapping.ts';
import type { FileSystem } from '../storage/file-system.ts';
import { buildSnapshot, type SnapshotBuilt, walDir } from './build.ts';
import { CheckpointThread } from './checkpoint-thread.ts';
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
   *
   * `resident`: the worker stays, keeps its copy of the state and follows the durable log between
   * snapshots (once a second, where files can be mapped), so a snapshot costs its write and the last
   * second's replay instead of a reload of the previous snapshot and a replay of everything since. The
   * price is a second copy of the state in memory, all the time (decision 017).
   */
  worker?: { module: string | URL; exportName: string; resident?: boolean };
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
  private thread: CheckpointThread | undefined;
  /** The LSN the resident worker was last asked to follow the log to. */
  private followedLsn = 0;
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
    this.follow();
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
    if (this.policy.worker!.resident) return this.residentThread().snapshot(targetLsn);
    return new CheckpointThread(this.job(targetLsn, false)).result();
  }

  private job(targetLsn: number, resident: boolean): CheckpointJob {
    const worker = this.policy.worker!;
    return {
      module: String(worker.module),
      exportName: worker.exportName,
      dataDir: this.host.dataDir,
      targetLsn,
      keep: this.policy.keep,
      idempotency: { ...this.host.idempotency } as Record<string, number>,
      resident,
    };
  }

  /** The resident worker, started again after a failure (it then reloads from the snapshots on disk). */
  private residentThread(): CheckpointThread {
    if (!this.thread || this.thread.failed) {
      this.thread = new CheckpointThread(this.job(0, true), (error) =>
        this.host.onSnapshotError(
          new EngramError('storage_io', `the snapshot worker did not start: ${error.message}`, {}, error),
        ),
      );
      this.followedLsn = 0;
    }
    return this.thread;
  }

  /**
   * Lets a resident worker replay what became durable since the last call, so that a snapshot finds it
   * nearly caught up. Only with mapped files: otherwise each call would read the whole segment being written.
   */
  private follow(): void {
    if (!this.policy.worker?.resident || this.running || !fileMappingStatus().available) return;
    const lsn = this.host.lsnDurable();
    if (lsn <= this.followedLsn) return;
    this.followedLsn = lsn;
    this.residentThread()
      .catchUp(lsn)
      .catch((error: Error) =>
        this.host.onSnapshotError(
          new EngramError(
            'storage_io',
            `the snapshot worker failed while following the log (the next snapshot starts a new one): ${error.message}`,
            {},
            error,
          ),
        ),
      );
  }

  /**
   * Settles once a resident worker has replayed the log up to the current durable LSN (at once without
   * one): after a start, it first loads the newest snapshot and replays the log since, like a recovery.
   */
  async followLog(): Promise<void> {
    if (!this.policy.worker?.resident) return;
    const lsn = this.host.lsnDurable();
    this.followedLsn = Math.max(this.followedLsn, lsn);
    await this.residentThread().catchUp(lsn);
  }

  /** Stops scheduling and waits for a snapshot in progress to finish. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
    await this.thread?.terminate();
    this.thread = undefined;
  }
}
