/**
 * Child of bench/restart.ts: one clean restart in a fresh process (so heap figures are this store's alone),
 * reported as one JSON line on stdout. With `--follow`, the store is then closed and opened again as
 * balance-gate opens it, with a resident checkpoint worker (decision 017), and the child also reports how
 * long that worker took to catch up after this restart from a snapshot, the write p99 at a fixed rate
 * meanwhile, and the memory the worker's copy of the state added to the process.
 */
import { parseArgs } from 'node:util';
import { balanceGateDefinition } from '../apps/balance-gate/domain.ts';
import { Store } from '../src/engine/store.ts';
import { fileMappingStats } from '../src/storage/file-mapping.ts';
import { prefaultedMemory } from '../src/util/prefaulted-memory.ts';
import { offer } from './lib/latency.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    follow: { type: 'boolean', default: false },
    'rate-per-s': { type: 'string', default: '10000' },
    merchants: { type: 'string', default: '100000' },
  },
});
const dir = positionals[0]!;
/** Writes made after the restart, by every phase: their ids stay unique. */
let written = 0;
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const memoryBefore = process.memoryUsage();
const sparesBefore = prefaultedMemory.stats().spareBytes;
const mappedBefore = fileMappingStats().mappedBytes;
const startMs = performance.now();
const store = await Store.open(balanceGateDefinition, { dir });
const restartMs = performance.now() - startMs;
gc?.();
// Finalization callbacks (which keep fileMappingStats current) run as tasks after a collection.
await new Promise((resolve) => setTimeout(resolve, 50));
gc?.();
const memoryAfter = process.memoryUsage();
const holds = store.readStale((s) => s.reservations.size);
const merchants = store.readStale((s) => s.merchantList.length);
const r = store.recovery;
const figures = {
  restartMs,
  holds,
  merchants,
  snapshotLsn: r.snapshot?.lsn ?? 0,
  snapshotBytes: r.snapshot?.bytes ?? 0,
  snapshotLoadMs: r.snapshot?.loadMs ?? 0,
  recordsReplayed: r.recordsReplayed,
  replayMs: r.replayMs,
  // Prefaulted spares are the helper thread's allocations, and a mapped snapshot is the kernel's: this
  // isolate's figures leave both out. (All of a mapped snapshot counts, though the kernel can drop the
  // pages nobody touched and read them again.)
  heapBytes:
    memoryAfter.heapUsed -
    memoryBefore.heapUsed +
    (memoryAfter.arrayBuffers - memoryBefore.arrayBuffers) +
    (prefaultedMemory.stats().spareBytes - sparesBefore) +
    (fileMappingStats().mappedBytes - mappedBefore),
  mappedBytes: fileMappingStats().mappedBytes - mappedBefore,
};
await store.close();
console.log(JSON.stringify(values.follow ? { ...figures, ...(await followAfterRestart()) } : figures));

/**
 * The second open, with the resident worker: it loads the snapshot this restart used and replays the same
 * tail, while writes arrive at a fixed rate. Resident memory is the whole process's, so the figure includes
 * the worker's isolate, which `process.memoryUsage().heapUsed` here does not. Then a control: the store
 * opened again without a worker, at the same rate for as long. The disk after a benchmark's writes stalls
 * now and then for 100-170 ms (decision 003), worker or not; the control is measured second, later and so
 * calmer, which makes the comparison stricter for the worker, not kinder.
 */
async function followAfterRestart() {
  const definitionModule = new URL('../apps/balance-gate/domain.ts', import.meta.url).href;
  const following = await Store.open(balanceGateDefinition, {
    dir,
    snapshots: {
      worker: { module: definitionModule, exportName: 'balanceGateDefinition', resident: true },
      everyMs: 3_600_000,
      everyLogBytes: 2 ** 50,
      keep: 2,
    },
  });
  gc?.();
  const rssBefore = process.memoryUsage().rss;
  const catchUpStartMs = performance.now();
  const withWorker = await writeAtFixedRate(following, following.snapshotWorkerCaughtUp());
  const followCatchUpMs = performance.now() - catchUpStartMs;
  const rssAfter = process.memoryUsage().rss;
  await following.close();
  const alone = await Store.open(balanceGateDefinition, { dir });
  gc?.();
  const control = await writeAtFixedRate(
    alone,
    new Promise((resolve) => setTimeout(resolve, followCatchUpMs)),
  );
  await alone.close();
  return {
    followCatchUpMs,
    followWriteP99Ms: withWorker.p99Ms,
    followWriteP50Ms: withWorker.p50Ms,
    controlWriteP99Ms: control.p99Ms,
    workerRssBytes: rssAfter - rssBefore,
  };
}

async function writeAtFixedRate(store: Store<any, any, any, any>, until: Promise<unknown>) {
  const merchantCount = Number(values.merchants);
  const result = await offer(
    (command) => store.execute('reserve', command),
    () => {
      const n = written++;
      return {
        reservationId: `after-restart-${n}`,
        merchantId: `merchant-${n % merchantCount}`,
        amountCents: 1,
      };
    },
    { ratePerS: Number(values['rate-per-s']), durationMs: 10 * 60_000, until },
  );
  if (result.errors > 0) throw new Error(`${result.errors} writes failed, the first: ${result.firstError}`);
  return result;
}
