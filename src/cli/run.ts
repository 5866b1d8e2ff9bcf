import { Command, CommanderError } from 'commander';
import { EngramError } from '../errors.ts';
import type { FileSystem } from '../storage/file-system.ts';
import { NodeFileSystem } from '../storage/node-file-system.ts';
import { CliError, EXIT_DAMAGED, EXIT_OK, EXIT_USAGE } from './cli-error.ts';
import { registerInspect } from './commands/inspect.ts';
import { registerRepair } from './commands/repair.ts';
import { registerSnapshot } from './commands/snapshot.ts';
import { registerVerify } from './commands/verify.ts';
import type { CommandContext, RegisterCommand } from './context.ts';
import { type CliIo, processIo } from './io.ts';

/** Every command module. */
const COMMANDS: RegisterCommand[] = [registerInspect, registerVerify, registerRepair, registerSnapshot];

/** Runs the `engram` command line (`argv` without node and the script) and returns the exit code. */
export async function runCli(
  argv: string[],
  io: CliIo = processIo(),
  fs: FileSystem = new NodeFileSystem(),
): Promise<number> {
  let exitCode = EXIT_OK;
  const context: CommandContext = { io, fs, setExitCode: (code) => (exitCode = code) };
  const program = new Command('engram')
    .description('Inspect, verify and repair Engram write-ahead logs and snapshots.')
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.out(text), writeErr: (text) => io.err(text) })
    .showHelpAfterError('(run `engram --help` for the commands, `engram <command> --help` for one command)')
    .addHelpText(
      'after',
      '\nExit codes: 0 healthy (or done), 1 the log is damaged or the command failed, 2 usage error,\n' +
        '3 repair plan printed but not applied (add --yes).',
    );
  for (const register of COMMANDS) register(program, context);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    return reportError(io, error);
  }
}

function reportError(io: CliIo, error: unknown): number {
  if (error instanceof CommanderError) {
    // Help and --version are successes; everything else commander raises is a usage error it already printed.
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT_OK;
    if (error.code === 'commander.help') return EXIT_USAGE;
    return EXIT_USAGE;
  }
  if (error instanceof CliError) {
    io.err(`engram: ${error.message}\n`);
    return error.exitCode;
  }
  if (error instanceof EngramError) {
    io.err(`engram: ${error.message}\n`);
    return error.code === 'invalid_argument' ? EXIT_USAGE : EXIT_DAMAGED;
  }
  io.err(`engram: unexpected failure: ${(error as Error)?.stack ?? error}\n`);
  return EXIT_DAMAGED;
}
