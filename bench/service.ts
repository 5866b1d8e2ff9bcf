/**
 * npm run bench:service [-- --quick] [-- --targets gate,redis,postgres]
 *
 * balance-gate over HTTP vs Redis 7 + Lua (appendfsync always) vs PostgreSQL (a transaction per reservation,
 * synchronous_commit on), each started privately on a free port in a temp dir and stopped at the end:
 * saturation throughput, open-loop latency at fixed offered loads (coordinated omission corrected), the batch
 * endpoint, and the load generators' own ceiling. See bench/service/run.ts. Last line of stdout: JSON.
 */
import { parseArgs } from 'node:util';
import { runServiceBench, TARGETS, type TargetName } from './service/run.ts';

const USAGE = `usage: npm run bench:service -- [--quick] [--targets ${TARGETS.join(',')}]
  --quick     short runs: the whole benchmark in under two minutes
  --targets   which targets to run (default: all); the generator ceiling always runs`;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    targets: { type: 'string', default: TARGETS.join(',') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const targets = values.targets.split(',').filter(Boolean) as TargetName[];
const unknown = targets.filter((t) => !TARGETS.includes(t));
if (unknown.length > 0) {
  console.error(`bench:service: unknown target ${unknown.join(', ')}\n${USAGE}`);
  process.exit(2);
}
const figures = await runServiceBench({ quick: values.quick, targets });
const rounded = Object.fromEntries(
  Object.entries(figures).map(([k, v]) => [
    k,
    Number.isFinite(v) && !Number.isInteger(v) ? Number(v.toFixed(3)) : v,
  ]),
);
if (figures.targets_failed > 0) process.exitCode = 1;
console.log(JSON.stringify(rounded));
