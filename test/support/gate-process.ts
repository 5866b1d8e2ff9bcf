import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const MAIN = new URL('../../apps/balance-gate/main.ts', import.meta.url).pathname;

export interface GateProcess {
  child: ChildProcess;
  url: string;
  /** Waits for the process to exit; resolves with its exit code (or signal). */
  exited: Promise<number | string>;
}

/**
 * Starts balance-gate as a real process on a free port (PORT=0) and resolves once it is ready (the
 * start-up log line says so). Used by crash tests and benchmarks.
 */
export async function startGate(dataDir: string, env: Record<string, string> = {}): Promise<GateProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    let address = '';
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.address) address = entry.address;
        if (typeof entry.msg === 'string' && entry.msg.startsWith('ready')) resolve(address);
      } catch {
        // not a log line
      }
    });
    void exited.then((code) =>
      reject(new Error(`balance-gate exited (${code}) before it was ready: ${stderr}`)),
    );
  });
  return { child, url, exited };
}
