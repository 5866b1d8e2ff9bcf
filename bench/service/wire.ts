/**
 * The three wire protocols the load generator speaks, on raw sockets: request encoders (one reservation,
 * pre-serialised, no client library in the way) and incremental response parsers that report each complete
 * response once. One request is in flight per connection (no pipelining), like a pooled client.
 */
import { type ReservationRequest, ReservationStream } from './workload.ts';

/** Called once per complete response; `error` is a short description of a failed one. */
export type OnResponse = (error: string | undefined) => void;

export interface ResponseParser {
  feed(chunk: Buffer): void;
}

// ---- HTTP/1.1 (keep-alive) ------------------------------------------------------------------------------

export function reservationJson(r: ReservationRequest): string {
  return `{"reservation_id":"${r.reservationId}","merchant_id":"${r.merchantId}","amount_cents":${r.amountCents}}`;
}

/** Bodies are ASCII (ids match [A-Za-z0-9._:-]), so string length = byte length. */
export function httpPost(pathname: string, body: string): string {
  return `${httpHead(pathname, body.length)}${body}`;
}

function httpHead(pathname: string, bodyBytes: number): string {
  return `POST ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${bodyBytes}\r\n\r\n`;
}

/** A batch request of `items` reservations from `stream`: the bytes of httpPost of `{"items":[…]}`. */
export function httpBatchPost(pathname: string, stream: ReservationStream, items: number): Buffer {
  const itemBytesMax = stream.prefixLength + ReservationStream.JSON_BYTES_MAX + 1;
  const body = Buffer.allocUnsafe(items * itemBytesMax + BATCH_OPEN.length + 2);
  let o = BATCH_OPEN.copy(body, 0);
  for (let i = 0; i < items; i++) {
    if (i > 0) body[o++] = 0x2c;
    o = stream.writeJson(body, o);
  }
  o += body.write(']}', o, 'latin1');
  return Buffer.concat([Buffer.from(httpHead(pathname, o), 'latin1'), body.subarray(0, o)]);
}

const BATCH_OPEN = Buffer.from('{"items":[');
const HEADER_END = Buffer.from('\r\n\r\n');
const ERROR_BODY_BYTES_MAX = 300;

/**
 * Responses with Content-Length (what fastify and our no-op server send). Body bytes are counted, not
 * copied, so an 8 MB batch response costs no concatenation; only an error's first bytes are kept.
 */
export class HttpResponseParser implements ResponseParser {
  private head: Buffer | undefined;
  private bodyRemaining = -1;
  private status = 0;
  private errorBody = '';

  constructor(private readonly onResponse: OnResponse) {}

  feed(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.bodyRemaining > 0) {
        const take = Math.min(this.bodyRemaining, chunk.length - offset);
        if (this.status >= 300 && this.errorBody.length < ERROR_BODY_BYTES_MAX)
          this.errorBody += chunk.toString('latin1', offset, offset + Math.min(take, ERROR_BODY_BYTES_MAX));
        this.bodyRemaining -= take;
        offset += take;
        if (this.bodyRemaining === 0) this.complete();
        continue;
      }
      const carried = this.head?.length ?? 0;
      const view = this.head ? Buffer.concat([this.head, chunk.subarray(offset)]) : chunk.subarray(offset);
      const end = view.indexOf(HEADER_END);
      if (end < 0) {
        this.head = Buffer.from(view);
        return;
      }
      this.head = undefined;
      const header = view.toString('latin1', 0, end);
      this.status = Number(header.slice(9, 12));
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(header);
      if (!length) throw new Error(`HTTP response without content-length: ${header.slice(0, 200)}`);
      offset += end + 4 - carried;
      this.bodyRemaining = Number(length[1]);
      if (this.bodyRemaining === 0) this.complete();
    }
  }

  private complete(): void {
    this.bodyRemaining = -1;
    if (this.status >= 200 && this.status < 300) this.onResponse(undefined);
    else this.onResponse(`HTTP ${this.status} ${this.errorBody}`);
    this.errorBody = '';
  }
}

// ---- RESP (Redis) ---------------------------------------------------------------------------------------

const respBulk = (s: string) => `$${s.length}\r\n${s}\r\n`;

/** EVALSHA sha 2 res:{id} mer:{merchant} merchant amount '' (RESERVE_LUA's calling convention). */
export function respReserve(sha: string, r: ReservationRequest): string {
  return `*8\r\n$7\r\nEVALSHA\r\n${respBulk(sha)}$1\r\n2\r\n${respBulk(`res:${r.reservationId}`)}${respBulk(`mer:${r.merchantId}`)}${respBulk(r.merchantId)}${respBulk(String(r.amountCents))}$0\r\n\r\n`;
}

const CR = 13;

