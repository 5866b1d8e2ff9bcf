/**
 * npm run bench:service [-- --quick]
 *
 * balance-gate over HTTP vs Redis 7 + Lua (appendfsync always) vs PostgreSQL (a transaction per reservation,
 * synchronous_commit on), each started privately on a free port in a temp dir and stopped at the end:
 * saturation throughput, open-loop latency at fixed offered loads (coordinated omission corrected), the batch
 * endpoint, and the load generators' own ceiling. See bench/service/run.ts. Last line of stdout: JSON.
 */
import { parseArgs } from 'node:util';
import { runServiceBench } from './service/run.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(
    'usage: npm run bench:service -- [--quick]   (--quick: short runs, under two minutes in total)',
  );
  process.exit(0);
}
const figures = await runServiceBench({ quick: values.quick });
const rounded = Object.fromEntries(
  Object.entries(figures).map(([k, v]) => [
    k,
    Number.isFinite(v) && !Number.isInteger(v) ? Number(v.toFixed(3)) : v,
  ]),
);
if (figures.targets_failed > 0) process.exitCode = 1;
console.log(JSON.stringify(rounded));
