/**
 * Child process of the peers' kill -9 test (peers.test.ts): opens peer KIND in DIR, preloaded with the test's
 * merchants, and submits the test's deterministic requests with IN_FLIGHT in flight until killed, printing
 * one line per acknowledged reservation: `<index> <status> <sequence|->`. Pipes to the parent are written
 * synchronously on Linux, so a printed acknowledgement is in the parent's hands before the next one starts.
 *
 *   node --import tsx bench/peers/crash-child.ts KIND DIR [IN_FLIGHT]
 */
import { crashTestMerchants, crashTestRequests } from './crash-fixture.ts';
import { isPeerKind, openPeer } from './registry.ts';

const [kind, dir, inFlightArg] = process.argv.slice(2);
if (!kind || !dir || !isPeerKind(kind)) {
  process.stderr.write('usage: crash-child.ts KIND DIR [IN_FLIGHT]\n');
  process.exit(2);
}
const peer = await openPeer(kind, dir, crashTestMerchants());
const requests = crashTestRequests();
const inFlight = Number(inFlightArg ?? 32);
process.stdout.write('ready\n');
let next = 0;
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (next < requests.length) {
      const index = next++;
      const decision = await peer.submit(requests[index]);
      process.stdout.write(`${index} ${decision.status} ${decision.sequence ?? '-'}\n`);
    }
  }),
);
process.stdout.write('done\n');
await peer.close();
