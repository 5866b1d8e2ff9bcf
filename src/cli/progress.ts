import { Presets, SingleBar } from 'cli-progress';
import type { CliIo } from './io.ts';

/** Scans smaller than this finish before a bar would be worth drawing. */
export const PROGRESS_BYTES_MIN = 64 * 1024 * 1024;

export type OnProgress = (bytesDone: number, bytesTotal: number) => void;

export function wantsProgressBar(bytesTotal: number, stderrIsTty: boolean): boolean {
  return stderrIsTty && bytesTotal > PROGRESS_BYTES_MIN;
}

/**
 * Runs `scan` with a progress bar on stderr when it reads more than PROGRESS_BYTES_MIN and stderr is a
 * terminal; otherwise without one (pipes and logs stay free of control characters).
 */
export async function withProgress<T>(
  io: CliIo,
  label: string,
  bytesTotal: number,
  scan: (onProgress: OnProgress | undefined) => Promise<T>,
): Promise<T> {
  if (!wantsProgressBar(bytesTotal, io.stderrIsTty)) return scan(undefined);
  const mib = (bytes: number) => (bytes / (1024 * 1024)).toFixed(0);
  const bar = new SingleBar(
    {
      stream: io.stderr,
      format: `${label} [{bar}] {percentage}% | {done}/{all} MiB | ETA {eta_formatted}`,
      clearOnComplete: true,
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  bar.start(bytesTotal, 0, { done: '0', all: mib(bytesTotal) });
  try {
    return await scan((done, total) => {
      if (total !== bar.getTotal()) bar.setTotal(total);
      bar.update(done, { done: mib(done), all: mib(total) });
    });
  } finally {
    bar.stop();
  }
}
