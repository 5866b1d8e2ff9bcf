/**
 * Requests to a fastify app over a real loopback socket, answered in the shape of `app.inject`'s response.
 * `inject` calls fastify's handler directly and so skips the Node server in front of it, where the hot
 * routes (hot-routes.ts) answer: contract tests that must cover both paths send their requests this way.
 */
import type { FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';

export interface WireRequest {
  method: string;
  url: string;
  /** An object is sent as JSON (with its content type, as `inject` does); a string as it is. */
  payload?: unknown;
  headers?: Record<string, string>;
}

export interface WireResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): any;
}

export type Wire = (request: WireRequest) => Promise<WireResponse>;

/** Starts `app` (not listening yet) on a free loopback port and returns a client for it. */
export async function wire(app: FastifyInstance): Promise<Wire> {
  const dispatcher = new Agent({ connections: 4 });
  app.addHook('onClose', async () => {
    await dispatcher.close();
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address !== 'object') throw new Error('the app listens on no TCP port');
  const origin = `http://127.0.0.1:${address.port}`;
  return async ({ method, url, payload, headers = {} }) => {
    let body: string | undefined;
    const sent: Record<string, string> = { ...headers };
    if (typeof payload === 'string') body = payload;
    else if (payload !== undefined) {
      body = JSON.stringify(payload);
      sent['content-type'] ??= 'application/json';
    }
    const response = await request(`${origin}${url}`, {
      method: method as 'GET',
      headers: sent,
      body,
      dispatcher,
    });
    const text = await response.body.text();
    return {
      statusCode: response.statusCode,
      headers: response.headers,
      body: text,
      json: () => JSON.parse(text),
    };
  };
}
