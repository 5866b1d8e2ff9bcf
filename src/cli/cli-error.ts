/**
 * Exit codes of the `engram` command. Scripts branch on them, so they never change meaning:
 * 0 the log is healthy (a torn tail is healthy: the next start cuts it), or the command did what was asked;
 * 1 the log is damaged (corruption, a gap) or the command failed; 2 usage error, nothing was read or
 * changed; 3 a repair was planned and printed but not applied (no `--yes`).
 */
export const EXIT_OK = 0;
export const EXIT_DAMAGED = 1;
export const EXIT_USAGE = 2;
export const EXIT_DRY_RUN = 3;

/** An error the CLI reports as is (no stack trace): the message says what happened and what to do. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usageError(message: string): CliError {
  return new CliError(EXIT_USAGE, message);
}
