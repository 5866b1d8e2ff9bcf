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
const REQUEST_LINE_END = ' HTTP/1.1';
/**
 * A header line: a name (RFC 9110 token), a colon, the value without the spaces or tabs around it. The
 * value may hold no control character but tab, so a bare CR or LF inside a line does not match.
 */
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*$/;
/** The request target of a hot request: a path of printable characters. */
const TARGET = /^\/[\x21-\x7e]*$/;
/** A Content-Length the front reads itself: no sign, no leading zero, no list. */
const LENGTH = /^[1-9][0-9]{0,15}$/;
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

  constructor(
    private readonly server: Server,
    private readonly nodeListener: (socket: Socket) => void,
    readonly hot: HotRoutes,
    readonly options: HttpFrontOptions,
  ) {
    this.keepAliveHeader = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(options.keepAliveTimeoutMs / 1000)}\r\n`;
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
    this.connections.delete(connection);
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
  /** When the request not yet whole began to arrive (Date.now()), or 0. */
  private pendingSinceMs = 0;
  /** Answers not yet written, in request order. */
  private readonly slots: Slot[] = [];
  /** Set when a request is for Node: the bytes from it on, handed over once the slots are written. */
  private handing: Buffer | undefined;
  private clientEnded = false;
  private closed = false;
  private readonly onData = (chunk: Buffer) => this.read(chunk);
  private readonly onEnd = () => this.clientEnd();
  private readonly onClose = () => this.close();
  private readonly onTimeout = () => this.timeout();
  private readonly onDrain = () => this.drained();
  private readonly onError = () => undefined;

  constructor(
    private readonly front: HttpFront,
    private readonly socket: Socket,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('timeout', this.onTimeout);
    socket.on('drain', this.onDrain);
    // A reset connection has no one to answer; 'close' follows.
    socket.on('error', this.onError);
    socket.setTimeout(front.options.keepAliveTimeoutMs);
  }

  private read(chunk: Buffer): void {
    let buffer = chunk;
    if (this.pending !== undefined) {
      // A body arriving in pieces is joined once, when it is whole, not at every piece.
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < this.needed) {
        if (this.overdue()) this.handOver(Buffer.concat(this.pending, this.pendingBytes));
        return;
      }
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
        if ((this.needed === 0 && rest.length > HEAD_BYTES_MAX) || this.overdue()) this.handOver(rest);
        else {
          this.pending = [rest];
          this.pendingBytes = rest.length;
        }
        return;
      }
      at += taken;
      this.pendingSinceMs = 0;
    }
  }

  /** Whether the request not yet whole has taken too long; starts its clock at its first piece. */
  private overdue(): boolean {
    const now = Date.now();
    if (this.pendingSinceMs === 0) this.pendingSinceMs = now;
    return now - this.pendingSinceMs > this.front.options.requestTimeoutMs;
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
    const head = buffer.toString('latin1', at, headEnd);
    const parsed = parseHead(head);
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
        this.front.forget(this);
        socket.end();
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
    socket.removeListener('timeout', this.onTimeout);
    socket.removeListener('drain', this.onDrain);
    socket.removeListener('error', this.onError);
    socket.setTimeout(0);
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

  private timeout(): void {
    if (this.slots.length > 0 || this.handing !== undefined) return;
    // A request that has not arrived whole within the keep-alive time: Node's server times it from here.
    if (this.pending !== undefined) this.handOver(Buffer.concat(this.pending, this.pendingBytes));
    else this.destroy();
  }

  endIfIdle(): void {
    if (this.slots.length === 0 && this.handing === undefined && this.pending === undefined) {
      this.front.forget(this);
      this.socket.end();
    }
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
 * A request head (without its blank line) that the front reads itself, or undefined for one it leaves to
 * Node's parser. It reads only `POST <path> HTTP/1.1` with CRLF-ended `name: value` lines, where the
 * headers that decide framing and routing appear at most once and Host is present.
 */
export function parseHead(head: string): Head | undefined {
  if (!head.startsWith('POST ')) return undefined;
  const lines = head.split('\r\n');
  const requestLine = lines[0];
  const space = requestLine.indexOf(' ', 5);
  if (space < 0 || requestLine.slice(space) !== REQUEST_LINE_END) return undefined;
  const url = requestLine.slice(5, space);
  if (!TARGET.test(url)) return undefined;
  let host = false;
  let authorization: string | undefined;
  let contentType: string | undefined;
  let contentLength: number | undefined;
  for (let i = 1; i < lines.length; i++) {
    const header = HEADER_LINE.exec(lines[i]);
    if (header === null) return undefined;
    const value = header[2];
    switch (header[1].toLowerCase()) {
      case 'host':
        if (host) return undefined;
        host = true;
        break;
      case 'authorization':
        if (authorization !== undefined) return undefined;
        authorization = value;
        break;
      case 'content-type':
        if (contentType !== undefined) return undefined;
        contentType = value;
        break;
      case 'content-length':
        if (contentLength !== undefined || !LENGTH.test(value)) return undefined;
        contentLength = Number(value);
        break;
      case 'connection':
        if (value.toLowerCase() !== 'keep-alive') return undefined;
        break;
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
        return undefined;
    }
  }
  if (!host || contentLength === undefined) return undefined;
  return { url, authorization, contentType, contentLength };
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
