/**
 * Child of bench/restart.ts: one clean restart in a fresh process (so heap figures are this store's alone),
 * reported as one JSON line on stdout.
 */
import { balanceGateDefinition } from '../apps/balance-gate/domain.ts';
import { Store } from '../src/engine/store.ts';
import { fileMappingStats } from '../src/storage/file-mapping.ts';
import { prefaultedMemory } from '../src/util/prefaulted-memory.ts';

const dir = process.argv[2];
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
console.log(
  JSON.stringify({
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
  }),
);
await store.close();
