import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { groupSealKind } from '../../src/log/group-seal.ts';
import { GATE_NODE_FLAGS } from './node-flags.ts';

/** The service as an operator runs it: `node --import tsx apps/balance-gate/main.ts`. */
const MAIN = new URL('./main.ts', import.meta.url).pathname;

const dirs: string[] = [];
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gate-main-'));
  dirs.push(dir);
  return dir;
}

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | string>;
}

function run(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [...GATE_NODE_FLAGS, '--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

type LogLine = Record<string, unknown> & { msg: string; level: number };

function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Waits for the "ready" log line (recovery done) and returns it. */
async function ready(gate: Run): Promise<LogLine & { address: string }> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const line = logLines(gate.stdout()).find((l) => l.msg.startsWith('ready'));
    if (line) return line as LogLine & { address: string };
    if (gate.child.exitCode !== null) throw new Error(`exited early: ${gate.stderr()} ${gate.stdout()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`not ready in 30 s: ${gate.stdout()}`);
}

async function postJson(base: string, url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(base + url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.text() };
}

test('configuration errors: a clear message on stderr and exit 2, before anything starts', async () => {
  const dataDir = await tempDir();
  const cases: { args: string[]; env: Record<string, string>; stderr: RegExp }[] = [
    {
      args: [],
      env: { HOST: '0.0.0.0' },
      stderr: /refusing to bind 0\.0\.0\.0 without a token.*BALANCE_GATE_TOKEN/,
    },
    { args: ['--host', '192.168.1.10'], env: {}, stderr: /refusing to bind 192\.168\.1\.10/ },
    { args: [], env: { PORT: 'eighty' }, stderr: /PORT: 'eighty' is not a port/ },
    { args: ['--port', '99999'], env: {}, stderr: /'99999' is not a port/ },
    { args: [], env: { DURABILITY: 'fast' }, stderr: /DURABILITY: 'fast' is not an ack point; use 'disk'/ },
    { args: ['--durability', 'quick'], env: {}, stderr: /'quick' is not an ack point/ },
    { args: ['--log-level', 'loud'], env: {}, stderr: /'loud' is not a log level/ },
    { args: ['--no-such-flag'], env: {}, stderr: /unknown option '--no-such-flag'/ },
  ];
  // Independent processes: run them side by side.
  await Promise.all(
    cases.map(async (c) => {
      const gate = run(c.args, { DATA_DIR: dataDir, ...c.env });
      assert.equal(await gate.exited, 2, `${c.args.join(' ')} ${JSON.stringify(c.env)}: ${gate.stderr()}`);
      assert.match(gate.stderr(), c.stderr);
      assert.doesNotMatch(gate.stderr(), /\n\s+at /, 'no stack trace');
    }),
  );
});

test('--help lists every setting with its environment twin and exits 0', async () => {
  const gate = run(['--help'], {});
  assert.equal(await gate.exited, 0);
  for (const text of [
    '--port',
    'PORT',
    '--host',
    'HOST',
    '--data-dir',
    'DATA_DIR',
    '--durability',
    'DURABILITY',
    '--token',
    'BALANCE_GATE_TOKEN',
  ])
    assert.ok(gate.stdout().includes(text), text);
});

test('start-up log states the ack point, data dir, records replayed and replay time; SIGTERM flushes and exits 0', async () => {
  const dataDir = await tempDir();
  const first = run([], { DATA_DIR: dataDir });
  const line = await ready(first);
  assert.equal(line.ackPoint, 'disk');
  assert.equal(line.dataDir, dataDir);
  assert.equal(line.recordsReplayed, 0);
  assert.equal(typeof line.replayMs, 'number');
  assert.equal(line.logChecksums, groupSealKind());
  const base = line.address;
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  const credit = await postJson(base, '/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 });
  assert.equal(credit.status, 200);
  // In-flight requests at SIGTERM still get their answer; every 200 survives the restart.
  const inFlight = Array.from({ length: 20 }, (_, i) =>
    postJson(base, '/v1/reservations', { reservation_id: `r${i}`, merchant_id: 'm', amount_cents: 1 }).catch(
      () => undefined,
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, 5));
  first.child.kill('SIGTERM');
  const answered = await Promise.all(inFlight);
  assert.equal(await first.exited, 0);
  assert.ok(logLines(first.stdout()).some((l) => l.msg === 'stopped'));
  assert.equal(logLines(first.stdout()).filter((l) => l.level >= 50).length, 0, 'no error logged');

  // Restarted with the log's checksums in JS: it reads what the addon sealed, and says how it seals now.
  const second = run(['--data-dir', dataDir, '--durability', 'memory'], { ENGRAM_NATIVE_SEAL: 'off' });
  const again = await ready(second);
  assert.equal(again.ackPoint, 'memory');
  assert.equal(again.logChecksums, 'js');
  assert.ok(
    logLines(second.stdout()).some(
      (l) => l.level === 40 && /checksummed in JS.*ENGRAM_NATIVE_SEAL=off/.test(String(l.msg)),
    ),
    'a warning says why',
  );
  assert.ok((again.recordsReplayed as number) >= 1);
  const acked = answered.filter((a) => a?.status === 200);
  for (const a of acked) {
    const id = JSON.parse(a?.body ?? '{}').reservation_id;
    const retry = await postJson(again.address, '/v1/reservations', {
      reservation_id: id,
      merchant_id: 'm',
      amount_cents: 1,
    });
    assert.equal(retry.body, a?.body);
  }
  assert.equal(
    (await postJson(again.address, '/v1/merchants/m/credits', { transfer_id: 't', amount_cents: 100 })).body,
    credit.body,
  );
  second.child.kill('SIGINT');
  assert.equal(await second.exited, 0);
});

test('a public bind with a token starts; every route but /healthz then needs the token', async () => {
  const dataDir = await tempDir();
  const gate = run([], { DATA_DIR: dataDir, HOST: '0.0.0.0', BALANCE_GATE_TOKEN: 'tok-123' });
  const line = await ready(gate);
  const port = new URL(line.address).port;
  const base = `http://127.0.0.1:${port}`;
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/readyz`)).status, 401);
  assert.equal(
    (await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer tok-123' } })).status,
    200,
  );
  const credit = await postJson(
    base,
    '/v1/merchants/m/credits',
    { transfer_id: 't', amount_cents: 1 },
    {
      authorization: 'Bearer tok-123',
    },
  );
  assert.equal(credit.status, 200);
  gate.child.kill('SIGTERM');
  assert.equal(await gate.exited, 0);
});

test('a data directory that another process holds: exit 1 with the reason', async () => {
  const dataDir = await tempDir();
  const holder = run([], { DATA_DIR: dataDir });
  await ready(holder);
  const second = run([], { DATA_DIR: dataDir });
  assert.equal(await second.exited, 1);
  const fatal = logLines(second.stdout()).find((l) => l.level === 60);
  assert.ok(fatal, second.stdout());
  assert.match(fatal.msg, /cannot start/);
  holder.child.kill('SIGTERM');
  assert.equal(await holder.exited, 0);
});

test('npm start runs balance-gate with the flags every other launcher uses (they act only at start)', async () => {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
  const start: string = pkg.scripts.start;
  assert.equal(start, `node ${GATE_NODE_FLAGS.join(' ')} --import tsx apps/balance-gate/main.ts`);
  // The benchmarks that embed the gate's store measure it as the gate runs.
  for (const script of ['bench:engine', 'bench:restart']) {
    const command: string = pkg.scripts[script];
    assert.ok(command.startsWith('node '), `${script} runs node directly, as npm start does`);
    for (const flag of GATE_NODE_FLAGS)
      assert.ok(command.split(' ').includes(flag), `${script} lacks ${flag}`);
  }
});
