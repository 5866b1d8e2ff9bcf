/**
 * A no-op HTTP/1.1 server for measuring the load generators' own ceiling: it answers every request (found by
 * its blank line; request bodies here are JSON, which never contains one) with a canned 200 of the size of a
 * balance-gate reservation response, without parsing anything. It runs in its own process, on the same two
 * cores, so the ceiling measured against it is a lower bound of the generator's.
 */
import { createServer } from 'node:net';

const BODY =
  '{"reservation_id":"noop-0","status":"held","sequence":1,"merchant":{"merchant_id":"merchant-0","available_cents":999999995000,"held_cents":5000,"captured_cents":0,"credited_cents":1000000000000},"lsn":1}';
const RESPONSE = Buffer.from(
  `HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${BODY.length}\r\nKeep-Alive: timeout=72\r\n\r\n${BODY}`,
);
const BLANK_LINE = Buffer.from('\r\n\r\n');

const server = createServer({ noDelay: true }, (socket) => {
  let carry = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    let count = 0;
    let at = data.indexOf(BLANK_LINE);
    let last = 0;
    while (at >= 0) {
      count++;
      last = at + 4;
      at = data.indexOf(BLANK_LINE, last);
    }
    // Keep the tail that could hold the start of the next blank line.
    carry = Buffer.from(data.subarray(Math.max(last, data.length - 3)));
    if (count === 1) socket.write(RESPONSE);
    else if (count > 1) socket.write(Buffer.concat(Array.from({ length: count }, () => RESPONSE)));
  });
  socket.on('error', () => undefined);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.on('disconnect', () => process.exit(0));
