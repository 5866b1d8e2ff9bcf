/**
 * What has happened to a command when `execute()` resolves:
 * - `memory`: decided and applied in RAM; durable after the next background flush (the loss window is the
 *   flush interval).
 * - `disk`: its record and commit marker are fdatasync'd to the local log (the default).
 * A per-command ack point may strengthen the store's, never weaken it.
 */
export type AckPoint = 'memory' | 'disk';

const STRENGTH: Record<AckPoint, number> = { memory: 0, disk: 1 };

export function isAckPoint(value: unknown): value is AckPoint {
  return value === 'memory' || value === 'disk';
}

export function strongest(storeAck: AckPoint, commandAck: AckPoint | undefined): AckPoint {
  if (commandAck === undefined) return storeAck;
  return STRENGTH[commandAck] > STRENGTH[storeAck] ? commandAck : storeAck;
}
