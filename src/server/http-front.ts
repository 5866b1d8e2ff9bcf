/**
 * The hot routes' requests read straight off the socket, in front of Node's HTTP server (decision 020).
 *
 * Node's HTTP machinery (IncomingMessage, ServerResponse, their streams) costs more per request than the
 * store's whole write path does. So the front takes each connection the HTTP server accepts and reads its
 * requests itself, as long as each one is a plain HTTP/1.1 POST that a hot route takes (hot-routes.ts): a
 * request line `POST <hot path> HTTP/1.1`, well-formed header lines, a Host, one Content-Length and nothing
 * that changes the framing or the connection (Transfer-Encoding, Expect, Upgrade, `Connection` other than
 * keep-alive). Such a request is answered here, through the same HotRoutes code as on Node's path.
 *
 * At the first request that is anything else, the front hands the connection to Node's own connection
 * handler, with the bytes not yet answered, once every answer before them is written. From then on Node's
 * parser and fastify serve that connection, as they would have without the front. The front parses
 * conservatively: whatever it is not sure to read exactly as Node's parser (llhttp) would, it hands on, so
 * every error, limit and odd case keeps its one implementation there.
 *
 * Answers go out in request order (pipelining), as Node's server sends them; a client that stops reading
 * is not read from until its answers drain.
 */
