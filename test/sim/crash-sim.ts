/**
 * The deterministic crash simulation. `npm run sim -- --seeds N [--from S] [--seed S] [--verbose]`
 *
 * Each seed: a simulated disk, a store with a random ack point, flush policy, segment size and snapshot
 * policy; a random concurrent workload (idempotent deposits with retries, transfers that may be refused,
 * invalid commands); maybe an injected fault (EIO/ENOSPC on write, datasync, syncDir, open or rename, once or
 * for good); a power loss at a random moment; maybe a flipped bit in a log or snapshot file; recovery.
 * Checks: every command acknowledged as durable is there; the recovered state equals the reference model
 * applied to exactly the first k records, k >= the last durable acknowledged LSN, hash included; a retry
 * of each acknowledged deposit returns its recorded result; a second recovery gives the same hash; the
 * store accepts writes again. A refusal to start counts as detected corruption only when a bit was flipped.
 */
import { parseArgs } from 'node:util';
import { hashState } from '../../src/engine/state-hash.ts';
import { Store } from '../../src/engine/store.ts';
import { bankDefinition } from '../../src/engine/testing/bank.ts';
import type { FlushPolicy } from '../../src/log/flush-policy.ts';
import { type FaultRule, SimFileSystem, type SimOp } from '../../src/storage/sim-file-system.ts';
import { Prng } from '../../src/util/prng.ts';
import { applyModel, type BankCommand } from './bank-model.ts';

export interface SeedResult {
  seed: number;
  ackedLost: number;
  hashMismatch: boolean;
  detectedCorruption: boolean;
  failure: string | undefined;
  acked: number;
  recordsRecovered: number;
  log: string[];
}

const DIR = '/data';
const ACCOUNTS = ['a', 'b', 'c', 'd'];
const tick = () => new Promise((resolve) => setImmediate(resolve));

interface Submitted {
  command: BankCommand;
  lsn: number | undefined;
  acked: boolean;
  result: unknown;
}

function randomPolicy(prng: Prng): FlushPolicy | undefined {
  switch (prng.int(4)) {
    case 0:
      return { kind: 'batch', maxDelayMs: 1 + prng.int(3), maxBytes: 512 + prng.int(8192) };
    case 1:
      return { kind: 'interval', intervalMs: 1 + prng.int(4) };
    case 2:
      return { kind: 'immediate' };
    default:
      return undefined;
  }
}

function randomFault(prng: Prng): FaultRule {
  const op = prng.pick<SimOp>(['write', 'write', 'datasync', 'syncDir', 'open', 'rename']);
  return {
    op,
    error: prng.pick(['EIO', 'ENOSPC'] as const),
    pathIncludes: prng.chance(0.3) ? prng.pick(['wal', 'snap']) : undefined,
    afterMatchingCalls: prng.int(3),
    persistent: prng.chance(0.5),
  };
}

