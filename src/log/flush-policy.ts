/**
 * When the group-commit writer starts a write + fdatasync of what is buffered.
 *
 * - `immediate`: as soon as possible. Commands submitted in the same event-loop turn share a group, and
 *   while one flush is in flight the next group fills (natural batching). The default for the `disk` ack point.
 * - `batch`: wait up to `maxDelayMs` after the first buffered record, or until `maxBytes` are buffered,
 *   trading latency for larger groups (fewer fsyncs).
 * - `interval`: flush every `intervalMs` (the `memory` ack point: the loss window is this interval).
 */
export type FlushPolicy =
  | { kind: 'immediate' }
  | { kind: 'batch'; maxDelayMs: number; maxBytes: number }
  | { kind: 'interval'; intervalMs: number };

export const DEFAULT_MEMORY_FLUSH_INTERVAL_MS = 10;

export function describeFlushPolicy(policy: FlushPolicy): string {
  switch (policy.kind) {
    case 'immediate':
      return 'immediate group commit';
    case 'batch':
      return `batched group commit (max delay ${policy.maxDelayMs} ms, max ${policy.maxBytes} bytes)`;
    case 'interval':
      return `background flush every ${policy.intervalMs} ms`;
  }
}
