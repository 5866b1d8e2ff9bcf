/**
 * Process and temp-dir bookkeeping for bench:service. Every server the benchmark starts is registered here
 * with a synchronous stop, so it is stopped however the run ends: normal end, thrown error, SIGINT/SIGTERM
 * or process exit. Children are spawned in their own process group and stopped by that group's id (never by
 * name), so a wrapper such as `runuser` cannot leave its child behind.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export { freePort } from '../../test/support/free-port.ts';

/** Synchronous cleanups, run newest first; each runs once. */
const cleanups: { name: string; fn: () => void }[] = [];

export function onCleanup(name: string, fn: () => void): () => void {
  const entry = { name, fn };
  cleanups.push(entry);
  return () => {
    const at = cleanups.indexOf(entry);
    if (at >= 0) cleanups.splice(at, 1);
  };
}

export function cleanupAll(): void {
  while (cleanups.length > 0) {
    const entry = cleanups.pop()!;
    try {
      entry.fn();
    } catch (error) {
      process.stderr.write(`bench:service: cleanup of ${entry.name} failed: ${(error as Error).message}\n`);
    }
  }
}

const onSignal = (signal: NodeJS.Signals) => {
  process.stderr.write(`\nbench:service: ${signal}; stopping the servers it started\n`);
  cleanupAll();
  process.exit(signal === 'SIGINT' ? 130 : 143);
};

/** Installs the SIGINT/SIGTERM/exit handlers for the duration of a run; returns their removal. */
export function installCleanupHandlers(): () => void {
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', cleanupAll);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', cleanupAll);
  };
}

/** A temp dir (on /tmp, the real disk here), removed at cleanup; optionally owned by `user`. */
export function tempDir(prefix: string, user?: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `bench-service-${prefix}-`));
  if (user) chownSync(dir, userId(user, '-u'), userId(user, '-g'));
  onCleanup(`temp dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function userId(user: string, flag: '-u' | '-g'): number {
  return Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
}

/** Runs a command to completion (optionally as `user`), returns stdout; the error carries stderr. */
export function run(command: string, args: string[], options: { user?: string; timeoutMs?: number } = {}) {
  const [file, argv] = options.user
    ? ['runuser', ['-u', options.user, '--', command, ...args]]
    : [command, args];
  try {
    return execFileSync(file, argv, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
    });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr || (error as Error).message}`);
  }
}

export interface Spawned {
  child: ChildProcess;
  /** The last few KiB of stderr, for error messages. */
  stderrTail(): string;
  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once the child has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns a long-running server in its own process group, registered for cleanup. */
export function spawnServer(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Spawned {
  const child = spawn(command, args, { env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4096);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killGroup = (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const unregister = onCleanup(name, () => killGroup('SIGKILL'));
  return {
    child,
    stderrTail: () => tail,
    stop: async (graceMs = 5000) => {
      killGroup('SIGTERM');
      const timer = setTimeout(() => killGroup('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      unregister();
    },
  };
}

export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
