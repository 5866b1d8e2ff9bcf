/**
 * JSON POST routes answered by Node's HTTP server before fastify sees the request: the service's hottest
 * route (one reservation) spends most of its CPU in fastify's request pipeline (hooks, reply, content-type
 * parser, async-resource bookkeeping) rather than in the store. Decision 013 has the profile and figures.
 *
 * A hot route takes a request only when it can answer it exactly as fastify would: the method and the path
 * match exactly, the token (if any) matches, the body is declared JSON with a Content-Length within the
 * route's limit, the route is ready and the server is not closing. Anything else (a missing token, a
 * chunked or oversized body, another media type, a recovering store, a shutdown) goes to fastify untouched,
 * so every rule of the contract that is not on the happy path has one implementation. What a hot route does
 * itself (JSON parsing with the same prototype-poisoning refusal, schema validation, error bodies,
 * status codes, the per-route HTTP metric) uses the same pieces as fastify's path (json-errors.ts, errors.ts,
 * http-metrics.ts); apps/balance-gate/hot-route.test.ts checks the two paths answer alike.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ValidateFunction } from 'ajv';
import secureJson from 'secure-json-parse';
import type { BearerToken } from './auth.ts';
import { type ErrorLog, logIfInternal, toHttpError } from './errors.ts';
import type { HttpMetrics } from './http-metrics.ts';
import { invalidJsonBody, JSON_CONTENT_TYPE, validationErrorBody } from './json-errors.ts';

export interface HotRoute {
  /** The exact path (no query string), e.g. `/v1/reservations`. */
  url: string;
  /** Larger bodies go to fastify, which answers 413. */
  bodyBytesMax: number;
  /** The route's body schema, compiled with the same options as fastify's (no coercion). */
  validate: ValidateFunction;
  /** False while the route cannot serve (e.g. the store is recovering): fastify answers instead. */
  ready(): boolean;
  /**
   * Optional: reads the raw body when it has the route's common exact shape, faster than JSON.parse and
   * the schema, and returns what `run` takes; undefined for anything else, which is then parsed and
   * validated as usual. It must accept only bodies the schema accepts, meaning the same values.
   */
  parseFast?(body: Buffer): unknown;
  /**
   * Runs a validated body (or what `parseFast` returned); resolves to the 200 body (JSON), rejects
   * with what `toHttpError` maps.
   */
  run(body: unknown): Promise<string | Buffer>;
}

export interface HotRoutesOptions {
  token: BearerToken | undefined;
  httpMetrics: HttpMetrics | undefined;
  errorLog: ErrorLog | undefined;
  contractHint: string;
}

const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const;

export class HotRoutes {
  private readonly routes = new Map<string, HotRoute>();
  private closing = false;
  /** Requests a hot route answered (the rest went to fastify). */
  served = 0;

  constructor(
    routes: readonly HotRoute[],
    private readonly options: HotRoutesOptions,
  ) {
    for (const route of routes) this.routes.set(route.url, route);
  }

  /** From now on every request goes to fastify, which refuses new ones while it closes. */
  close(): void {
    this.closing = true;
  }

  /**
   * The route that takes a request with these parts, or undefined: the request then goes to fastify
   * untouched. `contentLength` is NaN when the header is absent or not a number.
   */
  routeFor(
    method: string | undefined,
    url: string | undefined,
    authorization: string | undefined,
    contentType: string | undefined,
    contentLength: number,
    hasTransferEncoding: boolean,
  ): HotRoute | undefined {
    if (method !== 'POST' || this.closing) return undefined;
    const route = this.routes.get(url ?? '');
    if (route === undefined || !route.ready()) return undefined;
    if (this.options.token !== undefined && !this.options.token.matches(authorization)) return undefined;
    if (!isJson(contentType)) return undefined;
    if (!(contentLength > 0 && contentLength <= route.bodyBytesMax) || hasTransferEncoding) return undefined;
    return route;
  }

