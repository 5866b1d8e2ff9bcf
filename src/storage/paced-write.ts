import type { FileHandle } from './file-system.ts';

/**
 * Largest single background write (snapshot data, a new log segment's zeros): the longest a log group
 * commit on the same disk can queue behind one.
 */
export const PACED_WRITE_PIECE_BYTES = 256 * 1024;

const ZERO_PIECE = new Uint8Array(PACED_WRITE_PIECE_BYTES);

/**
 * Writes `data[start, end)` at `position` in pieces, pausing after each for as long as it took: background
 * work gets at most half of the disk's time, and a log group commit on the same disk never queues behind
 * more than one piece (measured: 4 MiB snapshot writes put 50 ms stalls into the log's fsyncs). With an
 * O_DSYNC handle every piece is durable when it returns, so no pile of dirty pages waits for one big flush.
 */
export async function writePaced(
  handle: FileHandle,
  data: Uint8Array,
  start: number,
  end: number,
  position: number,
): Promise<void> {
  await paced(start, end, PACED_WRITE_PIECE_BYTES, 1, undefined, (offset, length) =>
    handle.write(data, offset, length, position + (offset - start)),
  );
}

/** Pieces of a zero fill: smaller than a snapshot's, since a fill runs while the log is busiest. */
const ZERO_FILL_PIECE_BYTES = 128 * 1024;
/** A zero fill pauses twice as long as each piece took: a third of the disk's time at most. */
const ZERO_FILL_PAUSE_FACTOR = 2;

/**
 * Writes zeros over `[from, to)` of the file in pieces, paced like `writePaced` but lighter. An abort stops
 * it between pieces (and cuts a pause short); resolves false if it stopped early (the rest is unwritten),
 * true once everything is written.
 */
export function zeroFillPaced(
  handle: FileHandle,
  from: number,
  to: number,
  signal: AbortSignal,
): Promise<boolean> {
  return paced(from, to, ZERO_FILL_PIECE_BYTES, ZERO_FILL_PAUSE_FACTOR, signal, (offset, length) =>
    handle.write(ZERO_PIECE, 0, length, offset),
  );
}

/** The shortest pause worth a timer: below it, pauses are owed and taken together later. */
const MIN_PAUSE_MS = 1;

async function paced(
  start: number,
  end: number,
  pieceBytes: number,
  pauseFactor: number,
  signal: AbortSignal | undefined,
  write: (offset: number, length: number) => Promise<void>,
): Promise<boolean> {
  // Pauses owed, in ms. A timer cannot sleep less than ~1 ms, so pieces that take less than that (a 128 KiB
  // write often does here) run up a debt that is slept off once it reaches a timer's worth; skipping their
  // pauses instead left the background writer a whole disk's time, not the share its caller asked for.
  let owedMs = 0;
  for (let offset = start; offset < end; offset += pieceBytes) {
    if (signal?.aborted) return false;
    const startMs = performance.now();
    await write(offset, Math.min(pieceBytes, end - offset));
    const endMs = performance.now();
    owedMs += (endMs - startMs) * pauseFactor;
    if (owedMs >= MIN_PAUSE_MS) {
      await pause(owedMs, signal);
      // A timer oversleeps; what it overslept counts as paused, up to the debt it was paying off.
      owedMs = Math.max(0, owedMs - (performance.now() - endMs));
    }
  }
  return !signal?.aborted;
}

/** Sleeps `ms`, or less if `signal` aborts meanwhile: stopping never waits out a pause. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
