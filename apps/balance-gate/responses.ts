/**
 * The JSON bodies of the write answers, written field by field in the order docs/balance-gate.md lists them.
 * They are the hottest bytes of the service: one per reservation, 8190 per full batch. `JSON.stringify` of
 * the result object walks its keys and looks each property up generically; a fixed template does neither.
 * Key order comes from here, not from the object, so a retry (a result decoded from the log) gets the same
 * bytes as the first answer whatever order its decoder builds the object in. The output equals
 * `JSON.stringify` of the same value (responses.test.ts checks it on every shape the domain produces).
 */
import type { MerchantView, ReservationResult } from './domain.ts';

/** What fastify sends for a JSON body; set it when sending a body built here. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Strings `JSON.stringify` writes as they are, between quotes: every valid id ([A-Za-z0-9._:-]), status and
 * reason. Anything else takes the general path.
 */
const PLAIN = /^[\w.:-]*$/;

function str(value: string): string {
  return PLAIN.test(value) ? `"${value}"` : JSON.stringify(value);
}

/** `JSON.stringify` of a number: non-finite ones are `null` (an amount never is; this only keeps parity). */
function num(value: number): string {
  return Number.isFinite(value) ? `${value}` : 'null';
}

export function merchantViewJson(m: MerchantView): string {
  return (
    `{"merchant_id":${str(m.merchant_id)},"available_cents":${num(m.available_cents)},` +
    `"held_cents":${num(m.held_cents)},"captured_cents":${num(m.captured_cents)},` +
    `"credited_cents":${num(m.credited_cents)}}`
  );
}

/** `{reservation_id, status, reason?, sequence?, merchant, lsn}`: reserve, capture and release answers. */
export function reservationResultJson(r: ReservationResult): string {
  let json = `{"reservation_id":${str(r.reservation_id)},"status":${str(r.status)}`;
  if (r.reason !== undefined) json += `,"reason":${str(r.reason)}`;
  if (r.sequence !== undefined) json += `,"sequence":${num(r.sequence)}`;
  return `${json},"merchant":${merchantViewJson(r.merchant)},"lsn":${num(r.lsn)}}`;
}
