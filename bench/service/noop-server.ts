/**
 * A no-op HTTP/1.1 server that answers every request with a canned 200 of the size of a balance-gate
 * reservation response, in its own process on the same two cores. Two flavours (argv[2]):
 *
 * - `net` (default): raw sockets, each request found by its blank line (request bodies here are JSON, which
 *   never contains one), nothing parsed. The ceiling measured against it is a lower bound of the load
 *   generators' own.
 * - `http`: Node's HTTP server (node:http, llhttp), reading each body and answering through its response
 *   object: the ceiling of the layer balance-gate's hot routes sit on, with no work of the gate's own.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';

const BODY =
  '{"reservation_id":"noop-0","status":"held","sequence":1,"merchant":{"merchant_id":"merchant-0","available_cents":999999995000,"held_cents":5000,"captured_cents":0,"credited_cents":1000000000000},"lsn":1}';
const CONTENT_TYPE = 'application/json; charset=utf-8';
const RESPONSE = Buffer.from(
  `HTTP/1.1 200 OK\r\ncontent-type: ${CONTENT_TYPE}\r\ncontent-length: ${BODY.length}\r\nKeep-Alive: timeout=72\r\n\r\n${BODY}`,
);
const BLANK_LINE = Buffer.from('\r\n\r\n');

function rawServer(): Server {
  return createServer({ noDelay: true }, (socket) => {
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
}

function httpServer(): Server {
  return createHttpServer({ noDelay: true, keepAliveTimeout: 72_000 }, (request, response) => {
    // The body is read (as balance-gate's routes read it) and dropped.
    request.on('data', () => undefined);
    request.on('end', () => {
      response.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': BODY.length });
      response.end(BODY);
    });
  });
}

const flavour = process.argv[2] ?? 'net';
if (flavour !== 'net' && flavour !== 'http') throw new Error(`no-op server: unknown flavour '${flavour}'`);
const server = flavour === 'http' ? httpServer() : rawServer();
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.on('disconnect', () => process.exit(0));
