import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CommandOutcome, Store, StoreObserver } from '../engine/store.ts';
import { fileMappingStats } from '../storage/file-mapping.ts';
import { type CounterChild, CounterFamily, type HistogramChild, HistogramFamily } from './fast-metrics.ts';

const COMMAND_OUTCOMES: readonly CommandOutcome[] = [
  'ok',
  'duplicate',
  'conflict',
  'rejected',
  'invalid',
  'overloaded',
  'failed',
];

const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const GROUP_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/**
 * The metrics operators watch for an Engram store (DESIGN.md §8), named as they would search for them.
 * Per-command series (commands, ack latency, flushes) are fast-metrics families with children bound once:
 * the hot path does no label hashing. Gauges read the store when /metrics is scraped.
 */
export class EngineMetrics {
  readonly registry = new Registry();
  private readonly commands: CounterFamily;
  private readonly ackLatency: HistogramFamily;
  private readonly flushDuration: HistogramChild;
  private readonly groupRecords: HistogramChild;
  private readonly backpressure: Counter;
  private readonly fsyncErrors: Counter;
  private readonly snapshotErrors: Counter;
  private readonly snapshotDuration: Histogram;
  private readonly replaySeconds: Gauge;
  private readonly snapshotFallbacks: Gauge;
  private readonly boundCommands = new Map<string, Map<string, CounterChild>>();
  private readonly boundAck = new Map<string, HistogramChild>();
  private store: Store<any, any, any, any> | undefined;

  /**
   * `prefix` names the engine's metrics (`engram_ack_latency_seconds`, ...); `commandsName` the command
   * counter, which belongs to the service (`balance_gate_commands_total`): its labels are the service's
   * commands.
   */
  constructor(options: { prefix?: string; commandsName?: string } = {}) {
    const prefix = options.prefix ?? 'engram';
    const registers = [this.registry];
    this.commands = new CounterFamily(this.registry, {
      name: options.commandsName ?? `${prefix}_commands_total`,
      help: 'Commands by type and outcome (ok, duplicate, conflict, rejected, invalid, overloaded, failed)',
      labelNames: ['command', 'outcome'],
    });
    this.ackLatency = new HistogramFamily(this.registry, {
      name: `${prefix}_ack_latency_seconds`,
      help: 'Time from execute() to the ack point, for commands that waited on the disk',
      labelNames: ['command'],
      buckets: LATENCY_BUCKETS_S,
    });
    this.flushDuration = new HistogramFamily(this.registry, {
      name: `${prefix}_wal_flush_duration_seconds`,
      help: 'Group commit: write + sync of one group',
      labelNames: [],
      buckets: LATENCY_BUCKETS_S,
    }).child();
    this.groupRecords = new HistogramFamily(this.registry, {
      name: `${prefix}_wal_group_records`,
      help: 'Records per group commit (batch size)',
      labelNames: [],
      buckets: GROUP_BUCKETS,
    }).child();
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
    this.snapshotDuration = new Histogram({
      name: `${prefix}_snapshot_duration_seconds`,
      help: 'Time to build and persist one snapshot (off the write path, in a worker)',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
      registers,
    });
    this.replaySeconds = new Gauge({
      name: `${prefix}_replay_seconds`,
      help: 'Recovery time at the last start (snapshot load + log replay)',
      registers,
    });
    this.snapshotFallbacks = new Gauge({
      name: `${prefix}_snapshot_fallbacks`,
      help: 'Snapshots skipped at the last start because they did not verify (recovery used an older one)',
      registers,
    });
    const self = this;
    new Gauge({
      name: `${prefix}_snapshot_age_seconds`,
      // Read at scrape time from the store's snapshot scheduler (the last snapshot taken or loaded).
      help: 'Seconds since the newest snapshot (-1: none yet)',
      registers,
      collect() {
        const last = self.store?.lastSnapshot;
        this.set(last && last.atMs > 0 ? (Date.now() - last.atMs) / 1000 : -1);
      },
    });
    new Gauge({
      name: `${prefix}_mapped_snapshot_bytes`,
      help: 'Bytes of snapshot files mapped into memory (memory the state uses that the heap figures leave out)',
      registers,
      collect() {
        this.set(fileMappingStats().mappedBytes);
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
      onSnapshot: (built) => this.snapshotDuration.observe(built.durationMs / 1000),
      onSnapshotError: () => this.snapshotErrors.inc(),
    };
  }

  /**
   * Binds the gauges that read the store, records its recovery time, and binds a counter child for each
   * command and outcome (so dashboards see zeros before traffic, and the hot path never creates one).
   */
  attach(store: Store<any, any, any, any>): void {
    this.store = store;
    this.replaySeconds.set(store.recovery.totalMs / 1000);
    this.snapshotFallbacks.set(store.recovery.snapshotFallbacks.length);
    for (const command of Object.keys(store.definition.commands)) {
      this.ackHistogram(command);
      for (const outcome of COMMAND_OUTCOMES) this.commandCounter(command, outcome);
    }
  }

  /** Nested maps, not a joined key: counting a command builds no string and hashes no labels. */
  private commandCounter(command: string, outcome: string) {
    let byOutcome = this.boundCommands.get(command);
    if (!byOutcome) {
      byOutcome = new Map();
      this.boundCommands.set(command, byOutcome);
    }
    let child = byOutcome.get(outcome);
    if (!child) {
      child = this.commands.child(command, outcome);
      byOutcome.set(outcome, child);
    }
    return child;
  }

  private ackHistogram(command: string) {
    let child = this.boundAck.get(command);
    if (!child) {
      child = this.ackLatency.child(command);
      this.boundAck.set(command, child);
    }
    return child;
  }
}

/** One observer that calls each given observer's hooks in order (e.g. metrics, then logging). */
export function combineObservers(...observers: StoreObserver[]): StoreObserver {
  const combined: StoreObserver = {};
  const hooks = [
    'onCommand',
    'onAck',
    'onFlush',
    'onBackpressure',
    'onFailure',
    'onSnapshot',
    'onSnapshotError',
  ] as const;
  for (const hook of hooks) {
    const fns = observers.map((o) => o[hook]).filter((fn) => fn !== undefined) as ((
      ...args: unknown[]
    ) => void)[];
    if (fns.length === 1) (combined as Record<string, unknown>)[hook] = fns[0];
    else if (fns.length > 1)
      (combined as Record<string, unknown>)[hook] = (...args: unknown[]) => {
        for (const fn of fns) fn(...args);
      };
  }
  return combined;
}
