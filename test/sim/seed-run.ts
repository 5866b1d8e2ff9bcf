/**
 * One seed of the crash simulation: a simulated disk and a store under a random concurrent workload, faults,
 * power losses and bit flips, every answer checked against the reference model (bank-model.ts).
 *
 * A seed runs one to three lives. A life is a process: it opens the store (recovery), runs a workload, maybe
 * meets an injected I/O fault (and keeps going a bit: the store must fail-stop), and ends in a power loss.
 * The next life recovers from what the disk kept, maybe with a flipped bit, maybe with a fault or another
 * power loss during the recovery itself. After the last life the store is closed and recovered once more.
 *
 * Checked while running (each answer, the moment it arrives):
 * - every command does what the model predicts: a new record at the next LSN, the recorded answer for a
 *   retry, idempotency_conflict for a reused key, a refusal for an invalid amount; its result is the model's;
 * - at the `disk` ack point (store-wide, or strengthened per command), nothing is acknowledged before its
 *   LSN is durable, and nothing pending at a write-path failure is acknowledged after it: it rejects with
 *   storage_io, as does every command submitted after it; a read resolves only once what it saw is durable;
 * - nothing stays pending forever: once time and I/O move, every command settles.
 * Checked at each recovery (k = LSNs recovered):
 * - k >= every acknowledged-durable LSN, the last durable LSN the crashed store reported, the LSN every
 *   resolved `sync()` and durable read covered, and the k of the previous recovery (recovered data is durable);
 * - the state equals the model after exactly the first k recorded commands; `stateHash()` (state and
 *   idempotency window) equals that of a store that executed those k commands on a healthy disk;
 * - a retry of every recorded keyed command returns its recorded result (the one its caller got, if any),
 *   without a new record; a reused key with new content is a conflict;
 * - without a bit flip recovery never refuses; with one it may refuse (corruption, log_gap), or must pass
 *   all of the above;
 * - after the final clean close, recovery (with or without a power loss first) gives the same hash.
 */
