import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { HotRoutes } from './hot-routes.ts';
import { attachHttpFront, type HttpFront, parseHead } from './http-front.ts';
import { closeGracefully, createJsonServer, frontOf } from './json-server.ts';

// The front reads hot requests off the socket and hands everything else, with the connection, to Node's
// server. These tests speak raw HTTP/1.1 over a socket, so that what the front sees is exactly what is sent.

let server: Server;
let front: HttpFront;
let hot: HotRoutes;
let port: number;
/** Requests that Node's server (not the front) saw, as "METHOD URL". */
const nodeSaw: string[] = [];

before(async () => {
  hot = new HotRoutes(
    [
      {
        url: '/echo',
        bodyBytesMax: 64 * 1024,
        validate: new Ajv().compile({ type: 'object' }),
        ready: () => true,
        // Answers {"n": n} after `delayMs`, so a test can make a later request finish first.
        run: async (body) => {
          const { n, delayMs } = body as { n: number; delayMs?: number };
          if (delayMs) await sleep(delayMs);
          return JSON.stringify({ n });
        },
      },
    ],
    { token: undefined, httpMetrics: undefined, errorLog: undefined, contractHint: 'see the test' },
  );
  server = createServer((request, response) => {
    nodeSaw.push(`${request.method} ${request.url}`);
    if (hot.take(request, response)) return;
    request.resume();
    request.on('end', () => {
      const text = `node:${request.method} ${request.url}`;
      response.writeHead(200, { 'content-type': 'text/plain', 'content-length': text.length });
      response.end(text);
    });
  });
  front = attachHttpFront(server, hot, { keepAliveTimeoutMs: 300, requestTimeoutMs: 1_000 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
after(async () => {
  server.closeAllConnections();
  front.destroyAll();
  await new Promise((resolve) => server.close(resolve));
});

function post(body: string, extraHeaders = ''): string {
  return `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A raw client: what it wrote, and the answers it has read so far (framed by Content-Length). */
class Client {
  readonly socket: Socket;
  private buffer = Buffer.alloc(0);
  readonly answers: Answer[] = [];
  ended = false;
  closed = false;

  constructor() {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    this.socket.on('end', () => {
      this.ended = true;
    });
    this.socket.on('close', () => {
      this.closed = true;
    });
    this.socket.on('error', () => undefined);
  }

  private parse(): void {
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = this.buffer.toString('latin1', 0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (this.buffer.length < end + 4 + length) return;
      this.answers.push({
        status: Number(lines[0].split(' ')[1]),
        headers,
        body: this.buffer.toString('utf8', end + 4, end + 4 + length),
      });
      this.buffer = this.buffer.subarray(end + 4 + length);
    }
  }

  write(text: string): void {
    this.socket.write(text);
  }

  /** Writes `text` one byte at a time, `gapMs` apart. */
  async trickle(text: string, gapMs: number): Promise<void> {
    for (const byte of text) {
      this.write(byte);
      await sleep(gapMs);
    }
  }

  async answered(count: number, timeoutMs = 5_000): Promise<Answer[]> {
    const until = Date.now() + timeoutMs;
    while (this.answers.length < count) {
      if (Date.now() > until)
        throw new Error(
          `expected ${count} answers, got ${this.answers.length}: ${JSON.stringify(this.answers)}`,
        );
      await sleep(5);
    }
    return this.answers;
  }

  async waitFor(what: () => boolean, label: string, timeoutMs = 5_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!what()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${label}`);
      await sleep(5);
    }
  }
}

/** parseHead over a head given as text, within a buffer that holds more bytes on both sides. */
function head(text: string) {
  const bytes = Buffer.from(`xx${text}\r\n\r\n{"body":1}`, 'latin1');
  return parseHead(bytes, 2, 2 + Buffer.byteLength(text, 'latin1'));
}

test('parseHead reads the plain hot request head, trimming header values', () => {
  assert.deepEqual(
    head(
      'POST /v1/reservations HTTP/1.1\r\nhost: a\r\nContent-Type:  application/json \r\nAuthorization: Bearer t\r\nContent-Length: 12\r\nConnection: Keep-Alive\r\nX-Other: anything at all \t\u00e9',
    ),
    {
      url: '/v1/reservations',
      authorization: 'Bearer t',
      contentType: 'application/json',
      contentLength: 12,
    },
  );
});

test('parseHead leaves every head it is not sure to read as Node would to Node', () => {
  const good = ['POST /echo HTTP/1.1', 'Host: x', 'Content-Length: 5'];
  const heads: [string, string[]][] = [
    ['another method', ['GET /echo HTTP/1.1', 'Host: x', 'Content-Length: 5']],
    ['HTTP/1.0', ['POST /echo HTTP/1.0', 'Host: x', 'Content-Length: 5']],
    ['an absolute target', ['POST http://x/echo HTTP/1.1', 'Host: x', 'Content-Length: 5']],
    ['a space in the target', ['POST /ec ho HTTP/1.1', 'Host: x', 'Content-Length: 5']],
    ['no Host', ['POST /echo HTTP/1.1', 'Content-Length: 5']],
    ['two Hosts', [...good, 'Host: y']],
    ['no Content-Length', ['POST /echo HTTP/1.1', 'Host: x']],
    ['two Content-Lengths', [...good, 'Content-Length: 5']],
    ['a Content-Length with a leading zero', ['POST /echo HTTP/1.1', 'Host: x', 'Content-Length: 05']],
    ['a signed Content-Length', ['POST /echo HTTP/1.1', 'Host: x', 'Content-Length: +5']],
    ['a Content-Length list', ['POST /echo HTTP/1.1', 'Host: x', 'Content-Length: 5, 5']],
    ['a zero Content-Length', ['POST /echo HTTP/1.1', 'Host: x', 'Content-Length: 0']],
    ['Transfer-Encoding', [...good, 'Transfer-Encoding: chunked']],
    ['Expect', [...good, 'Expect: 100-continue']],
    ['Upgrade', [...good, 'Upgrade: websocket']],
    ['Connection: close', [...good, 'Connection: close']],
    ['a Connection list', [...good, 'Connection: keep-alive, Upgrade']],
    ['two content types', [...good, 'Content-Type: a', 'Content-Type: b']],
    ['a folded line', [...good, 'X-A: 1', ' continued']],
    ['a space before the colon', [...good, 'X-A : 1']],
    ['no colon', [...good, 'X-A']],
    ['a bare LF in a value', [...good, 'X-A: 1\nX-B: 2']],
    ['a bare CR in a value', [...good, 'X-A: 1\rX-B: 2']],
    ['a control character in a value', [...good, 'X-A: a\x01b']],
    ['DEL in a value', [...good, 'X-A: a\x7fb']],
    ['a non-token byte in a name', [...good, 'X\u00e9: 1']],
    ['an empty name', [...good, ': 1']],
    [
      'a Content-Length over 16 digits',
      ['POST /echo HTTP/1.1', 'Host: x', `Content-Length: 1${'0'.repeat(16)}`],
    ],
    ['an empty Content-Length', ['POST /echo HTTP/1.1', 'Host: x', 'Content-Length: ']],
    ['lower-case post', ['post /echo HTTP/1.1', 'Host: x', 'Content-Length: 5']],
    ['HTTP/1.10', ['POST /echo HTTP/1.10', 'Host: x', 'Content-Length: 5']],
    ['a tab before the version', ['POST /echo\tHTTP/1.1', 'Host: x', 'Content-Length: 5']],
    ['two spaces before the version', ['POST /echo  HTTP/1.1', 'Host: x', 'Content-Length: 5']],
    ['an empty line among the headers', [...good, '', 'X-A: 1']],
  ];
  for (const [name, lines] of heads) assert.equal(head(lines.join('\r\n')), undefined, name);
  assert.notEqual(head(good.join('\r\n')), undefined, 'the control case reads');
  assert.equal(head('POST /echo HTTP/1.1'), undefined, 'a request line alone (no Host)');
  assert.equal(head(`${good.join('\r\n')}\r`), undefined, 'a bare CR at the end');
  assert.equal(head(`${good.join('\r\n')}\x7f`), undefined, 'DEL at the end');
});

test('pipelined hot requests are answered in request order, even when a later one is decided first', async () => {
  const client = new Client();
  client.write(post('{"n":1,"delayMs":60}') + post('{"n":2}') + post('{"n":3,"delayMs":20}'));
  const answers = await client.answered(3);
  assert.deepEqual(
    answers.map((a) => a.body),
    ['{"n":1}', '{"n":2}', '{"n":3}'],
  );
  assert.equal(answers[0].headers.connection, 'keep-alive');
  assert.equal(answers[0].headers['keep-alive'], 'timeout=0');
  assert.equal(answers[0].headers['content-type'], 'application/json; charset=utf-8');
  assert.ok(answers[0].headers.date, 'a Date header');
  client.socket.destroy();
});

test('a request for Node mid-connection is handed over after the answers before it, with the bytes after it', async () => {
  const servedBefore = hot.served;
  nodeSaw.length = 0;
  const client = new Client();
  client.write(
    post('{"n":1,"delayMs":40}') +
      'GET /other HTTP/1.1\r\nHost: x\r\n\r\n' +
      post('{"n":3}') +
      'POST /plain HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi',
  );
  const answers = await client.answered(4);
  assert.deepEqual(
    answers.map((a) => a.body),
    ['{"n":1}', 'node:GET /other', '{"n":3}', 'node:POST /plain'],
  );
  // The first by the front, the rest through Node's server (whose handler offers /echo to the hot routes).
  assert.deepEqual(nodeSaw, ['GET /other', 'POST /echo', 'POST /plain']);
  assert.equal(hot.served - servedBefore, 2);
  client.socket.destroy();
});

test('a request arriving a byte at a time is answered by the front', async () => {
  nodeSaw.length = 0;
  const client = new Client();
  await client.trickle(post('{"n":7}'), 1);
  // Well within requestTimeoutMs (1 s): this test is about pieces, the next one about time.
  const [answer] = await client.answered(1);
  assert.equal(answer.body, '{"n":7}');
  assert.deepEqual(nodeSaw, [], 'Node saw none of it');
  client.socket.destroy();
});

test('a body in many pieces and 2,000 pipelined requests are all answered, in order', async () => {
  const client = new Client();
  const big = JSON.stringify({ n: 0, pad: 'p'.repeat(60_000) });
  const request = post(big);
  for (let i = 0; i < request.length; i += 1000) client.write(request.slice(i, i + 1000));
  let many = '';
  for (let n = 1; n <= 2000; n++) many += post(`{"n":${n}}`);
  client.write(many);
  const answers = await client.answered(2001, 20_000);
  assert.deepEqual(
    answers.map((a) => JSON.parse(a.body).n),
    Array.from({ length: 2001 }, (_, i) => i),
  );
  client.socket.destroy();
});

test('what the front does not read gets Node answers: a head over 16 KiB (431), HTTP/1.0, a bad request', async () => {
  const huge = new Client();
  huge.write(`POST /echo HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(20_000)}\r\nContent-Length: 2\r\n\r\n{}`);
  assert.equal((await huge.answered(1))[0].status, 431);
  const old = new Client();
  old.write('POST /echo HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"n":10}');
  const [answer] = await old.answered(1);
  assert.equal(answer.body, '{"n":10}', 'answered through the hot route on Node’s path');
  await old.waitFor(() => old.closed, 'Node to close an HTTP/1.0 connection');
  const bad = new Client();
  bad.write(`${post('{"n":1}')}NOT HTTP AT ALL\r\n\r\n`);
  const answers = await bad.answered(2);
  assert.equal(answers[0].body, '{"n":1}');
  assert.equal(answers[1].status, 400);
  huge.socket.destroy();
  bad.socket.destroy();
});

test('a client that half-closes after its request gets the answer, then the end of the connection', async () => {
  const client = new Client();
  client.socket.end(post('{"n":5,"delayMs":30}'));
  const [answer] = await client.answered(1);
  assert.equal(answer.body, '{"n":5}');
  assert.equal(answer.headers.connection, 'close');
  await client.waitFor(() => client.closed, 'the connection to close');
});

test('a request that trickles in for longer than the request timeout goes to Node', async () => {
  nodeSaw.length = 0;
  const client = new Client();
  await client.trickle(post('{"n":8}'), 20);
  const [answer] = await client.answered(1);
  assert.equal(answer.body, '{"n":8}');
  assert.deepEqual(nodeSaw, ['POST /echo'], 'Node read the rest');
  client.socket.destroy();
});

test('an idle connection is closed after the keep-alive time; a request left half-sent then goes to Node', async () => {
  const idle = new Client();
  idle.write(post('{"n":1}'));
  await idle.answered(1);
  await idle.waitFor(() => idle.closed, 'the idle connection to close', 2_000);
  nodeSaw.length = 0;
  const half = new Client();
  half.write(
    'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"n"',
  );
  await half.waitFor(() => front.openConnections === 1, 'the front to take the connection');
  await half.waitFor(() => front.openConnections === 0, 'the front to hand the connection over', 2_000);
  half.write(':9}');
  const [answer] = await half.answered(1);
  assert.equal(answer.body, '{"n":9}');
  assert.deepEqual(nodeSaw, ['POST /echo'], 'Node read the rest');
  half.socket.destroy();
});

test('closing the JSON server ends idle front connections and lets a busy one finish its answer', async () => {
  let release: () => void = () => undefined;
  const app = createJsonServer({
    bodyBytesMax: 1024,
    token: undefined,
    contractHint: 'see the test',
    hotRoutes: [
      {
        url: '/slow',
        bodyBytesMax: 1024,
        validate: new Ajv().compile({ type: 'object' }),
        ready: () => true,
        run: () => new Promise((resolve) => (release = () => resolve('{"done":true}'))),
      },
    ],
  });
  app.post('/slow', async () => ({ from: 'fastify' }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const appPort = (app.server.address() as { port: number }).port;
  const idle = connect(appPort, '127.0.0.1');
  const busy = connect(appPort, '127.0.0.1');
  let busyText = '';
  let idleClosed = false;
  idle.on('close', () => {
    idleClosed = true;
  });
  busy.on('data', (chunk) => {
    busyText += chunk;
  });
  await Promise.all([new Promise((r) => idle.on('connect', r)), new Promise((r) => busy.on('connect', r))]);
  busy.write(
    'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
  );
  const front = frontOf(app) as HttpFront;
  while (front.openConnections < 2) await sleep(5);
  await sleep(20);
  const closing = closeGracefully(app, 5_000);
  while (!idleClosed) await sleep(5);
  const busyClosed = new Promise((resolve) => busy.on('close', resolve));
  release();
  await closing;
  await busyClosed;
  assert.match(busyText, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(busyText, /\r\nConnection: close\r\n/);
  assert.ok(busyText.endsWith('{"done":true}'));
});

test("whatever head parseHead reads, Node's own parser reads the same way (generated heads)", async () => {
  // A plain Node server, no front: what llhttp made of each head, or that it refused it.
  let seen: { url?: string; length?: string; type?: string; auth?: string } | undefined;
  const plain = createServer((request, response) => {
    seen = {
      url: request.url,
      length: request.headers['content-length'],
      type: request.headers['content-type'],
      auth: request.headers.authorization,
    };
    request.resume();
    request.on('end', () => response.end());
  });
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  const plainPort = (plain.address() as { port: number }).port;
  /** Sends the head and a body of `length` bytes; resolves with the status Node answered. */
  const nodeStatus = (bytes: Buffer) =>
    new Promise<number>((resolve) => {
      const socket = connect(plainPort, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString('latin1');
        const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
        if (status) {
          socket.destroy();
          resolve(Number(status[1]));
        }
      });
      socket.on('error', () => resolve(0));
      socket.on('close', () => resolve(0));
      socket.end(bytes);
    });
  const name = fc.constantFrom(
    'Host',
    'host',
    'HOST',
    'Content-Length',
    'content-length',
    'CONTENT-length',
    'Content-Type',
    'Authorization',
    'Connection',
    'Transfer-Encoding',
    'Expect',
    'X-Other',
    'X Bad',
    'Host ',
    '',
  );
  const ows = fc.constantFrom('', ' ', '  ', '\t', ' \t');
  const value = fc.oneof(
    fc.constantFrom('5', '05', '+5', '5, 5', 'x', 'keep-alive', 'Keep-Alive', 'close', 'chunked'),
    fc.constantFrom('application/json', 'Bearer t', 'a\u00e9b', 'a\x01b', 'a\rb', 'a\nb', 'a\x7f', ''),
  );
  const header = fc.oneof(
    { arbitrary: fc.tuple(ows, value, ows).map(([a, v, b]) => `X-Other:${a}${v}${b}`), weight: 3 },
    { arbitrary: fc.tuple(name, ows, value, ows).map(([n, a, v, b]) => `${n}:${a}${v}${b}`), weight: 1 },
  );
  // Every head starts from the parts a readable head needs, so most runs reach Node.
  const host = fc.tuple(fc.constantFrom('Host', 'host'), ows, fc.constantFrom('x', 'a:1', ''), ows);
  const length = fc.tuple(
    fc.constantFrom('Content-Length', 'content-length'),
    ows,
    fc.constantFrom('5', '12', '1', '9999'),
    ows,
  );
  const requestLine = fc.oneof(
    { arbitrary: fc.constantFrom('POST /echo HTTP/1.1', 'POST /e%20cho?x=1 HTTP/1.1'), weight: 6 },
    {
      arbitrary: fc.constantFrom(
        'POST /echo HTTP/1.0',
        'post /echo HTTP/1.1',
        'POST  /echo HTTP/1.1',
        'POST /echo\tHTTP/1.1',
      ),
      weight: 1,
    },
  );
  let read = 0;
  const runs = Number(process.env.HEAD_RUNS ?? 400);
  try {
    await fc.assert(
      fc.asyncProperty(
        requestLine,
        host.map((parts) => parts.join('').replace(/^(host)/i, '$1:')),
        length.map((parts) => parts.join('').replace(/^(content-length)/i, '$1:')),
        fc.array(header, { maxLength: 3 }),
        fc.nat(),
        async (line, hostLine, lengthLine, extras, order) => {
          const lines = [hostLine, lengthLine, ...extras];
          const turned = lines.slice(order % lines.length).concat(lines.slice(0, order % lines.length));
          const text = [line, ...turned].join('\r\n');
          const headBytes = Buffer.from(text, 'latin1');
          const parsed = parseHead(headBytes, 0, headBytes.length);
          if (parsed === undefined) return;
          read++;
          seen = undefined;
          const status = await nodeStatus(
            Buffer.concat([headBytes, Buffer.from('\r\n\r\n'), Buffer.alloc(parsed.contentLength, 0x61)]),
          );
          assert.equal(status, 200, `Node refused a head the front reads: ${JSON.stringify(text)}`);
          assert.deepEqual(
            seen,
            {
              url: parsed.url,
              length: String(parsed.contentLength),
              type: parsed.contentType,
              auth: parsed.authorization,
            },
            JSON.stringify(text),
          );
        },
      ),
      { numRuns: runs },
    );
    assert.ok(
      read > runs / 10,
      `only ${read} of ${runs} generated heads were readable: the test checks too little`,
    );
  } finally {
    await new Promise((resolve) => plain.close(resolve));
  }
});
