/**
 * Child of kill9.test.ts: opens the store in `dir` on the real disk at the `disk` ack point and runs
 * commands (deposits and transfers, some of them retries of the previous round's) with many in flight,
 * printing "ack <key> <lsn>" the moment each one resolves, until it is killed.
 *
 *   node --import tsx writer-child.ts <dir> <round> [<previous round>]
 */
import { Store } from '../../src/engine/store.ts';
import { bankDefinition } from '../../src/engine/testing/bank.ts';
import { commandInput } from '../sim/bank-model.ts';
import { commandFor, commandKey, retryOf } from './workload.ts';

/** Commands in flight: enough that each group commit carries many. */
const WORKERS = 64;
/** Small segments, so the load rolls to new segments and a kill can land mid-roll. */
const SEGMENT_BYTES_MAX = 64 * 1024;

const [dir, round, previousRound] = process.argv.slice(2);
const store = await Store.open(bankDefinition, { dir, ackPoint: 'disk', segmentBytesMax: SEGMENT_BYTES_MAX });
process.stdout.write(`ready ${store.lsnApplied}\n`);
let next = 0;
const worker = async () => {
  for (;;) {
    const i = next++;
    const key = retryOf(previousRound, i) ?? commandKey(round, i);
    const command = commandFor(key);
    const result =
      command.kind === 'deposit'
        ? await store.execute('deposit', commandInput(command) as never)
        : await store.execute('transfer', commandInput(command) as never);
    process.stdout.write(`ack ${key} ${(result as { lsn: number }).lsn}\n`);
  }
};
await Promise.all(Array.from({ length: WORKERS }, worker));
