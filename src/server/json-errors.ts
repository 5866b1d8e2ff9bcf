/**
 * Error bodies that both request paths build, fastify's error handler (json-server.ts) and the hot routes
 * (hot-routes.ts), so a client gets the same words whichever path answered.
 */
import type { ErrorBody } from './errors.ts';

/** What fastify sends for a JSON body; set it when sending a body built by hand. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

export function invalidJsonBody(hint: string): ErrorBody {
  return {
    error: 'invalid_json',
    message: `the body is not valid JSON (or carries __proto__/constructor keys); send one JSON object (${hint})`,
  };
}

/** A schema violation: `context` is the part of the request (`body`, `params`), `issue` ajv's first error. */
export function validationErrorBody(
  context: string | undefined,
  issue: { instancePath?: string; message?: string } | undefined,
  hint: string,
  fallback = 'is invalid',
): ErrorBody {
  return {
    error: 'invalid_input',
    message: `${context ?? 'request'}${issue?.instancePath ?? ''} ${issue?.message ?? fallback}; ${hint}`,
  };
}