export async function runSeed(seed: number, verbose = false): Promise<SeedResult> {
  const prng = new Prng(seed);
  const log: string[] = [];
  const say = (line: string) => {
    if (verbose) log.push(line);
  };
  const result: SeedResult = {
    seed,
    ackedLost: 0,
    hashMismatch: false,
    detectedCorruption: false,
    failure: undefined,
    acked: 0,
    recordsRecovered: 0,
    log,
  };
  const fs = new SimFileSystem({ seed, syncWrites: prng.chance(0.5) });
  const ackPoint = prng.chance(0.7) ? ('disk' as const) : ('memory' as const);
  const flushPolicy = randomPolicy(prng);
  const segmentBytesMax = prng.pick([512, 2048, 8192]);
  const snapshots = prng.chance(0.4)
    ? { everyLogBytes: prng.pick([1024, 4096]), everyMs: 3_600_000, keep: 1 + prng.int(2) }
    : undefined;
  let nowMs = 1_000_000;
  const options = {
    dir: DIR,
    fs,
    ackPoint,
    flushPolicy,
    segmentBytesMax,
    snapshots,
    clock: () => nowMs++,
    idempotency: { maxEntries: 1_000_000 },
  };
  say(
    `ackPoint=${ackPoint} policy=${JSON.stringify(flushPolicy)} segment=${segmentBytesMax} snapshots=${JSON.stringify(snapshots)} syncWrites=${fs.supportsSyncWrites}`,
  );

  const store = await Store.open(bankDefinition, options);
  const submitted: Submitted[] = [];
  const byLsn = new Map<number, BankCommand>();
  let crashed = false;
  const steps = 10 + prng.int(60);
  const faultAt = prng.chance(0.5) ? prng.int(steps) : -1;
  const crashAt = prng.int(steps + 1);
  const pending: Promise<unknown>[] = [];
  let durableAtCrash = 0;

  const submit = (command: BankCommand) => {
    const entry: Submitted = { command, lsn: undefined, acked: false, result: undefined };
    const before = store.lsnApplied;
    const promise =
      command.kind === 'deposit'
        ? store.execute('deposit', { id: command.id, account: command.account, amount: command.amount })
        : store.execute('transfer', { from: command.from, to: command.to, amount: command.amount });
    if (store.lsnApplied === before + 1) {
      entry.lsn = store.lsnApplied;
      byLsn.set(entry.lsn, command);
    }
    submitted.push(entry);
    pending.push(
      promise.then(
        (value) => {
          if (crashed) return;
          entry.acked = true;
          entry.result = value;
          entry.lsn ??= (value as { lsn: number }).lsn;
        },
        () => undefined,
      ),
    );
  };

  for (let step = 0; step <= steps && !crashed; step++) {
    if (step === faultAt) {
      const rule = randomFault(prng);
      fs.injectFault(rule);
      say(`step ${step}: fault ${JSON.stringify(rule)}`);
    }
    if (step === crashAt) break;
    const burst = 1 + prng.int(8);
    for (let i = 0; i < burst; i++) {
      const roll = prng.int(10);
      if (roll < 5) {
        const retry =
          submitted.length > 0 && prng.chance(0.25)
            ? submitted[prng.int(submitted.length)].command
            : undefined;
        if (retry?.kind === 'deposit') submit(retry);
        else
          submit({
            kind: 'deposit',
            id: `d${seed}-${step}-${i}`,
            account: prng.pick(ACCOUNTS),
            amount: 1 + prng.int(100),
          });
      } else if (roll < 9) {
        submit({
          kind: 'transfer',
          from: prng.pick(ACCOUNTS),
          to: prng.pick(ACCOUNTS),
          amount: 1 + prng.int(150),
        });
      } else {
        submit({ kind: 'deposit', id: `bad${seed}-${step}-${i}`, account: 'a', amount: -1 });
      }
    }
    if (snapshots && prng.chance(0.05)) store.snapshot().catch(() => undefined);
    const waits = prng.int(6);
    for (let i = 0; i < waits; i++) await tick();
    if (prng.chance(0.1)) await Promise.all(pending);
  }
  durableAtCrash = store.failed ? store.lsnDurable : store.lsnDurable;
  crashed = true;
  const rebooted = fs.crash();
  say(`crash: applied ${store.lsnApplied}, durable ${durableAtCrash}, failed ${store.failed?.code ?? 'no'}`);
  await Promise.allSettled(pending);

  let flipped = false;
  if (prng.chance(0.15)) {
    const files = rebooted
      .paths()
      .filter(
        (p) => (p.endsWith('.log') || p.endsWith('.snap')) && (rebooted.durableContent(p)?.length ?? 0) > 0,
      );
    if (files.length > 0) {
      const file = prng.pick(files);
      const where = rebooted.flipBit(file);
      flipped = true;
      say(`flipped bit ${where.bit} at ${file}:${where.byteOffset}`);
    }
  }

  const mustSurvive = submitted.filter(
    (s) => s.acked && s.lsn !== undefined && (ackPoint === 'disk' || s.lsn <= durableAtCrash),
  );
  result.acked = mustSurvive.length;
  let recovered: Awaited<ReturnType<typeof Store.open<any, any, any, any>>>;
  try {
    recovered = await Store.open(bankDefinition, { ...options, fs: rebooted, snapshots: undefined });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (flipped && (code === 'corruption' || code === 'log_gap' || code === 'unknown_record_type')) {
      result.detectedCorruption = true;
      say(`recovery refused (${code}) after a bit flip: ${(error as Error).message}`);
      return result;
    }
    result.failure = `recovery failed (${code}): ${(error as Error).message}`;
    return result;
  }
  const k = recovered.lsnApplied;
  result.recordsRecovered = k;
  say(
    `recovered ${k} records (snapshot ${recovered.recovery.snapshot?.lsn ?? 'none'}, replayed ${recovered.recovery.recordsReplayed})`,
  );
  for (const torn of recovered.recovery.tornTails) say(`  cut torn tail: ${JSON.stringify(torn)}`);
  if (verbose)
    for (const p of rebooted.paths())
      say(`  file ${p}: ${rebooted.durableContent(p)?.length ?? '-'} durable bytes`);
  for (const s of mustSurvive) {
    if (s.lsn! > k) {
      result.ackedLost++;
      say(`LOST: ${JSON.stringify(s.command)} acked at LSN ${s.lsn}, recovered only ${k}`);
    }
  }
  const commands: BankCommand[] = [];
  for (let lsn = 1; lsn <= k; lsn++) {
    const command = byLsn.get(lsn);
    if (!command) {
      result.failure = `recovered LSN ${lsn} was never recorded by this run`;
      await recovered.close().catch(() => undefined);
      return result;
    }
    commands.push(command);
  }
  const model = applyModel(commands);
  const actualHash = recovered.readStale((s) => hashState(s));
  if (actualHash !== hashState(model)) {
    result.hashMismatch = true;
    say(
      `HASH MISMATCH: model ${JSON.stringify([...model.balances])} vs ${JSON.stringify(recovered.readStale((s) => [...s.balances]))}`,
    );
  }
  for (const s of mustSurvive) {
    if (s.command.kind !== 'deposit' || s.lsn! > k) continue;
    const again = await recovered.execute('deposit', {
      id: s.command.id,
      account: s.command.account,
      amount: s.command.amount,
    });
    if (JSON.stringify(again) !== JSON.stringify(s.result)) {
      result.failure = `retry of ${s.command.id} returned ${JSON.stringify(again)}, recorded ${JSON.stringify(s.result)}`;
    }
  }
  await recovered.execute('deposit', { id: `after-${seed}`, account: 'z', amount: 1 });
  const hashBeforeClose = recovered.stateHash();
  await recovered.close();
  let second: typeof recovered;
  try {
    second = await Store.open(bankDefinition, { ...options, fs: rebooted, snapshots: undefined });
  } catch (error) {
    result.failure = `second recovery, after a clean close, failed: ${(error as Error).message}`;
    return result;
  }
  if (second.stateHash() !== hashBeforeClose) {
    result.hashMismatch = true;
    say('second recovery changed the state hash');
  }
  await second.close();
  return result;
}

