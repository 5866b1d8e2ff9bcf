import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logWritesBetween, parseFlushHistogram } from './log-writes.ts';

function exposition(counts: number[], sumS: number): string {
  const bounds = ['0.0005', '0.001', '0.002', '0.005', '0.01', '+Inf'];
  return [
    '# HELP engram_wal_flush_duration_seconds group-commit write',
    '# TYPE engram_wal_flush_duration_seconds histogram',
    ...bounds.map((le, i) => `engram_wal_flush_duration_seconds_bucket{le="${le}"} ${counts[i]}`),
    `engram_wal_flush_duration_seconds_sum ${sumS}`,
    `engram_wal_flush_duration_seconds_count ${counts.at(-1)}`,
    'engram_lsn_durable 42',
  ].join('\n');
}

test('parseFlushHistogram reads the buckets, count and sum and ignores other metrics', () => {
  const h = parseFlushHistogram(exposition([1, 2, 3, 4, 5, 6], 0.5));
  assert.equal(h.buckets.length, 6);
  assert.deepEqual(h.buckets[2], { le: 0.002, count: 3 });
  assert.equal(h.buckets[5].le, Number.POSITIVE_INFINITY);
  assert.equal(h.count, 6);
  assert.equal(h.sumS, 0.5);
});

test('parseFlushHistogram refuses a text without the histogram', () => {
  assert.throws(() => parseFlushHistogram('engram_lsn_durable 1\n'), /no engram_wal_flush_duration_seconds/);
});

test('logWritesBetween counts only the window and charges writes over 2 ms at their lower bound', () => {
  const before = parseFlushHistogram(exposition([10, 10, 10, 10, 10, 10], 0.001));
  // In the window: 100 writes under 0.5 ms, 5 in (2, 5] ms, 2 in (5, 10] ms, 1 over 10 ms.
  const after = parseFlushHistogram(exposition([110, 110, 110, 115, 117, 118], 0.101));
  const w = logWritesBetween(before, after, 1000);
  assert.equal(w.writes, 108);
  assert.equal(w.writesOver, 8);
  assert.ok(Math.abs(w.meanMs - 100 / 108) < 1e-9);
  // 5 x 2 ms + 2 x 5 ms + 1 x 10 ms = 30 ms of 1000.
  assert.ok(Math.abs(w.timeShareOver - 0.03) < 1e-12);
});

test('logWritesBetween refuses a threshold that is not a bucket bound', () => {
  const h = parseFlushHistogram(exposition([1, 1, 1, 1, 1, 1], 0));
  assert.throws(() => logWritesBetween(h, h, 1000, 3), /not a bucket bound/);
});
