import { constants, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { type LatencySummary, summarize } from './latency.ts';

/** Raw latency of a 4 KiB append + fdatasync in `dir`: the physical floor of a durable ack on this disk. */
export async function probeFdatasync(dir: string, durationMs: number): Promise<LatencySummary> {
  const file = path.join(dir, 'fdatasync-probe.bin');
  const handle = await fsp.open(file, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o644);
  const block = Buffer.alloc(4096, 0x5a);
  const latencies: number[] = [];
  const startMs = performance.now();
  let position = 0;
  try {
    while (performance.now() - startMs < durationMs) {
      const t = performance.now();
      await handle.write(block, 0, block.length, position);
      await handle.datasync();
      latencies.push(performance.now() - t);
      position += block.length;
    }
  } finally {
    await handle.close();
    await fsp.rm(file, { force: true });
  }
  return summarize(latencies, performance.now() - startMs);
}
