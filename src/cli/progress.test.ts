import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { CliIo } from './io.ts';
import { PROGRESS_BYTES_MIN, wantsProgressBar, withProgress } from './progress.ts';

/** A stderr stand-in that claims to be a terminal and keeps what is drawn. */
function fakeIo(isTty: boolean): { io: CliIo; drawn: () => string } {
  const chunks: string[] = [];
  const stream = Object.assign(
    new Writable({
      write(chunk, _encoding, done) {
        chunks.push(String(chunk));
        done();
      },
    }),
    { isTTY: isTty, columns: 100 },
  );
  return {
    io: { out: () => {}, err: (text) => chunks.push(text), stderrIsTty: isTty, stderr: stream },
    drawn: () => chunks.join(''),
  };
}

test('a progress bar only for scans over 64 MiB, and only on a terminal', () => {
  assert.equal(wantsProgressBar(PROGRESS_BYTES_MIN + 1, true), true);
  assert.equal(wantsProgressBar(PROGRESS_BYTES_MIN, true), false);
  assert.equal(wantsProgressBar(10 * PROGRESS_BYTES_MIN, false), false);
});

test('withProgress draws on the terminal while the scan reports, and returns the scan result', async () => {
  const total = 3 * PROGRESS_BYTES_MIN;
  const { io, drawn } = fakeIo(true);
  const result = await withProgress(io, 'verifying', total, async (onProgress) => {
    assert.ok(onProgress);
    onProgress(PROGRESS_BYTES_MIN, total);
    onProgress(total, total);
    return 'scanned';
  });
  assert.equal(result, 'scanned');
  assert.match(drawn(), /verifying \[/);

  const quiet = fakeIo(false);
  await withProgress(quiet.io, 'verifying', total, async (onProgress) => {
    assert.equal(onProgress, undefined, 'no bar on a pipe');
  });
  assert.equal(quiet.drawn(), '');
});