  /** Takes a request from Node's HTTP server and answers it, or returns false and leaves it for fastify. */
  take(request: IncomingMessage, response: ServerResponse): boolean {
    const headers = request.headers;
    const declared = Number(headers['content-length']);
    const route = this.routeFor(
      request.method,
      request.url,
      headers.authorization,
      headers['content-type'],
      declared,
      headers['transfer-encoding'] !== undefined,
    );
    if (route === undefined) return false;
    this.served++;
    this.readBody(request, new ResponseReply(response), route, declared);
    return true;
  }

  /** Answers a whole body that `routeFor` gave `route` for, through `reply`. */
  serve(route: HotRoute, bytes: Buffer, reply: HotReply): void {
    let fast: unknown;
    try {
      fast = route.parseFast?.(bytes);
    } catch (error) {
      // A bug in a parser, thrown inside a socket's event handler, would end the process: a 500 instead.
      this.fail(reply, route, error);
      return;
    }
    if (fast !== undefined) this.run(reply, route, fast);
    else this.answer(reply, route, bytes.toString('utf8'));
  }

  private readBody(request: IncomingMessage, reply: HotReply, route: HotRoute, declared: number): void {
    const chunks: Buffer[] = [];
    let received = 0;
    request.on('data', (chunk: Buffer) => {
      received += chunk.length;
      chunks.push(chunk);
    });
    // An aborted request has no one to answer; the listener keeps its error from being unhandled.
    request.on('error', () => undefined);
    request.on('end', () => {
      // Node's parser frames the body by Content-Length, so this only guards against a broken invariant.
      if (received !== declared) {
        request.socket.destroy();
        return;
      }
      this.serve(route, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), reply);
    });
  }

  private answer(reply: HotReply, route: HotRoute, text: string): void {
    const hint = this.options.contractHint;
    let body: unknown;
    try {
      body = secureJson.parse(text, undefined, PARSE_OPTIONS);
    } catch {
      this.send(reply, route, 400, JSON.stringify(invalidJsonBody(hint)));
      return;
    }
    if (!route.validate(body)) {
      this.send(
        reply,
        route,
        400,
        JSON.stringify(validationErrorBody('body', route.validate.errors?.[0], hint)),
      );
      return;
    }
    this.run(reply, route, body);
  }

  private run(reply: HotReply, route: HotRoute, body: unknown): void {
    let answer: Promise<string | Buffer>;
    try {
      answer = route.run(body);
    } catch (error) {
      // Thrown inside a socket's event handler, it would end the process: answered like a rejection.
      answer = Promise.reject(error);
    }
    answer.then(
      (json) => this.send(reply, route, 200, json),
      (error: unknown) => this.fail(reply, route, error),
    );
  }

  private fail(reply: HotReply, route: HotRoute, error: unknown): void {
    const http = toHttpError(error);
    logIfInternal(http, error, route.url, this.options.errorLog);
    this.send(reply, route, http.status, JSON.stringify(http.body), http.headers);
  }

  private send(
    reply: HotReply,
    route: HotRoute,
    status: number,
    json: string | Buffer,
    extra?: Record<string, string>,
  ): void {
    this.options.httpMetrics?.count(route.url, status);
    reply.send(status, json, extra);
  }
}

/**
 * Where a hot route's answer goes: Node's `ServerResponse`, or a connection of the front that reads hot
 * requests off the socket itself (http-front.ts). Always a JSON body; `extra` headers such as Retry-After.
 */
export interface HotReply {
  send(status: number, json: string | Buffer, extra?: Record<string, string>): void;
}

class ResponseReply implements HotReply {
  constructor(private readonly response: ServerResponse) {}

  send(status: number, json: string | Buffer, extra?: Record<string, string>): void {
    const response = this.response;
    if (response.destroyed) return;
    response.writeHead(status, {
      'content-type': JSON_CONTENT_TYPE,
      'content-length': Buffer.byteLength(json),
      ...extra,
    });
    response.end(json);
  }
}

/** `application/json`, any case, with or without parameters: the media type fastify's JSON parser takes. */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  if (contentType === 'application/json' || contentType === JSON_CONTENT_TYPE) return true;
  const lower = contentType.toLowerCase();
  return lower === 'application/json' || lower.startsWith('application/json;');
}
