import type { Command } from 'commander';
import type { FileSystem } from '../storage/file-system.ts';
import type { CliIo } from './io.ts';

/** What every command module gets: where to write, the file system, and how to report its exit code. */
export interface CommandContext {
  io: CliIo;
  fs: FileSystem;
  setExitCode(code: number): void;
}

/**
 * One module per command (`src/cli/commands/<name>.ts`), each adding itself to the program. A command
 * group (e.g. `engram snapshot inspect|verify`) registers a parent command with its own subcommands.
 */
export type RegisterCommand = (program: Command, context: CommandContext) => void;
