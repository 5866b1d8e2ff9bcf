import { type ChildProcess, spawn } from 'node:child_process';
import { GATE_NODE_FLAGS } from '../../apps/balance-gate/node-flags.ts';
import { freePort } from './free-port.ts';

const MAIN = new URL('../../apps/balance-gate/main.ts', import.meta.url).pathname;

export interface GateProcess {
  child: ChildProcess;
  url: string;
  /** Waits for the process to exit; resolves with its exit code (or signal). */
  exited: Promise<number | string>;
}

/**
 * Starts balance-gate as a real process on a free port and resolves once `GET /readyz` answers 200
 * (recovery done). Used by crash tests and benchmarks.
 */
export async function startGate(dataDir: string, env: Record<string, string> = {}): Promise<GateProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...GATE_NODE_FLAGS, '--import', 'tsx', MAIN], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  let exitCode: number | string | undefined;
  void exited.then((code) => {
    exitCode = code;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exitCode !== undefined)
      throw new Error(`balance-gate exited (${exitCode}) before it was ready: ${stderr}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) return { child, url, exited };
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  child.kill('SIGKILL');
  throw new Error(`balance-gate did not become ready in 30 s: ${stderr}`);
}