export interface SimSummary {
  seeds: number;
  acked_lost: number;
  hash_mismatches: number;
  failures: number;
  detected_corruptions: number;
  duration_s: number;
}

export async function runSeeds(
  from: number,
  count: number,
  onFailure: (r: SeedResult) => void,
  onProgress?: (done: number) => void,
): Promise<SimSummary> {
  const startMs = performance.now();
  const summary: SimSummary = {
    seeds: 0,
    acked_lost: 0,
    hash_mismatches: 0,
    failures: 0,
    detected_corruptions: 0,
    duration_s: 0,
  };
  for (let seed = from; seed < from + count; seed++) {
    let r: SeedResult;
    try {
      r = await runSeed(seed);
    } catch (error) {
      r = {
        seed,
        ackedLost: 0,
        hashMismatch: false,
        detectedCorruption: false,
        failure: `threw: ${(error as Error).stack}`,
        acked: 0,
        recordsRecovered: 0,
        log: [],
      };
    }
    summary.seeds++;
    summary.acked_lost += r.ackedLost;
    if (r.hashMismatch) summary.hash_mismatches++;
    if (r.detectedCorruption) summary.detected_corruptions++;
    if (r.failure || r.ackedLost > 0 || r.hashMismatch) {
      summary.failures++;
      onFailure(r);
    }
    if (summary.seeds % 100 === 0) onProgress?.(summary.seeds);
  }
  summary.duration_s = Math.round((performance.now() - startMs) / 10) / 100;
  return summary;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '1000' },
      from: { type: 'string', default: '1' },
      seed: { type: 'string' },
      verbose: { type: 'boolean', default: false },
    },
  });
  if (values.seed !== undefined) {
    const r = await runSeed(Number(values.seed), true);
    for (const line of r.log) console.log(`  ${line}`);
    console.log(
      JSON.stringify({
        seed: r.seed,
        acked: r.acked,
        acked_lost: r.ackedLost,
        hash_mismatch: r.hashMismatch,
        detected_corruption: r.detectedCorruption,
        failure: r.failure ?? null,
      }),
    );
    process.exit(r.failure || r.ackedLost || r.hashMismatch ? 1 : 0);
  }
  const from = Number(values.from);
  const count = Number(values.seeds);
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(from)) {
    console.error('usage: npm run sim -- --seeds N [--from S] | --seed S [--verbose]');
    process.exit(2);
  }
  const summary = await runSeeds(
    from,
    count,
    (r) =>
      console.log(
        `FAIL seed ${r.seed}: ${r.failure ?? ''}${r.ackedLost ? ` ${r.ackedLost} acknowledged lost` : ''}${r.hashMismatch ? ' hash mismatch' : ''}\n  replay: npm run sim -- --seed ${r.seed} --verbose`,
      ),
    (done) => process.stderr.write(`  ${done}/${count} seeds\n`),
  );
  console.log(JSON.stringify(summary));
  process.exit(summary.failures > 0 ? 1 : 0);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