/** End offset of the RESP value starting at `at`, or -1 if incomplete. */
function respEnd(buf: Buffer, at: number): number {
  if (at >= buf.length) return -1;
  const lineEnd = buf.indexOf(CR, at);
  if (lineEnd < 0 || lineEnd + 1 >= buf.length) return -1;
  const type = buf[at];
  const after = lineEnd + 2;
  if (type === 0x2b || type === 0x2d || type === 0x3a) return after; // + - :
  const n = Number(buf.toString('latin1', at + 1, lineEnd));
  if (type === 0x24) {
    if (n < 0) return after; // $-1: nil
    return after + n + 2 <= buf.length ? after + n + 2 : -1;
  }
  if (type === 0x2a) {
    let offset = after;
    for (let i = 0; i < n; i++) {
      offset = respEnd(buf, offset);
      if (offset < 0) return -1;
    }
    return offset;
  }
  throw new Error(`unexpected RESP type byte ${type}`);
}

export class RespResponseParser implements ResponseParser {
  private pending: Buffer | undefined;

  constructor(private readonly onResponse: OnResponse) {}

  feed(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const end = respEnd(buf, 0);
      if (end < 0) break;
      this.onResponse(buf[0] === 0x2d ? buf.toString('latin1', 1, end - 2) : undefined);
      buf = buf.subarray(end);
      if (buf.length === 0) break;
    }
    this.pending = buf.length > 0 ? Buffer.from(buf) : undefined;
  }
}

// ---- PostgreSQL extended protocol -----------------------------------------------------------------------

/** StartupMessage (protocol 3.0) for trust authentication. */
export function pgStartup(user: string, database: string): Buffer {
  const params = `user\0${user}\0database\0${database}\0\0`;
  const out = Buffer.alloc(8 + Buffer.byteLength(params));
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE(196608, 4);
  out.write(params, 8, 'utf8');
  return out;
}

/** Parse (named statement "s") + Sync. */
export function pgPrepare(sql: string): Buffer {
  const body = `s\0${sql}\0`;
  const parse = Buffer.alloc(1 + 4 + Buffer.byteLength(body) + 2);
  parse.write('P', 0, 'latin1');
  parse.writeInt32BE(parse.length - 1, 1);
  parse.write(body, 5, 'utf8');
  parse.writeInt16BE(0, parse.length - 2);
  return Buffer.concat([parse, PG_SYNC]);
}

const PG_SYNC = Buffer.from([0x53, 0, 0, 0, 4]);
/** Execute (unnamed portal, all rows) + Sync. */
const PG_EXECUTE_SYNC = Buffer.from([0x45, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0x53, 0, 0, 0, 4]);

/** Bind (text parameters) to statement "s" + Execute + Sync: one autocommit transaction. */
export function pgExecute(params: readonly string[]): Buffer {
  let length = 4 + 1 + 2 + 2 + 2 + 2; // length, portal "", stmt "s\0", 0 format codes, n params, 0 result codes
  for (const p of params) length += 4 + p.length;
  const out = Buffer.allocUnsafe(1 + length + PG_EXECUTE_SYNC.length);
  out[0] = 0x42; // B
  out.writeInt32BE(length, 1);
  let at = 5;
  out[at++] = 0; // portal ""
  out[at++] = 0x73; // "s"
  out[at++] = 0;
  out.writeInt16BE(0, at);
  out.writeInt16BE(params.length, at + 2);
  at += 4;
  for (const p of params) {
    out.writeInt32BE(p.length, at);
    out.write(p, at + 4, 'latin1');
    at += 4 + p.length;
  }
  out.writeInt16BE(0, at);
  at += 2;
  PG_EXECUTE_SYNC.copy(out, at);
  return out;
}

export function pgReserve(r: ReservationRequest): Buffer {
  return pgExecute([r.reservationId, r.merchantId, String(r.amountCents)]);
}

/** One response = every message up to ReadyForQuery ('Z'); an ErrorResponse ('E') on the way fails it. */
export class PgResponseParser implements ResponseParser {
  private pending: Buffer | undefined;
  private error: string | undefined;

  constructor(private readonly onResponse: OnResponse) {}

  feed(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 5) {
      const end = at + 1 + buf.readInt32BE(at + 1);
      if (end > buf.length) break;
      const type = buf[at];
      if (type === 0x45) this.error ??= pgErrorMessage(buf.subarray(at + 5, end));
      else if (type === 0x52 && buf.readInt32BE(at + 5) !== 0)
        this.error ??= 'server asks for a password; the benchmark cluster uses trust authentication';
      else if (type === 0x5a) {
        const error = this.error;
        this.error = undefined;
        this.onResponse(error);
      }
      at = end;
    }
    buf = buf.subarray(at);
    this.pending = buf.length > 0 ? Buffer.from(buf) : undefined;
  }
}

function pgErrorMessage(fields: Buffer): string {
  const parts: string[] = [];
  let at = 0;
  while (at < fields.length && fields[at] !== 0) {
    const end = fields.indexOf(0, at + 1);
    if (fields[at] === 0x43 || fields[at] === 0x4d) parts.push(fields.toString('utf8', at + 1, end)); // code, message
    at = end + 1;
  }
  return parts.join(' ');
}
