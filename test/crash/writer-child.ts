/**
 * Child of kill9.test.ts: writes deposits at the disk ack point with many in flight, and prints each one
 * as soon as it is acknowledged ("ack <id> <lsn>"), until it is killed.
 */
import { Store } from '../../src/engine/store.ts';
import { bankDefinition } from '../../src/engine/testing/bank.ts';

const [dir, round] = process.argv.slice(2);
const store = await Store.open(bankDefinition, { dir, segmentBytesMax: 64 * 1024 });
process.stdout.write(`ready ${store.lsnApplied}\n`);
let n = 0;
const worker = async () => {
  for (;;) {
    const i = n++;
    const id = `r${round}-${i}`;
    const result = await store.execute('deposit', { id, account: `acct${i % 5}`, amount: 1 + (i % 9) });
    process.stdout.write(`ack ${id} ${result.lsn} ${1 + (i % 9)} acct${i % 5}\n`);
  }
};
await Promise.all(Array.from({ length: 64 }, worker));
