/**
 * Orchestrator side of the load generator: a long-lived child process (loadgen-child.ts) that runs one
 * LoadJob at a time, and the no-op server (noop-server.ts) its ceiling is measured against. Both are forked
 * with the orchestrator's own exec args (`--import tsx`) and registered for cleanup.
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { LoadJob, LoadResult } from './loadgen.ts';
import { onCleanup } from './processes.ts';

const NO_PARALLEL_SCAVENGE = '--no-parallel-scavenge';

function forkTracked(
  name: string,
  file: string,
  args: string[] = [],
): { child: ChildProcess; stop: () => void } {
  const child = fork(new URL(file, import.meta.url).pathname, args, {
    // The scavenger without helper threads, as balance-gate runs (decision 007): on two cores its parallel
    // phase waited for helpers that share the cores with the target, and the generator's floor carried it.
    execArgv: [...process.execArgv.filter((flag) => flag !== NO_PARALLEL_SCAVENGE), NO_PARALLEL_SCAVENGE],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const unregister = onCleanup(name, kill);
  return {
    child,
    stop: () => {
      kill();
      unregister();
    },
  };
}

function firstMessage<T>(child: ChildProcess, what: string, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start in ${timeoutMs} ms`)), timeoutMs);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve(message as T);
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it started`)));
  });
}

export class LoadGenerator {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (r: LoadResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();

  private constructor(
    private readonly child: ChildProcess,
    readonly stop: () => void,
  ) {
    child.on('message', (message: { id: number; result?: LoadResult; error?: string }) => {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      clearTimeout(waiter.timer);
      if (message.result) waiter.resolve(message.result);
      else waiter.reject(new Error(`load generator: ${message.error}`));
    });
    child.on('exit', (code, signal) => {
      for (const waiter of this.pending.values()) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`load generator exited (${code ?? signal})`));
      }
      this.pending.clear();
    });
  }

  static async start(): Promise<LoadGenerator> {
    const { child, stop } = forkTracked('load generator', './loadgen-child.ts');
    await firstMessage(child, 'load generator');
    return new LoadGenerator(child, stop);
  }

  /** Runs a job; bounded by its own schedule plus a margin for connecting and reporting. */
  run(job: LoadJob): Promise<LoadResult> {
    const id = this.nextId++;
    const limitMs = job.warmupMs + job.durationMs + job.drainMs + 30_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`load generator: no result after ${limitMs} ms`));
      }, limitMs);
      this.pending.set(id, { resolve, reject, timer });
      this.child.send({ id, job });
    });
  }
}

/**
 * The no-op server (noop-server.ts): `net` answers on raw sockets (the generators' ceiling), `http` through
 * Node's HTTP server (the ceiling of the layer balance-gate's routes sit on).
 */
export async function startNoopServer(
  flavour: 'net' | 'http' = 'net',
): Promise<{ port: number; pid: number; stop: () => void }> {
  const name = `no-op ${flavour} server`;
  const { child, stop } = forkTracked(name, './noop-server.ts', [flavour]);
  const { port } = await firstMessage<{ port: number }>(child, name);
  return { port, pid: child.pid!, stop };
}