import { type Server, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { HotReply, HotRoutes } from './hot-routes.ts';
import { JSON_CONTENT_TYPE } from './json-errors.ts';

/** Node's default limit on a request's headers; a longer head goes to Node, which answers 431. */
const HEAD_BYTES_MAX = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
/** Answers queued on a connection beyond this many bytes: stop reading it until they drain. */
const QUEUED_BYTES_MAX = 1024 * 1024;

export interface HttpFrontOptions {
  /** An idle connection is closed after this long (Node's `keepAliveTimeout`, as fastify set it). */
  keepAliveTimeoutMs: number;
  /**
   * A request still not whole this long after its first bytes goes to Node's server, whose own
   * `requestTimeout` then cuts it (so a client sending a byte at a time holds a socket for a bounded time).
   */
  requestTimeoutMs: number;
}

/** The front of `server`: installed by `attachHttpFront`, closed with the server (see `close`). */
export class HttpFront {
  private readonly connections = new Set<FrontConnection>();
  private closing = false;
  readonly keepAliveHeader: string;
  /**
   * The front's clock for timeouts, in sweeps: a connection notes the tick of its last activity, and a
   * sweep closes the idle ones and hands over the late ones. A socket timeout per connection (Node's
   * `setTimeout`) re-armed a timer at every read and write: ~1% of the main thread under load.
   */
  tick = 0;
  readonly sweepMs: number;

  constructor(
    private readonly server: Server,
    private readonly nodeListener: (socket: Socket) => void,
    readonly hot: HotRoutes,
    readonly options: HttpFrontOptions,
  ) {
    this.keepAliveHeader = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(options.keepAliveTimeoutMs / 1000)}\r\n`;
    const shortest = Math.min(options.keepAliveTimeoutMs, options.requestTimeoutMs);
    this.sweepMs = Math.max(10, Math.min(1000, Math.floor(shortest / 8)));
    const sweeper = setInterval(() => this.sweep(), this.sweepMs).unref();
    server.on('close', () => clearInterval(sweeper));
  }

  /** Whether `ms` have passed since `sinceTick` (to within a sweep). */
  elapsed(sinceTick: number, ms: number): boolean {
    return (this.tick - sinceTick) * this.sweepMs >= ms;
  }

  private sweep(): void {
    this.tick++;
    for (const connection of this.connections) connection.checkTimeouts();
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Connections the front still reads (not handed to Node's server). */
  get openConnections(): number {
    return this.connections.size;
  }

  accept(socket: Socket): void {
    const connection = new FrontConnection(this, socket);
    this.connections.add(connection);
  }

  /** Node's server takes the connection from here on, starting with `rest`. */
  handOff(connection: FrontConnection, socket: Socket, rest: Buffer): void {
    this.forget(connection);
    if (rest.length > 0) socket.unshift(rest);
    this.nodeListener.call(this.server, socket);
    socket.resume();
  }

  forget(connection: FrontConnection): void {
    this.connections.delete(connection);
  }

  /**
   * No connection stays open for another request: idle ones end now, busy ones after their last answer
   * (which says `Connection: close`). A request that arrives meanwhile goes to Node's server, which
   * refuses it while it closes.
   */
  close(): void {
    this.closing = true;
    for (const connection of this.connections) connection.endIfIdle();
  }

  /** Cuts every connection the front still reads, answered or not (the end of a shutdown's grace). */
  destroyAll(): void {
    for (const connection of this.connections) connection.destroy();
  }
}

/**
 * Puts a front before `server`'s connection handler. The HTTP server keeps listening, closing and
 * counting its connections as before; only the handler each accepted socket goes to changes.
 */
export function attachHttpFront(server: Server, hot: HotRoutes, options: HttpFrontOptions): HttpFront {
  const listeners = server.listeners('connection');
  // http.Server registers one listener of its own, Node's connection handler; anything else is unknown.
  if (listeners.length !== 1)
    throw new Error(`expected Node's one connection listener on the HTTP server, found ${listeners.length}`);
  const nodeListener = listeners[0] as (socket: Socket) => void;
  const front = new HttpFront(server, nodeListener, hot, options);
  server.removeListener('connection', nodeListener);
  server.on('connection', (socket: Socket) => front.accept(socket));
  return front;
}

/** One answer, in its place in the connection's request order. */
class Slot implements HotReply {
  bytes: string | Buffer | undefined;
  head = '';

  constructor(private readonly connection: FrontConnection) {}

  send(status: number, json: string | Buffer, extra?: Record<string, string>): void {
    this.connection.answer(this, status, json, extra);
  }
}

/** A connection whose requests the front reads, until it hands the connection to Node. */
class FrontConnection {
  /** The pieces of a request not yet whole, and how many bytes they hold. */
  private pending: Buffer[] | undefined;
  private pendingBytes = 0;
  /** The pending request's whole length once its head is read, else 0 (read again at every piece). */
  private needed = 0;
  /** The front's tick when the connection was last read or written, and when its pending request began. */
  private activeTick: number;
  private pendingTick = -1;
  /** Answers not yet written, in request order. */
  private readonly slots: Slot[] = [];
  /** Set when a request is for Node: the bytes from it on, handed over once the slots are written. */
  private handing: Buffer | undefined;
  private clientEnded = false;
  private closed = false;
  private readonly onData = (chunk: Buffer) => this.read(chunk);
  private readonly onEnd = () => this.clientEnd();
  private readonly onClose = () => this.close();
  private readonly onDrain = () => this.drained();
  private readonly onError = () => undefined;

  constructor(
    private readonly front: HttpFront,
    private readonly socket: Socket,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    // A reset connection has no one to answer; 'close' follows.
    socket.on('error', this.onError);
    this.activeTick = front.tick;
  }

  private read(chunk: Buffer): void {
    this.activeTick = this.front.tick;
    let buffer = chunk;
    if (this.pending !== undefined) {
      // A body arriving in pieces is joined once, when it is whole, not at every piece.
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < this.needed) return;
      buffer = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = undefined;
    }
    let at = 0;
    while (at < buffer.length) {
      const taken = this.request(buffer, at);
      if (taken < 0) {
        this.handOver(buffer.subarray(at));
        return;
      }
      if (taken === 0) {
        const rest = buffer.subarray(at);
        // Not whole yet: kept, unless it is a head longer than Node allows (Node answers that one).
        if (this.needed === 0 && rest.length > HEAD_BYTES_MAX) this.handOver(rest);
        else {
          this.pending = [rest];
          this.pendingBytes = rest.length;
          if (this.pendingTick < 0) this.pendingTick = this.front.tick;
        }
        return;
      }
      at += taken;
      this.pendingTick = -1;
    }
  }

  /**
   * Reads one request at `at`: answers it and returns its length, returns 0 if it is not whole yet, or -1
   * if it is for Node's server.
   */
  private request(buffer: Buffer, at: number): number {
    this.needed = 0;
    if (this.front.isClosing) return -1;
    const headEnd = buffer.indexOf(HEAD_END, at);
    // Only a POST can be for a hot route: anything else goes to Node at once, whole or not.
    if (headEnd < 0)
      return buffer.length - at < 5 || buffer.toString('latin1', at, at + 5) === 'POST ' ? 0 : -1;
    if (headEnd - at > HEAD_BYTES_MAX) return -1;
    const parsed = parseHead(buffer, at, headEnd);
    if (parsed === undefined) return -1;
    const route = this.front.hot.routeFor(
      'POST',
      parsed.url,
      parsed.authorization,
      parsed.contentType,
      parsed.contentLength,
      false,
    );
    if (route === undefined) return -1;
    const bodyStart = headEnd + HEAD_END.length;
    const end = bodyStart + parsed.contentLength;
    if (end > buffer.length) {
      this.needed = end - at;
      return 0;
    }
    this.front.hot.served++;
    const slot = new Slot(this);
    this.slots.push(slot);
    // A view of the read's chunk: Node gives each read a buffer of its own.
    this.front.hot.serve(route, buffer.subarray(bodyStart, end), slot);
    return end - at;
  }

  answer(slot: Slot, status: number, json: string | Buffer, extra?: Record<string, string>): void {
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: ${JSON_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(json)}\r\n`;
    if (extra !== undefined) for (const name of Object.keys(extra)) head += `${name}: ${extra[name]}\r\n`;
    slot.head = head;
    slot.bytes = json;
    this.flush();
  }

  /** Writes the answers that are ready, in order, and moves on once none is left. */
  private flush(): void {
    this.activeTick = this.front.tick;
    const slots = this.slots;
    const socket = this.socket;
    while (slots.length > 0 && slots[0].bytes !== undefined) {
      const slot = slots.shift() as Slot;
      if (this.closed) continue;
      // The last answer of a closing connection says so, as Node's server does.
      const last =
        slots.length === 0 && this.handing === undefined && (this.front.isClosing || this.clientEnded);
      const head = `${slot.head}Date: ${httpDate()}\r\n${last ? 'Connection: close\r\n' : this.front.keepAliveHeader}\r\n`;
      const bytes = slot.bytes as string | Buffer;
      if (typeof bytes === 'string') socket.write(head + bytes);
      else {
        socket.cork();
        socket.write(head);
        socket.write(bytes);
        socket.uncork();
      }
      if (last) {
        // As Node's server does after a `Connection: close` answer: the socket is closed once it is
        // written, not left half-open until the client closes its side.
        this.front.forget(this);
        socket.end(() => socket.destroy());
        return;
      }
    }
    if (this.closed) return;
    if (slots.length === 0 && this.handing !== undefined) this.handOverNow();
    else if (socket.writableLength > QUEUED_BYTES_MAX) socket.pause();
  }

  private handOver(rest: Buffer): void {
    this.pending = undefined;
    this.handing = rest;
    this.socket.pause();
    if (this.slots.length === 0) this.handOverNow();
  }

  private handOverNow(): void {
    const socket = this.socket;
    const rest = this.handing as Buffer;
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('close', this.onClose);
    socket.removeListener('drain', this.onDrain);
    socket.removeListener('error', this.onError);
    this.front.handOff(this, socket, rest);
  }

  private drained(): void {
    if (
      this.handing === undefined &&
      this.socket.isPaused() &&
      this.socket.writableLength <= QUEUED_BYTES_MAX
    )
      this.socket.resume();
  }

  private clientEnd(): void {
    // The client sent all it will send; a request left half-sent is never answered.
    this.clientEnded = true;
    this.pending = undefined;
    if (this.slots.length === 0 && this.handing === undefined) {
      this.front.forget(this);
      this.socket.end();
    }
  }

  /**
   * Called at each sweep. An idle connection closes after the keep-alive time. A request still not whole
   * after the request timeout goes to Node's server, whose own timeout then cuts it: a client that
   * trickles bytes holds a socket for a bounded time. A connection owed an answer is left alone.
   */
  checkTimeouts(): void {
    if (this.slots.length > 0 || this.handing !== undefined) return;
    const front = this.front;
    if (this.pending !== undefined) {
      if (front.elapsed(this.pendingTick, front.options.requestTimeoutMs))
        this.handOver(Buffer.concat(this.pending, this.pendingBytes));
    } else if (front.elapsed(this.activeTick, front.options.keepAliveTimeoutMs)) this.destroy();
  }

  /** Closes the connection if no answer is owed on it, as Node's `closeIdleConnections` does. */
  endIfIdle(): void {
    if (this.slots.length === 0 && this.handing === undefined && this.pending === undefined) this.destroy();
  }

  destroy(): void {
    this.front.forget(this);
    this.socket.destroy();
  }

  private close(): void {
    this.closed = true;
    this.slots.length = 0;
    this.front.forget(this);
  }
}

interface Head {
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  contentLength: number;
}

/**
 * The request head in `b` from `start` to `end` (without its blank line) when the front reads it itself,
 * or undefined for one it leaves to Node's parser. It reads only `POST <path> HTTP/1.1` with CRLF-ended
 * `name: value` lines, where the headers that decide framing and routing appear at most once and Host is
 * present. It works on the bytes: splitting the head into strings and matching each line with a regular
 * expression cost 2.5 µs a head, a few per cent of the whole request (decision 020).
 */
export function parseHead(b: Buffer, start: number, end: number): Head | undefined {
  if (end - start < POST.length || !sameBytes(b, start, POST)) return undefined;
  const lineEnd = b.indexOf(CRLF, start);
  const requestLineEnd = lineEnd < 0 || lineEnd > end ? end : lineEnd;
  const targetEnd = requestLineEnd - HTTP_1_1.length;
  const targetStart = start + POST.length;
  if (targetEnd <= targetStart || !sameBytes(b, targetEnd, HTTP_1_1) || b[targetStart] !== SLASH)
    return undefined;
  for (let i = targetStart; i < targetEnd; i++) if (b[i] < 0x21 || b[i] > 0x7e) return undefined;
  const url = b.toString('latin1', targetStart, targetEnd);
  let host = false;
  let authorization: string | undefined;
  let contentType: string | undefined;
  let contentLength = -1;
  let at = requestLineEnd + 2;
  while (at < end) {
    // The name: token bytes up to the colon.
    const nameStart = at;
    while (at < end && TOKEN_BYTE[b[at]] === 1) at++;
    if (at === nameStart || at >= end || b[at] !== COLON) return undefined;
    const nameEnd = at++;
    while (at < end && (b[at] === SP || b[at] === HT)) at++;
    // The value: no control byte but tab, up to the CRLF that ends the line (a bare CR or LF is one).
    const valueStart = at;
    let valueEnd = at;
    while (at < end) {
      const c = b[at];
      if (c === CR) break;
      if (c < SP ? c !== HT : c === DEL) return undefined;
      at++;
      if (c !== SP && c !== HT) valueEnd = at;
    }
    const lineValueEnd = at;
    if (at < end) {
      if (at + 1 >= end || b[at + 1] !== LF) return undefined;
      at += 2;
      // A line may not be empty, nor the head end in a line break.
      if (at >= end) return undefined;
    }
    switch (headerOf(b, nameStart, nameEnd)) {
      case Header.Host:
        if (host) return undefined;
        host = true;
        break;
      case Header.Authorization:
        if (authorization !== undefined) return undefined;
        authorization = b.toString('latin1', valueStart, valueEnd);
        break;
      case Header.ContentType:
        if (contentType !== undefined) return undefined;
        contentType = b.toString('latin1', valueStart, valueEnd);
        break;
      case Header.ContentLength:
        if (contentLength !== -1) return undefined;
        contentLength = plainLength(b, valueStart, valueEnd);
        // llhttp refuses a tab after the digits (found by the generated-heads test); spaces it takes.
        if (contentLength < 0 || !onlySpaces(b, valueEnd, lineValueEnd)) return undefined;
        break;
      case Header.Connection:
        if (!sameBytesIgnoringCase(b, valueStart, valueEnd, KEEP_ALIVE)) return undefined;
        break;
      case Header.Refused:
        return undefined;
    }
  }
  if (!host || contentLength === -1) return undefined;
  return { url, authorization, contentType, contentLength };
}

const POST = Buffer.from('POST ', 'latin1');
const HTTP_1_1 = Buffer.from(' HTTP/1.1', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
const KEEP_ALIVE = Buffer.from('keep-alive', 'latin1');
const SLASH = 0x2f;
const COLON = 0x3a;
const SP = 0x20;
const HT = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const DEL = 0x7f;

/** Bytes of a header name (RFC 9110 token). */
const TOKEN_BYTE = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
  TOKEN_BYTE[c.charCodeAt(0)] = 1;

enum Header {
  Other,
  Host,
  Authorization,
  ContentType,
  ContentLength,
  Connection,
  /** Transfer-Encoding, Expect, Upgrade: they change the framing or the connection; Node reads those. */
  Refused,
}

const HEADERS: [Buffer, Header][] = (
  [
    ['host', Header.Host],
    ['authorization', Header.Authorization],
    ['content-type', Header.ContentType],
    ['content-length', Header.ContentLength],
    ['connection', Header.Connection],
    ['transfer-encoding', Header.Refused],
    ['expect', Header.Refused],
    ['upgrade', Header.Refused],
  ] as const
).map(([name, header]) => [Buffer.from(name, 'latin1'), header]);

function headerOf(b: Buffer, start: number, end: number): Header {
  for (const [name, header] of HEADERS) if (sameBytesIgnoringCase(b, start, end, name)) return header;
  return Header.Other;
}

function onlySpaces(b: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i] !== SP) return false;
  return true;
}

function sameBytes(b: Buffer, at: number, word: Buffer): boolean {
  for (let k = 0; k < word.length; k++) if (b[at + k] !== word[k]) return false;
  return true;
}

/**
 * Whether b[start, end) is `word` (lower case letters and '-') in any case. Setting bit 0x20 lowers a
 * letter; of the bytes a name or value may hold, only 'a'-'z' and 'A'-'Z' become a lower case letter so,
 * and only '-' becomes '-'.
 */
function sameBytesIgnoringCase(b: Buffer, start: number, end: number, word: Buffer): boolean {
  if (end - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) if ((b[start + k] | 0x20) !== word[k]) return false;
  return true;
}

/** A Content-Length the front reads itself: 1-16 digits, no sign, no leading zero, no list; else -1. */
function plainLength(b: Buffer, start: number, end: number): number {
  const digits = end - start;
  if (digits < 1 || digits > 16 || b[start] === 0x30) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (c < 0x30 || c > 0x39) return -1;
    value = value * 10 + (c - 0x30);
  }
  return value;
}

let dateSecond = -1;
let dateText = '';

/** The Date header's value, made once a second as Node's server does. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