import { isDeepStrictEqual } from 'node:util';
import type { AckPoint } from '../../src/engine/ack-point.ts';
import { hashState } from '../../src/engine/state-hash.ts';
import { DEFAULT_PENDING_BYTES_MAX, DEFAULT_PENDING_COMMANDS_MAX, Store } from '../../src/engine/store.ts';
import { bankDefinition } from '../../src/engine/testing/bank.ts';
import type { FlushPolicy } from '../../src/log/flush-policy.ts';
import { COMMIT_MARKER_TYPE, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../../src/log/format.ts';
import { parseFrame } from '../../src/log/frame.ts';
import type { SnapshotPolicy } from '../../src/snapshot/scheduler.ts';
import { type FaultRule, SimFileSystem, type SimOp } from '../../src/storage/sim-file-system.ts';
import { Prng } from '../../src/util/prng.ts';
import { type BankCommand, BankModel, type BankResult, commandInput, type Outcome } from './bank-model.ts';
import { VirtualTime } from './virtual-time.ts';

export interface SeedResult {
  seed: number;
  /** Acknowledged-durable commands (and durable LSNs the store reported) missing after a recovery. */
  ackedLost: number;
  hashMismatch: boolean;
  /** Recovery refused to start after a bit flip: acceptable, counted. */
  detectedCorruption: boolean;
  /** The first check that failed, other than loss and hash (those are counted above). */
  failure: string | undefined;
  /** Acknowledged-durable commands checked after recoveries. */
  acked: number;
  /** Records recovered, summed over recoveries. */
  recordsRecovered: number;
  lives: number;
  storeFailures: number;
  faultsFired: number;
  tornTailsCut: number;
  snapshotLoads: number;
  interruptedRecoveries: number;
  overloadRefusals: number;
  /** Events that decide the seed's course; two runs of one seed must give the same trace. */
  trace: string;
  log: string[];
}

const DIR = '/data';
const ACCOUNTS = ['a', 'b', 'c', 'd', 'e'];
/** Record time per LSN: the clock is a function of the LSN, so a replay on a healthy disk hashes the same. */
const RECORD_TIME_BASE_MS = 1_700_000_000_000;
const RECORD_TIME_STEP_MS = 10;
/** Ticks (each also 1 ms of virtual time) within which every pending command must settle. */
const SETTLE_TICKS_MAX = 5_000;
const LIVES_MAX = 3;
const STEPS_MIN = 4;
const STEPS_SPREAD = 30;
const BURST_MAX = 6;
/** Larger than any seed's command count: nothing is evicted. */
const WINDOW_MAX_DEFAULT = 1_000_000;

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

function recordTimeMs(lsn: number): number {
  return RECORD_TIME_BASE_MS + lsn * RECORD_TIME_STEP_MS;
}

async function openBankStore(fs: SimFileSystem, config: SimConfig, onFailure: (error: Error) => void) {
  const holder: { lsnApplied: () => number } = { lsnApplied: () => 0 };
  const store = await Store.open(bankDefinition, {
    dir: DIR,
    fs,
    ackPoint: config.ackPoint,
    flushPolicy: config.flushPolicy,
    segmentBytesMax: config.segmentBytesMax,
    snapshots: config.snapshots,
    clock: () => recordTimeMs(holder.lsnApplied() + 1),
    idempotency: { maxEntries: config.windowMax },
    pendingBytesMax: config.pendingBytesMax,
    pendingCommandsMax: config.pendingCommandsMax,
    observer: { onFailure },
  });
  holder.lsnApplied = () => store.lsnApplied;
  return store;
}

type BankStore = Awaited<ReturnType<typeof openBankStore>>;

export interface SimConfig {
  ackPoint: AckPoint;
  flushPolicy: FlushPolicy | undefined;
  segmentBytesMax: number;
  snapshots: SnapshotPolicy | undefined;
  syncWrites: boolean;
  /** Each disk operation takes 1..this many event-loop ticks (seeded): more ways for I/O to interleave. */
  latencyTicksMax: number;
  /** Idempotency keys the store remembers: small windows evict, and a retry of an evicted key is new. */
  windowMax: number;
  /** Backpressure limits: small ones make the store refuse commands as overloaded under load. */
  pendingBytesMax: number;
  pendingCommandsMax: number;
  lives: number;
}

function randomConfig(prng: Prng): SimConfig {
  const policies: (FlushPolicy | undefined)[] = [
    undefined,
    { kind: 'immediate' },
    { kind: 'batch', maxDelayMs: 1 + prng.int(4), maxBytes: 256 + prng.int(4096) },
    { kind: 'interval', intervalMs: 1 + prng.int(8) },
  ];
  return {
    ackPoint: prng.chance(0.65) ? 'disk' : 'memory',
    flushPolicy: prng.pick(policies),
    segmentBytesMax: prng.pick([512, 1024, 4096, 16384]),
    snapshots: prng.chance(0.35)
      ? { everyLogBytes: prng.pick([1024, 4096]), everyMs: 3_600_000, keep: 1 + prng.int(2) }
      : undefined,
    syncWrites: prng.chance(0.5),
    latencyTicksMax: prng.pick([1, 1, 2, 4]),
    windowMax: prng.chance(0.25) ? 5 + prng.int(40) : WINDOW_MAX_DEFAULT,
    pendingBytesMax: prng.chance(0.15) ? 256 + prng.int(2048) : DEFAULT_PENDING_BYTES_MAX,
    pendingCommandsMax: prng.chance(0.15) ? 2 + prng.int(20) : DEFAULT_PENDING_COMMANDS_MAX,
    lives: 1 + prng.int(LIVES_MAX),
  };
}

function randomFault(prng: Prng, ops: readonly SimOp[]): FaultRule {
  return {
    op: prng.pick(ops),
    error: prng.pick(['EIO', 'ENOSPC'] as const),
    pathIncludes: prng.chance(0.2) ? prng.pick(['wal', 'snap']) : undefined,
    afterMatchingCalls: prng.int(3),
    persistent: prng.chance(0.5),
  };
}

/** The write path's operations, weighted; snapshot-only ones (rename, read, unlink) when snapshots run. */
function liveFaultOps(config: SimConfig): readonly SimOp[] {
  const writePath: SimOp[] = [
    'write',
    'write',
    'write',
    'datasync',
    'datasync',
    'datasync',
    'syncDir',
    'open',
  ];
  return config.snapshots ? [...writePath, 'rename', 'read', 'unlink'] : writePath;
}

const CLOSE_FAULT_OPS: readonly SimOp[] = ['write', 'datasync', 'open', 'syncDir'];
const RECOVERY_FAULT_OPS: readonly SimOp[] = [
  'open',
  'read',
  'write',
  'datasync',
  'truncate',
  'unlink',
  'syncDir',
];
/** Steps the workload goes on after a fault: the failed store must refuse new commands and fail pending ones. */
const STEPS_AFTER_FAULT_MAX = 8;

/** One process's life: the store it opened and what it reported before the power went. */
interface Life {
  index: number;
  store: BankStore;
  /** lsnDurable when the write path failed (it must acknowledge nothing beyond). */
  failedAtDurable: number | undefined;
  crashed: boolean;
  durableAtCrash: number;
  /** LSNs this life promised are durable: resolved syncs and durable reads. */
  promisedDurable: number;
}

interface Tracked {
  command: BankCommand;
  life: Life;
  outcome: Outcome;
  /** The result the model says the command gets (record, duplicate). */
  expected: BankResult | undefined;
  /** The LSN the answer depends on: the record's, or the original's for a duplicate. */
  lsn: number;
  durableAck: boolean;
  submittedAfterFailure: boolean;
  /** Refused at admission: too many bytes or commands were waiting for the disk. Nothing recorded. */
  overloaded: boolean;
  settled: boolean;
  /** Resolved while its process was alive: the caller saw it. */
  acked: boolean;
  value: unknown;
  /**
   * A recovery came back with fewer LSNs than `lsn`: the record this answer came from is gone for good (a
   * `memory` ack may be), even if a later life records the same key again, possibly at the same LSN.
   */
  recordLost: boolean;
}

type Verdict = 'ok' | 'stop';

export class SeedRun {
  private readonly prng: Prng;
  private readonly config: SimConfig;
  private fs: SimFileSystem;
  private readonly time: VirtualTime;
  private model: BankModel;
  private life!: Life;
  private readonly tracked: Tracked[] = [];
  private pending: Promise<unknown>[] = [];
  private flipped = false;
  private lastRecoveredLsn = 0;
  private readonly traceParts: string[] = [];
  readonly result: SeedResult;

  constructor(
    readonly seed: number,
    private readonly verbose: boolean,
  ) {
    this.prng = new Prng(seed);
    this.config = randomConfig(this.prng);
    this.model = new BankModel(this.config.windowMax);
    this.fs = new SimFileSystem({
      seed,
      syncWrites: this.config.syncWrites,
      latency: { minTicks: 1, maxTicks: this.config.latencyTicksMax },
    });
    this.time = new VirtualTime(this.prng.nextU32());
    this.result = {
      seed,
      ackedLost: 0,
      hashMismatch: false,
      detectedCorruption: false,
      failure: undefined,
      acked: 0,
      recordsRecovered: 0,
      lives: 0,
      storeFailures: 0,
      faultsFired: 0,
      tornTailsCut: 0,
      snapshotLoads: 0,
      interruptedRecoveries: 0,
      overloadRefusals: 0,
      trace: '',
      log: [],
    };
  }

  private say(line: string): void {
    if (this.verbose) this.result.log.push(line);
  }

  private trace(part: string): void {
    this.traceParts.push(part);
    this.say(part);
  }

  private fail(message: string): void {
    this.say(`FAILURE: ${message}`);
    this.result.failure ??= message;
  }

  async run(): Promise<SeedResult> {
    const onUnhandled = (reason: unknown) =>
      this.fail(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`);
    process.on('unhandledRejection', onUnhandled);
    this.time.install();
    try {
      await this.runLives();
    } finally {
      this.time.uninstall();
      process.off('unhandledRejection', onUnhandled);
      this.result.faultsFired = this.fs.stats.faultsInjected;
      this.result.trace = this.traceParts.join('\n');
    }
    return this.result;
  }

  private async runLives(): Promise<void> {
    const c = this.config;
    this.say(
      `config: ack=${c.ackPoint} policy=${JSON.stringify(c.flushPolicy ?? 'default')} segmentBytesMax=${c.segmentBytesMax} ` +
        `snapshots=${JSON.stringify(c.snapshots ?? 'off')} syncWrites=${c.syncWrites} latencyTicksMax=${c.latencyTicksMax} ` +
        `windowMax=${c.windowMax} pending=${c.pendingBytesMax}B/${c.pendingCommandsMax} lives=${c.lives}`,
    );
    this.life = this.newLife(await this.openStore(this.fs));
    for (let index = 0; index < this.config.lives; index++) {
      await this.workload();
      if (this.result.failure) return;
      if (this.prng.chance(0.15)) await this.gracefulClose();
      if (this.result.failure) return;
      const failedWrite = this.life.failedAtDurable !== undefined;
      this.powerLoss();
      // More flips after a failed write: a damaged durable group next to a torn, never-synced one is where
      // telling corruption from a torn write is hardest.
      if (this.prng.chance(failedWrite ? 0.3 : 0.1)) this.flipBit();
      const crashed = this.life;
      if ((await this.recover()) === 'stop') return;
      await this.verifyRecovered(crashed);
      if (this.result.failure || this.result.hashMismatch || this.result.ackedLost > 0) return;
    }
    await this.finalRestart();
  }

  private newLife(store: BankStore): Life {
    const life: Life = {
      index: this.result.lives++,
      store,
      failedAtDurable: undefined,
      crashed: false,
      durableAtCrash: 0,
      promisedDurable: 0,
    };
    this.slots.get(store)!.life = life;
    return life;
  }

  /**
   * Opens (recovers) a store. Its write-path failure is charged to the life that `newLife` binds it to; a
   * store that never gets one (a recovery interrupted by a power loss) reports to no one.
   */
  private async openStore(fs: SimFileSystem): Promise<BankStore> {
    const slot: { life: Life | undefined } = { life: undefined };
    const store = await openBankStore(fs, this.config, (error) => {
      const life = slot.life;
      if (!life || life.crashed || life.failedAtDurable !== undefined) return;
      life.failedAtDurable = life.store.lsnDurable;
      this.result.storeFailures++;
      this.trace(
        `life ${life.index}: write path failed at durable LSN ${life.failedAtDurable}: ${error.message}`,
      );
    });
    this.slots.set(store, slot);
    return store;
  }

  private readonly slots = new Map<BankStore, { life: Life | undefined }>();

  // ---- workload ------------------------------------------------------------------------------------------

  private async workload(): Promise<void> {
    const life = this.life;
    const prng = this.prng;
    const steps = STEPS_MIN + prng.int(STEPS_SPREAD);
    const faultAt = prng.chance(0.5) ? prng.int(steps) : -1;
    // After a fault, keep going a few steps: new commands must be refused, pending ones must fail.
    const crashAt =
      faultAt >= 0 ? Math.min(steps, faultAt + 1 + prng.int(STEPS_AFTER_FAULT_MAX)) : prng.int(steps + 1);
    for (let step = 0; step <= steps; step++) {
      if (step === faultAt) {
        const rule = randomFault(prng, liveFaultOps(this.config));
        this.fs.injectFault(rule);
        this.trace(`life ${life.index} step ${step}: inject ${JSON.stringify(rule)}`);
      }
      if (step === crashAt) break;
      const burst = 1 + prng.int(BURST_MAX);
      for (let i = 0; i < burst; i++) this.submitRandom(`${life.index}-${step}-${i}`);
      if (this.config.snapshots && prng.chance(0.05)) life.store.snapshot().catch(() => undefined);
      const waits = prng.int(5);
      for (let i = 0; i < waits; i++) {
        await tick();
        this.time.advance(prng.int(3));
      }
      if (prng.chance(0.1) || (life.failedAtDurable !== undefined && prng.chance(0.5))) {
        if (!(await this.settleAll())) return;
      }
      if (this.result.failure) return;
    }
  }

  /** Waits (moving time and I/O) until every pending command settled; a command that never does fails. */
  private async settleAll(): Promise<boolean> {
    const waiting = this.pending;
    this.pending = [];
    let done = false;
    void Promise.allSettled(waiting).then(() => {
      done = true;
    });
    for (let i = 0; i < SETTLE_TICKS_MAX && !done; i++) {
      await tick();
      this.time.advance(1);
    }
    if (!done) {
      const stuck = this.tracked.filter((t) => !t.settled && t.life === this.life).length;
      this.fail(
        `${stuck} commands neither resolved nor rejected within ${SETTLE_TICKS_MAX} ticks ` +
          `(store failed: ${this.life.store.failed?.code ?? 'no'}, applied ${this.life.store.lsnApplied}, durable ${this.life.store.lsnDurable})`,
      );
      return false;
    }
    // Memory-acknowledged records have resolved long ago; the background flush must still make them durable.
    const store = this.life.store;
    const target = store.lsnApplied;
    for (let i = 0; i < SETTLE_TICKS_MAX && store.lsnDurable < target && !store.failed; i++) {
      await tick();
      this.time.advance(1);
    }
    if (store.lsnDurable < target && !store.failed) {
      this.fail(
        `records up to LSN ${target} never became durable (lsnDurable ${store.lsnDurable}) on a healthy store`,
      );
      return false;
    }
    return true;
  }

  private submitRandom(tag: string): void {
    const prng = this.prng;
    const roll = prng.int(100);
    if (roll < 40) this.submit([this.pickDeposit(tag)]);
    else if (roll < 70) this.submit([this.newTransfer(tag)]);
    else if (roll < 78) {
      const batch: BankCommand[] = [];
      const size = 2 + prng.int(4);
      for (let i = 0; i < size; i++) batch.push(this.pickDeposit(`${tag}-${i}`));
      this.submit(batch);
    } else if (roll < 84) this.submit([this.retryTransfer(tag)]);
    else if (roll < 88) this.submit([this.conflicting(tag)]);
    else if (roll < 93) this.read();
    else if (roll < 96) this.sync();
    else this.submit([{ kind: 'deposit', id: `bad-${tag}`, account: 'a', amount: prng.pick([0, -1, -50]) }]);
  }

  /** A fresh deposit, or (a quarter of the time) a retry of an earlier one, lost or not. */
  private pickDeposit(tag: string): BankCommand {
    const prng = this.prng;
    const earlier = this.tracked.filter((t) => t.command.kind === 'deposit');
    if (earlier.length > 0 && prng.chance(0.25)) return earlier[prng.int(earlier.length)].command;
    return { kind: 'deposit', id: `d-${tag}`, account: prng.pick(ACCOUNTS), amount: 1 + prng.int(100) };
  }

  private newTransfer(tag: string): BankCommand {
    const prng = this.prng;
    return {
      kind: 'transfer',
      id: prng.chance(0.4) ? `t-${tag}` : undefined,
      from: prng.pick(ACCOUNTS),
      to: prng.pick(ACCOUNTS),
      amount: 1 + prng.int(150),
    };
  }

  private retryTransfer(tag: string): BankCommand {
    const keyed = this.tracked.filter((t) => t.command.kind === 'transfer' && t.command.id !== undefined);
    return keyed.length > 0 ? keyed[this.prng.int(keyed.length)].command : this.newTransfer(tag);
  }

  /** An earlier key with different content: a conflict if that key is recorded, else a new record. */
  private conflicting(tag: string): BankCommand {
    const deposits = this.tracked.filter((t) => t.command.kind === 'deposit' && t.outcome !== 'invalid');
    if (deposits.length === 0) return this.pickDeposit(tag);
    const original = deposits[this.prng.int(deposits.length)].command as BankCommand & { kind: 'deposit' };
    return { ...original, amount: original.amount + 1 };
  }

  /**
   * Submits one command (execute) or several deposits (executeMany), predicting each one's outcome from
   * the model; checks synchronously that exactly the predicted records were appended.
   */
  private submit(commands: BankCommand[]): void {
    const life = this.life;
    const store = life.store;
    const failedBefore = store.failed !== undefined;
    // Admission checks the failure first, then the backpressure limits (strictly above them).
    const pending = store.pending;
    const overloaded =
      !failedBefore &&
      (pending.bytes > this.config.pendingBytesMax || pending.commands > this.config.pendingCommandsMax);
    if (overloaded) this.result.overloadRefusals++;
    const durableAck =
      this.config.ackPoint === 'disk' ||
      (this.prng.chance(0.2) && commands.every((c) => c.kind === 'deposit'));
    const ack: AckPoint | undefined = durableAck && this.config.ackPoint === 'memory' ? 'disk' : undefined;
    const before = store.lsnApplied;
    const items: Tracked[] = commands.map((command) => {
      const outcome = this.model.outcome(command);
      const t: Tracked = {
        command,
        life,
        outcome,
        expected: undefined,
        lsn: 0,
        durableAck,
        submittedAfterFailure: failedBefore,
        overloaded,
        settled: false,
        acked: false,
        value: undefined,
        recordLost: false,
      };
      if (!failedBefore && !overloaded) {
        if (outcome === 'record') {
          t.expected = this.model.record(command);
          t.lsn = this.model.lsn;
        } else if (outcome === 'duplicate') {
          t.expected = this.model.recordedResult(command);
          t.lsn = t.expected.lsn;
        }
      }
      this.tracked.push(t);
      return t;
    });
    let promise: Promise<unknown>;
    const options = ack ? { ack } : undefined;
    if (commands.length === 1) {
      const c = commands[0];
      promise =
        c.kind === 'deposit'
          ? store.execute('deposit', commandInput(c) as never, options)
          : store.execute('transfer', commandInput(c) as never, options);
    } else {
      promise = store.executeMany(
        'deposit',
        commands.map((c) => commandInput(c) as never),
        options,
      );
    }
    const expectedLsn = failedBefore || overloaded ? before : this.model.lsn;
    if (store.lsnApplied !== expectedLsn) {
      this.fail(
        `submitting ${JSON.stringify(commands)} moved lsnApplied ${before} -> ${store.lsnApplied}; the model expected ${expectedLsn} ` +
          `(outcomes ${items.map((t) => t.outcome).join(', ')})`,
      );
    }
    const settled = promise.then(
      (value) => {
        if (commands.length === 1) this.onResolved(items[0], value);
        else
          (value as { ok: boolean; result?: unknown; error?: Error }[]).forEach((item, i) => {
            if (item.ok) this.onResolved(items[i], item.result);
            else this.onRejected(items[i], item.error, true);
          });
      },
      (error) => {
        for (const t of items) this.onRejected(t, error, false);
      },
    );
    this.pending.push(settled);
  }

  private onResolved(t: Tracked, value: unknown): void {
    t.settled = true;
    t.value = value;
    const problem = this.resolutionProblem(t, value);
    if (problem)
      this.fail(`${JSON.stringify(t.command)} (${t.outcome}, LSN ${t.lsn}, life ${t.life.index}) ${problem}`);
    else if (!t.life.crashed) t.acked = true;
  }

  private resolutionProblem(t: Tracked, value: unknown): string | undefined {
    if (t.submittedAfterFailure) return 'was submitted after the write path failed, yet resolved';
    if (t.overloaded) return 'was submitted over the backpressure limits, yet resolved';
    if (t.outcome === 'conflict' || t.outcome === 'invalid')
      return `resolved with ${JSON.stringify(value)}; it must be refused`;
    if (!isDeepStrictEqual(value, t.expected))
      return `resolved with ${JSON.stringify(value)}; the model says ${JSON.stringify(t.expected)}`;
    if (!t.durableAck) return undefined;
    const life = t.life;
    if (t.lsn > life.store.lsnDurable)
      return `acknowledged at the disk ack point while lsnDurable is ${life.store.lsnDurable}`;
    if (life.failedAtDurable !== undefined && t.lsn > life.failedAtDurable)
      return `acknowledged after the write path failed at durable LSN ${life.failedAtDurable}`;
    if (life.crashed && t.lsn > life.durableAtCrash)
      return `acknowledged after the power loss, beyond the durable LSN ${life.durableAtCrash}`;
    return undefined;
  }

  private onRejected(t: Tracked, error: unknown, itemOfBatch: boolean): void {
    t.settled = true;
    const code = (error as { code?: string })?.code;
    const what = `${JSON.stringify(t.command)} (${t.outcome}, life ${t.life.index})`;
    const life = t.life;
    if (t.overloaded) {
      if (code !== 'overloaded') this.fail(`${what} over the backpressure limits was rejected with ${code}`);
      return;
    }
    const expectedCode =
      t.outcome === 'conflict'
        ? 'idempotency_conflict'
        : t.outcome === 'invalid'
          ? 'invalid_amount'
          : undefined;
    if (expectedCode !== undefined && code === expectedCode && !t.submittedAfterFailure) return;
    const storeDown = life.failedAtDurable !== undefined || life.crashed || t.submittedAfterFailure;
    if (storeDown && !itemOfBatch) {
      if (code !== 'storage_io')
        this.fail(`${what} rejected with ${code} after the write path failed; expected storage_io`);
      return;
    }
    if (code !== expectedCode)
      this.fail(
        `${what} rejected with ${code}: ${(error as Error)?.message}; expected ${expectedCode ?? 'success'}`,
      );
  }

  /** A read sees exactly the model's state now, and resolves only once that state is at the ack point. */
  private read(): void {
    const life = this.life;
    const store = life.store;
    if (store.failed) {
      this.pending.push(
        store
          .read(() => 0)
          .then(
            () => this.fail(`life ${life.index}: a read resolved after the write path failed`),
            () => undefined,
          ),
      );
      return;
    }
    const expectedHash = hashState(this.model.state);
    let seenLsn = -1;
    const promise = store.read((state) => {
      seenLsn = store.lsnApplied;
      if (hashState(state) !== expectedHash)
        this.fail(`life ${life.index}: a read at LSN ${seenLsn} saw ${JSON.stringify([...state.balances])}`);
      return seenLsn;
    });
    this.pending.push(
      promise.then(
        (lsn) => {
          if (this.config.ackPoint !== 'disk') return;
          if (lsn > store.lsnDurable)
            this.fail(`life ${life.index}: a read of LSN ${lsn} resolved at durable ${store.lsnDurable}`);
          if (!life.crashed) life.promisedDurable = Math.max(life.promisedDurable, lsn);
        },
        (error) => {
          if (life.failedAtDurable === undefined && !life.crashed)
            this.fail(
              `life ${life.index}: a read was rejected on a healthy store: ${(error as Error).message}`,
            );
        },
      ),
    );
  }

  /** `sync()` resolves only once everything recorded before it is durable. */
  private sync(): void {
    const life = this.life;
    const target = life.store.lsnApplied;
    this.pending.push(
      life.store.sync().then(
        () => {
          if (life.store.lsnDurable < target)
            this.fail(
              `life ${life.index}: sync() resolved with lsnDurable ${life.store.lsnDurable} < ${target}`,
            );
          if (!life.crashed) life.promisedDurable = Math.max(life.promisedDurable, target);
        },
        () => undefined,
      ),
    );
  }

  /**
   * A shutdown with commands in flight: close() makes everything recorded durable and resolves the waiters
   * (or, on a failed store, rejects with the failure). Afterwards every recorded LSN is promised durable.
   */
  private async gracefulClose(): Promise<void> {
    const life = this.life;
    const target = life.store.lsnApplied;
    if (this.prng.chance(0.3)) {
      // The disk fails while the store shuts down: close() must say so, not resolve.
      const rule = randomFault(this.prng, CLOSE_FAULT_OPS);
      this.fs.injectFault(rule);
      this.trace(`life ${life.index}: inject ${JSON.stringify(rule)} before close`);
    }
    // Half the time the commands settle first: close() then meets a writer that acknowledged everything
    // and may still be rolling to a new segment.
    if (this.prng.chance(0.5) && !(await this.settleAll())) return;
    let outcome: 'closed' | 'failed' | undefined;
    life.store.close().then(
      () => {
        outcome = 'closed';
      },
      () => {
        outcome = 'failed';
      },
    );
    if (!(await this.settleAll())) return;
    for (let i = 0; i < SETTLE_TICKS_MAX && outcome === undefined; i++) {
      await tick();
      this.time.advance(1);
    }
    this.trace(`life ${life.index}: close with commands in flight: ${outcome ?? 'never settled'}`);
    const problem = this.closeProblem(life, outcome, target);
    if (problem) this.fail(`life ${life.index}: ${problem}`);
    else if (outcome === 'closed') life.promisedDurable = Math.max(life.promisedDurable, target);
  }

  private closeProblem(
    life: Life,
    outcome: 'closed' | 'failed' | undefined,
    target: number,
  ): string | undefined {
    if (outcome === undefined) return 'close() never settled';
    const failed = life.failedAtDurable !== undefined;
    if (outcome === 'failed') return failed ? undefined : 'close() failed on a healthy store';
    if (failed) return 'close() resolved on a failed store (the write path failed while it was closing)';
    if (life.store.lsnDurable < target)
      return `close() resolved at durable ${life.store.lsnDurable} < ${target}`;
    const unresolved = this.tracked.filter((t) => t.life === life && t.lsn > 0 && !t.settled);
    if (unresolved.length > 0) return `${unresolved.length} commands still pending after close()`;
    return undefined;
  }

  // ---- power loss, corruption, recovery --------------------------------------------------------------------

  private powerLoss(): void {
    const life = this.life;
    life.durableAtCrash = life.store.lsnDurable;
    life.crashed = true;
    // What the crashed process still has pending is its own business now; it is checked if it settles.
    this.pending = [];
    this.trace(
      `life ${life.index}: power loss at applied ${life.store.lsnApplied}, durable ${life.durableAtCrash}, ` +
        `failed ${life.store.failed?.code ?? 'no'}`,
    );
    this.fs = this.fs.crash();
  }

  private flipBit(): void {
    const files = this.fs
      .paths()
      .filter(
        (p) => (p.endsWith('.log') || p.endsWith('.snap')) && (this.fs.durableContent(p)?.length ?? 0) > 0,
      );
    if (files.length === 0) return;
    const file = this.prng.pick(files);
    const content = this.fs.durableContent(file)!;
    const size = content.length;
    // Most flips land near the end (the final group, where damage and a torn write look alike), many of
    // them in a frame header (length, CRC, LSN, type: what recovery's structure checks read first).
    const roll = this.prng.int(10);
    const headers = file.endsWith('.log') ? frameStarts(content).slice(-4) : [];
    let offset: number;
    if (roll < 3 && headers.length > 0)
      offset = Math.min(size - 1, this.prng.pick(headers) + this.prng.int(FRAME_HEADER_BYTES));
    else if (roll < 7) offset = Math.max(0, size - 1 - this.prng.int(256));
    else offset = this.prng.int(size);
    const where = this.fs.flipBit(file, offset);
    this.flipped = true;
    this.trace(`flipped bit ${where.bit} of byte ${where.byteOffset} in ${file} (${size} bytes)`);
    if (this.verbose && file.endsWith('.log'))
      this.say(`  frames: ${describeFrames(this.fs.durableContent(file)!)}`);
  }

  private async recover(): Promise<Verdict> {
    const roll = this.prng.int(100);
    if (roll < 12) await this.recoverWithFault();
    else if (roll < 22) await this.recoverInterruptedByPowerLoss();
    let store: BankStore;
    try {
      store = await this.openStore(this.fs);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (this.flipped && (code === 'corruption' || code === 'log_gap')) {
        this.result.detectedCorruption = true;
        this.trace(`recovery refused (${code}) after the bit flip: ${(error as Error).message}`);
        return 'stop';
      }
      this.fail(`recovery refused (${code}): ${(error as Error).stack}`);
      return 'stop';
    }
    this.life = this.newLife(store);
    const r = store.recovery;
    this.result.tornTailsCut += r.tornTails.length;
    if (r.snapshot) this.result.snapshotLoads++;
    this.trace(
      `life ${this.life.index}: recovered to LSN ${store.lsnApplied} (snapshot ${r.snapshot?.lsn ?? 'none'}, ` +
        `replayed ${r.recordsReplayed}, torn tails ${r.tornTails.map((t) => `${t.file}@${t.offset}`).join(' ') || 'none'})`,
    );
    return 'ok';
  }

  /** A recovery that meets an I/O fault must fail cleanly; the machine then loses power and boots again. */
  private async recoverWithFault(): Promise<void> {
    const rule = randomFault(this.prng, RECOVERY_FAULT_OPS);
    rule.persistent = false;
    this.fs.injectFault(rule);
    const firedBefore = this.fs.stats.faultsInjected;
    try {
      const store = await this.openStore(this.fs);
      this.trace(
        `recovery with fault ${JSON.stringify(rule)}: opened (fault fired: ${this.fs.stats.faultsInjected > firedBefore})`,
      );
      // It opened: close it as a process that is shut down, then recover again as the next process.
      this.fs.clearFaults();
      await store
        .close()
        .catch((error) => this.fail(`closing a store recovered under a fault: ${error.message}`));
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      this.result.interruptedRecoveries++;
      this.trace(`recovery with fault ${JSON.stringify(rule)}: failed (${code})`);
      // A snapshot that cannot be read is skipped like an invalid one; with the log compacted past it,
      // recovery then refuses with log_gap (naming the read error). Safe, if not the clearest diagnosis.
      const unreadableSnapshot = code === 'log_gap' && rule.op === 'read';
      if (code === 'corruption' || code === 'log_gap') {
        if (!this.flipped && !unreadableSnapshot)
          this.fail(`an I/O fault during recovery was reported as ${code}: ${(error as Error).message}`);
      } else if (code !== 'storage_io' && code !== 'EIO' && code !== 'ENOSPC') {
        this.fail(`recovery under an injected fault failed with ${code}: ${(error as Error).stack}`);
      }
    }
    this.fs = this.fs.crash();
  }

  /** Power loss while recovery runs (cutting a torn tail, rolling a segment): the next boot recovers. */
  private async recoverInterruptedByPowerLoss(): Promise<void> {
    const opening = this.openStore(this.fs).then(
      () => 'opened',
      (error) => (error as { code?: string }).code ?? 'error',
    );
    const ticks = this.prng.int(30);
    for (let i = 0; i < ticks; i++) await tick();
    this.result.interruptedRecoveries++;
    this.fs = this.fs.crash();
    const outcome = await opening;
    this.trace(`power loss ${ticks} ticks into recovery (that recovery: ${outcome})`);
  }

  // ---- checks after recovery -------------------------------------------------------------------------------

  private async verifyRecovered(previous: Life): Promise<void> {
    const store = this.life.store;
    const k = store.lsnApplied;
    this.result.recordsRecovered += k;
    if (k > this.model.lsn) {
      this.fail(`recovered LSN ${k}, but only ${this.model.lsn} records were ever appended`);
      return;
    }
    // (a) nothing acknowledged as durable is lost.
    const floor = Math.max(this.lastRecoveredLsn, previous.durableAtCrash, previous.promisedDurable);
    if (k < floor) {
      this.result.ackedLost += floor - k;
      this.say(
        `LOST: recovered ${k} < ${floor} (previous recovery ${this.lastRecoveredLsn}, durable at crash ` +
          `${previous.durableAtCrash}, promised ${previous.promisedDurable})`,
      );
    }
    for (const t of this.tracked) {
      if (!t.acked || !t.durableAck || t.lsn === 0 || t.life !== previous) continue;
      this.result.acked++;
      if (t.lsn > k) {
        this.result.ackedLost++;
        this.say(`LOST: ${JSON.stringify(t.command)} acknowledged at LSN ${t.lsn}, recovered ${k}`);
      }
    }
    // (b) exactly the first k recorded commands.
    const prefix = BankModel.replay(this.model.recorded.slice(0, k), this.config.windowMax);
    if (hashState(store.readStale((s) => s)) !== hashState(prefix.state)) {
      this.result.hashMismatch = true;
      this.say(
        `STATE MISMATCH: model ${JSON.stringify([...prefix.state.balances])} transfers ${prefix.state.transfers}, ` +
          `store ${JSON.stringify(store.readStale((s) => [...s.balances]))} transfers ${store.readStale((s) => s.transfers)}`,
      );
    }
    // (c) the whole hash (idempotency window included) equals a healthy replay of the same commands.
    const reference = await referenceHash(prefix.recorded, this.config);
    if (reference !== store.stateHash()) {
      this.result.hashMismatch = true;
      this.say(`HASH MISMATCH: recovered ${store.stateHash()}, healthy replay of ${k} commands ${reference}`);
    }
    this.model = prefix;
    this.lastRecoveredLsn = k;
    for (const t of this.tracked) if (t.lsn > k) t.recordLost = true;
    await this.checkRetries();
  }

  /** Every recorded key answers with its recorded result (the caller's, if acknowledged); new content conflicts. */
  private async checkRetries(): Promise<void> {
    const store = this.life.store;
    const before = store.lsnApplied;
    // What callers were told for keys whose record survived every recovery since: an answer from a lost
    // record of an earlier life does not count, the key may since have been recorded again (seed 709570:
    // a life-0 `memory` ack at LSN 22, lost when life 1 recovered 10 LSNs, then the same key recorded
    // afresh by life 1, at LSN 22 again).
    const acked = new Map<string, unknown>();
    for (const t of this.tracked) {
      const key = t.command.id;
      if (t.acked && !t.recordLost && key !== undefined && this.model.byKey.get(key)?.lsn === t.lsn)
        acked.set(key, t.value);
    }
    const checks: Promise<void>[] = [];
    for (const [key, entry] of this.model.byKey) {
      const c = entry.command;
      const promise =
        c.kind === 'deposit'
          ? store.execute('deposit', commandInput(c) as never)
          : store.execute('transfer', commandInput(c) as never);
      checks.push(
        promise.then(
          (value) => {
            if (!isDeepStrictEqual(value, entry.result))
              this.fail(
                `retry of ${key} returned ${JSON.stringify(value)}, recorded ${JSON.stringify(entry.result)}`,
              );
            if (acked.has(key) && !isDeepStrictEqual(value, acked.get(key)))
              this.fail(
                `retry of ${key} returned ${JSON.stringify(value)}, its caller got ${JSON.stringify(acked.get(key))}`,
              );
          },
          (error) => this.fail(`retry of ${key} after recovery failed: ${(error as Error).message}`),
        ),
      );
      if (c.kind === 'deposit' && this.prng.chance(0.05)) {
        checks.push(
          store.execute('deposit', { ...commandInput(c), amount: c.amount + 1000 } as never).then(
            () => this.fail(`${key} with new content was accepted after recovery`),
            (error) => {
              if (error.code !== 'idempotency_conflict')
                this.fail(`${key} with new content: ${error.code}, expected idempotency_conflict`);
            },
          ),
        );
      }
    }
    let done = false;
    void Promise.all(checks).then(() => {
      done = true;
    });
    for (let i = 0; i < SETTLE_TICKS_MAX && !done; i++) {
      await tick();
      this.time.advance(1);
    }
    if (!done) this.fail('retries after recovery did not settle');
    if (store.lsnApplied !== before)
      this.fail(`retries after recovery appended records (${before} -> ${store.lsnApplied})`);
  }

  /** Clean close, then recovery (after a power loss half the time): the same state hash. */
  private async finalRestart(): Promise<void> {
    const store = this.life.store;
    const hash = store.stateHash();
    const lsn = store.lsnApplied;
    try {
      await store.close();
    } catch (error) {
      this.fail(`clean close failed: ${(error as Error).message}`);
      return;
    }
    if (this.prng.chance(0.5)) {
      this.fs = this.fs.crash();
      this.trace('power loss after the clean close');
    }
    let again: BankStore;
    try {
      again = await this.openStore(this.fs);
    } catch (error) {
      this.fail(`recovery after a clean close failed: ${(error as Error).message}`);
      return;
    }
    if (again.lsnApplied !== lsn || again.stateHash() !== hash) {
      this.result.hashMismatch = true;
      this.say(
        `after a clean close: LSN ${lsn} -> ${again.lsnApplied}, hash ${hash} -> ${again.stateHash()}`,
      );
    }
    this.trace(`final recovery: LSN ${again.lsnApplied}, hash ${again.stateHash()}`);
    await again.close();
  }
}

/** The state hash of a store that executed `commands` in order on a healthy disk (the reference for (c)). */
async function referenceHash(commands: readonly BankCommand[], config: SimConfig): Promise<string> {
  const fs = new SimFileSystem({ seed: 0 });
  const store = await openBankStore(
    fs,
    {
      ...config,
      ackPoint: 'memory',
      flushPolicy: { kind: 'interval', intervalMs: 3_600_000 },
      snapshots: undefined,
      pendingBytesMax: DEFAULT_PENDING_BYTES_MAX,
      pendingCommandsMax: DEFAULT_PENDING_COMMANDS_MAX,
    },
    () => undefined,
  );
  for (const c of commands) {
    const before = store.lsnApplied;
    const promise =
      c.kind === 'deposit'
        ? store.execute('deposit', commandInput(c) as never)
        : store.execute('transfer', commandInput(c) as never);
    promise.catch(() => undefined);
    if (store.lsnApplied !== before + 1)
      throw new Error(`reference replay: ${JSON.stringify(c)} was not recorded`);
  }
  return store.stateHash();
}

export async function runSeed(seed: number, verbose = false): Promise<SeedResult> {
  const run = new SeedRun(seed, verbose);
  try {
    return await run.run();
  } catch (error) {
    run.result.failure ??= `threw: ${(error as Error)?.stack ?? String(error)}`;
    return run.result;
  }
}

/** The frames of a segment as offsets, types and LSNs (M = commit marker), up to the first bad one. */
function describeFrames(buf: Buffer): string {
  const parts: string[] = [];
  let offset = SEGMENT_HEADER_BYTES;
  while (offset < buf.length) {
    const parsed = parseFrame(buf, offset, buf.length);
    if (!parsed.ok) {
      parts.push(`@${offset}: ${parsed.reason} (${buf.length - offset} bytes left)`);
      break;
    }
    const f = parsed.frame;
    parts.push(`@${offset}:${f.type === COMMIT_MARKER_TYPE ? 'M' : 'R'}${f.lsn}`);
    offset = f.next;
  }
  return parts.slice(-12).join(' ');
}

/** Offsets of the frames of a segment that parse, in order. */
function frameStarts(buf: Buffer): number[] {
  const starts: number[] = [];
  let offset = SEGMENT_HEADER_BYTES;
  while (offset < buf.length) {
    const parsed = parseFrame(buf, offset, buf.length);
    if (!parsed.ok) break;
    starts.push(offset);
    offset = parsed.frame.next;
  }
  return starts;
}
