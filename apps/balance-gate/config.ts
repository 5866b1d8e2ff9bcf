import { Command, InvalidArgumentError } from 'commander';
import { type AckPoint, isAckPoint } from '../../src/engine/ack-point.ts';
import { isLoopback } from '../../src/server/auth.ts';

export interface GateConfig {
  port: number;
  host: string;
  dataDir: string;
  durability: AckPoint;
  token: string | undefined;
  logLevel: LogLevel;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A setting that cannot be used; main prints the message and exits 2 (usage error). */
export class ConfigError extends Error {}

function port(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError(`'${value}' is not a port (an integer 0..65535; 0 picks a free one)`);
  return n;
}

function durability(value: string): AckPoint {
  if (!isAckPoint(value))
    throw new InvalidArgumentError(
      `'${value}' is not an ack point; use 'disk' (a 200 means fdatasync'd, the default) or 'memory' (a 200 means applied in memory, flushed within 10 ms)`,
    );
  return value;
}

function logLevel(value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`'${value}' is not a log level; use one of ${LOG_LEVELS.join(', ')}`);
  return value as LogLevel;
}

function nonEmpty(what: string) {
  return (value: string): string => {
    if (value.length === 0) throw new InvalidArgumentError(`${what} must not be empty`);
    return value;
  };
}

/** An environment variable's value through the same check as its flag; empty counts as unset. */
function fromEnv<T>(env: NodeJS.ProcessEnv, name: string, parse: (value: string) => T): T | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  try {
    return parse(value);
  } catch (error) {
    throw new ConfigError(`${name}: ${(error as Error).message}`);
  }
}

/** The command line (commander); `--help` prints the usage. */
export function gateCommand(): Command {
  return new Command()
    .name('balance-gate')
    .description(
      'Funds reservations over HTTP on an Engram store: every 200 for a write was at the ack point first.\n' +
        'Each flag has an environment twin; flags win over the environment.',
    )
    .option('--port <port>', 'port to listen on (env PORT; default 8080)', port)
    .option('--host <host>', 'address to bind (env HOST; default 127.0.0.1)', nonEmpty('--host'))
    .option(
      '--data-dir <dir>',
      'where the log and snapshots live (env DATA_DIR; default ./data)',
      nonEmpty('--data-dir'),
    )
    .option(
      '--durability <ackPoint>',
      "ack point: 'disk' (fdatasync before a 200) or 'memory' (env DURABILITY; default disk)",
      durability,
    )
    .option(
      '--token <token>',
      'require "Authorization: Bearer <token>" on every route but /healthz (env BALANCE_GATE_TOKEN, preferred: a flag shows in ps)',
      nonEmpty('--token'),
    )
    .option('--log-level <level>', `${LOG_LEVELS.join(' | ')} (env LOG_LEVEL; default info)`, logLevel)
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
}

/**
 * Settings from flags, then environment, then defaults. Throws ConfigError (or commander's error, already
 * printed) for a value that cannot be used. Refuses a non-loopback bind without a token: an
 * unauthenticated money API must not be reachable from the network by accident.
 */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): GateConfig {
  const program = gateCommand();
  program.parse(argv, { from: 'user' });
  const flags = program.opts<{
    port?: number;
    host?: string;
    dataDir?: string;
    durability?: AckPoint;
    token?: string;
    logLevel?: LogLevel;
  }>();
  const config: GateConfig = {
    port: flags.port ?? fromEnv(env, 'PORT', port) ?? 8080,
    host: flags.host ?? fromEnv(env, 'HOST', String) ?? '127.0.0.1',
    dataDir: flags.dataDir ?? fromEnv(env, 'DATA_DIR', String) ?? './data',
    durability: flags.durability ?? fromEnv(env, 'DURABILITY', durability) ?? 'disk',
    token: flags.token ?? fromEnv(env, 'BALANCE_GATE_TOKEN', String),
    logLevel: flags.logLevel ?? fromEnv(env, 'LOG_LEVEL', logLevel) ?? 'info',
  };
  if (!isLoopback(config.host) && config.token === undefined) {
    throw new ConfigError(
      `refusing to bind ${config.host} without a token: anyone who reaches the port could move funds. ` +
        'Set BALANCE_GATE_TOKEN (clients then send "Authorization: Bearer <token>"), or bind 127.0.0.1.',
    );
  }
  return config;
}
