/**
 * The deterministic crash simulation:
 *
 *   npm run sim -- --seeds N [--from S]     N seeds from S (default 1000 from 1)
 *   npm run sim -- --seed S [--verbose]     one seed, with its story when --verbose
 *
 * Each seed is a simulated disk, a store with a random ack point, flush policy, segment size and snapshot
 * policy, a random concurrent workload, injected I/O faults, power losses and bit flips, and recovery
 * checked against an independent model; see seed-run.ts for the workload and every check. Time and
 * randomness are virtual (virtual-time.ts), so a seed replays exactly: a failing seed is printed with the
 * command that replays it. Progress goes to stderr; the last line on stdout is the JSON summary. Exit code 1
 * if any seed failed.
 */
import { parseArgs } from 'node:util';
import { runSeed, type SeedResult } from './seed-run.ts';

export { runSeed, type SeedResult } from './seed-run.ts';

export interface SimSummary {
  seeds: number;
  acked_lost: number;
  hash_mismatches: number;
  failures: number;
  detected_corruptions: number;
  duration_s: number;
}

/** What the seeds exercised, so a run that silently stopped testing something shows it. */
export interface SimCoverage {
  lives: number;
  acked_checked: number;
  records_recovered: number;
  store_failures: number;
  faults_fired: number;
  torn_tails_cut: number;
  snapshot_loads: number;
  interrupted_recoveries: number;
  overload_refusals: number;
}

export function isFailure(r: SeedResult): boolean {
  return r.failure !== undefined || r.ackedLost > 0 || r.hashMismatch;
}

export function describeFailure(r: SeedResult): string {
  const parts = [
    r.failure,
    r.ackedLost > 0 ? `${r.ackedLost} acknowledged-durable lost` : undefined,
    r.hashMismatch ? 'state/hash mismatch' : undefined,
  ].filter((p) => p !== undefined);
  return `seed ${r.seed}: ${parts.join('; ')}\n  replay: npm run sim -- --seed ${r.seed} --verbose`;
}

const PROGRESS_EVERY_SEEDS = 250;

export async function runSeeds(
  from: number,
  count: number,
  onFailure: (r: SeedResult) => void,
  onProgress?: (done: number) => void,
): Promise<{ summary: SimSummary; coverage: SimCoverage }> {
  const startMs = performance.now();
  const summary: SimSummary = {
    seeds: 0,
    acked_lost: 0,
    hash_mismatches: 0,
    failures: 0,
    detected_corruptions: 0,
    duration_s: 0,
  };
  const coverage: SimCoverage = {
    lives: 0,
    acked_checked: 0,
    records_recovered: 0,
    store_failures: 0,
    faults_fired: 0,
    torn_tails_cut: 0,
    snapshot_loads: 0,
    interrupted_recoveries: 0,
    overload_refusals: 0,
  };
  for (let seed = from; seed < from + count; seed++) {
    const r = await runSeed(seed);
    summary.seeds++;
    summary.acked_lost += r.ackedLost;
    if (r.hashMismatch) summary.hash_mismatches++;
    if (r.detectedCorruption) summary.detected_corruptions++;
    if (isFailure(r)) {
      summary.failures++;
      onFailure(r);
    }
    coverage.lives += r.lives;
    coverage.acked_checked += r.acked;
    coverage.records_recovered += r.recordsRecovered;
    coverage.store_failures += r.storeFailures;
    coverage.faults_fired += r.faultsFired;
    coverage.torn_tails_cut += r.tornTailsCut;
    coverage.snapshot_loads += r.snapshotLoads;
    coverage.interrupted_recoveries += r.interruptedRecoveries;
    coverage.overload_refusals += r.overloadRefusals;
    if (summary.seeds % PROGRESS_EVERY_SEEDS === 0) onProgress?.(summary.seeds);
  }
  summary.duration_s = Math.round((performance.now() - startMs) / 10) / 100;
  return { summary, coverage };
}

function usage(message: string): never {
  console.error(`${message}\nusage: npm run sim -- --seeds N [--from S] | --seed S [--verbose]`);
  process.exit(2);
}

function integerOption(value: string | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) usage(`--${name} must be an integer >= ${min}, got '${value}'`);
  return n;
}

async function main(): Promise<void> {
  let values: { seeds?: string; from?: string; seed?: string; verbose?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        seeds: { type: 'string' },
        from: { type: 'string' },
        seed: { type: 'string' },
        verbose: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    usage((error as Error).message);
  }
  const seed = integerOption(values.seed, 'seed', 0);
  if (seed !== undefined) {
    const seedStartMs = performance.now();
    const r = await runSeed(seed, values.verbose);
    for (const line of r.log) console.log(`  ${line}`);
    if (isFailure(r)) console.log(`FAIL ${describeFailure(r)}`);
    console.log(
      JSON.stringify({
        seeds: 1,
        acked_lost: r.ackedLost,
        hash_mismatches: r.hashMismatch ? 1 : 0,
        failures: isFailure(r) ? 1 : 0,
        detected_corruptions: r.detectedCorruption ? 1 : 0,
        duration_s: Math.round((performance.now() - seedStartMs) / 10) / 100,
        failure: r.failure ?? null,
      }),
    );
    process.exit(isFailure(r) ? 1 : 0);
  }
  const count = integerOption(values.seeds, 'seeds', 1) ?? 1000;
  const from = integerOption(values.from, 'from', 0) ?? 1;
  const { summary, coverage } = await runSeeds(
    from,
    count,
    (r) => console.log(`FAIL ${describeFailure(r)}`),
    (done) =>
      process.stderr.write(
        `  ${done}/${count} seeds, ${((performance.now() - startMs) / 1000).toFixed(1)} s\n`,
      ),
  );
  process.stderr.write(`coverage: ${JSON.stringify(coverage)}\n`);
  console.log(JSON.stringify(summary));
  process.exit(summary.failures > 0 ? 1 : 0);
}

const startMs = performance.now();
if (import.meta.url === `file://${process.argv[1]}`) await main();
