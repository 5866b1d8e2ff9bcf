import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Store, StoreObserver } from '../engine/store.ts';

const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const GROUP_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/**
 * The metrics operators watch for an Engram store (DESIGN.md §8), named as they would search for them.
 * Children with fixed label values are bound once so the hot path does no label lookups.
 */
export class EngineMetrics {
  readonly registry = new Registry();
  private readonly commands: Counter<'command' | 'outcome'>;
  private readonly ackLatency: Histogram<'command'>;
  private readonly flushDuration: Histogram;
  private readonly groupRecords: Histogram;
  private readonly backpressure: Counter;
  private readonly fsyncErrors: Counter;
  private readonly snapshotErrors: Counter;
  private readonly replaySeconds: Gauge;
  private readonly boundCommands = new Map<string, ReturnType<Counter<'command' | 'outcome'>['labels']>>();
  private readonly boundAck = new Map<string, ReturnType<Histogram<'command'>['labels']>>();
  private store: Store<any, any, any, any> | undefined;

  constructor(prefix = 'engram') {
    const registers = [this.registry];
    this.commands = new Counter({
      name: `${prefix}_commands_total`,
      help: 'Commands by type and outcome',
      labelNames: ['command', 'outcome'],
      registers,
    });
    this.ackLatency = new Histogram({
      name: `${prefix}_ack_latency_seconds`,
      help: 'Time from execute() to the ack point, for commands that waited on the disk',
      labelNames: ['command'],
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.flushDuration = new Histogram({
      name: `${prefix}_wal_flush_duration_seconds`,
      help: 'Group commit: write + sync of one group',
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.groupRecords = new Histogram({
      name: `${prefix}_wal_group_records`,
      help: 'Records per group commit (batch size)',
      buckets: GROUP_BUCKETS,
      registers,
    });
    this.backpressure = new Counter({
      name: `${prefix}_backpressure_events_total`,
      help: 'Commands refused as overloaded',
      registers,
    });
    this.fsyncErrors = new Counter({
      name: `${prefix}_fsync_errors_total`,
      help: 'Write-path storage failures (the store stops writing)',
      registers,
    });
    this.snapshotErrors = new Counter({
      name: `${prefix}_snapshot_errors_total`,
      help: 'Snapshots that failed',
      registers,
    });
    this.replaySeconds = new Gauge({
      name: `${prefix}_replay_seconds`,
      help: 'Recovery time at the last start (snapshot load + log replay)',
      registers,
    });
    const self = this;
    new Gauge({
      name: `${prefix}_snapshot_age_seconds`,
      help: 'Seconds since the newest snapshot (-1: none yet)',
      registers,
      collect() {
        const last = self.store?.lastSnapshot;
        this.set(last && last.atMs > 0 ? (Date.now() - last.atMs) / 1000 : -1);
      },
    });
    new Gauge({
      name: `${prefix}_lsn_durable`,
      help: 'Highest LSN at the ack point on disk',
      registers,
      collect() {
        this.set(self.store?.lsnDurable ?? 0);
      },
    });
    new Gauge({
      name: `${prefix}_lsn_applied`,
      help: 'Highest LSN applied in memory',
      registers,
      collect() {
        this.set(self.store?.lsnApplied ?? 0);
      },
    });
    new Gauge({
      name: `${prefix}_pending_bytes`,
      help: 'Bytes buffered or being flushed',
      registers,
      collect() {
        this.set(self.store?.pending.bytes ?? 0);
      },
    });
  }

  /** The observer to pass to Store.open. */
  observer(): StoreObserver {
    return {
      onCommand: (command, outcome) => this.commandCounter(command, outcome).inc(),
      onAck: (command, latencyMs) => this.ackHistogram(command).observe(latencyMs / 1000),
      onFlush: (stats) => {
        this.flushDuration.observe(stats.durationMs / 1000);
        this.groupRecords.observe(stats.records);
      },
      onBackpressure: () => this.backpressure.inc(),
      onFailure: () => this.fsyncErrors.inc(),
      onSnapshotError: () => this.snapshotErrors.inc(),
    };
  }

  /** Binds the gauges that read the store, and records its recovery time. */
  attach(store: Store<any, any, any, any>): void {
    this.store = store;
    this.replaySeconds.set(store.recovery.totalMs / 1000);
  }

  private commandCounter(command: string, outcome: string) {
    const key = `${command}\u0000${outcome}`;
    let child = this.boundCommands.get(key);
    if (!child) {
      child = this.commands.labels(command, outcome);
      this.boundCommands.set(key, child);
    }
    return child;
  }

  private ackHistogram(command: string) {
    let child = this.boundAck.get(command);
    if (!child) {
      child = this.ackLatency.labels(command);
      this.boundAck.set(command, child);
    }
    return child;
  }
}
