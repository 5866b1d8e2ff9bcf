/**
 * Where a command writes. Results go to `out` (stdout), diagnostics and progress to `err` (stderr), so
 * `engram inspect --json <dir> | jq` always gets clean JSON.
 */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is an interactive terminal (progress bars only then). */
  readonly stderrIsTty: boolean;
  readonly stderr: NodeJS.WritableStream;
}

export function processIo(): CliIo {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    stderrIsTty: process.stderr.isTTY === true,
    stderr: process.stderr,
  };
}
