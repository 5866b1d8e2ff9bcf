import { Command, InvalidArgumentError } from 'commander';
import { type AckPoint, isAckPoint } from '../../src/engine/ack-point.ts';
import { isLoopback } from '../../src/server/auth.ts';

export interface GateConfig {
  port: number;
  host: string;
  dataDir: string;
  durability: AckPoint;
  token: string | undefined;
  logLevel: string;
}

export class ConfigError extends Error {}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError(`'${value}' is not a port (0..65535)`);
  return n;
}

function durability(value: string): AckPoint {
  if (!isAckPoint(value))
    throw new InvalidArgumentError(
      `'${value}' is not an ack point; use 'disk' (durable, default) or 'memory'`,
    );
  return value;
}

/**
 * Settings from flags, then environment, then defaults. Refuses a non-loopback bind without a token: an
 * unauthenticated money API must not be reachable from the network by accident.
 */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): GateConfig {
  const program = new Command()
    .name('balance-gate')
    .description('Funds reservations over HTTP on an Engram store: durable before it answers.')
    .option('--port <port>', 'port to listen on (env PORT)', port)
    .option('--host <host>', 'address to bind (env HOST)')
    .option('--data-dir <dir>', 'where the log and snapshots live (env DATA_DIR)')
    .option(
      '--durability <ackPoint>',
      "ack point: 'disk' (fdatasync before a 200) or 'memory' (env DURABILITY)",
      durability,
    )
    .option(
      '--token <token>',
      'require "Authorization: Bearer <token>" (env BALANCE_GATE_TOKEN; prefer the env)',
    )
    .option('--log-level <level>', 'pino log level (env LOG_LEVEL)', 'info')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  program.parse(argv, { from: 'user' });
  const flags = program.opts<{
    port?: number;
    host?: string;
    dataDir?: string;
    durability?: AckPoint;
    token?: string;
    logLevel: string;
  }>();
  const config: GateConfig = {
    port: flags.port ?? (env.PORT !== undefined ? port(env.PORT) : 8080),
    host: flags.host ?? env.HOST ?? '127.0.0.1',
    dataDir: flags.dataDir ?? env.DATA_DIR ?? './data',
    durability: flags.durability ?? (env.DURABILITY !== undefined ? durability(env.DURABILITY) : 'disk'),
    token: flags.token ?? (env.BALANCE_GATE_TOKEN || undefined),
    logLevel: env.LOG_LEVEL ?? flags.logLevel,
  };
  if (!isLoopback(config.host) && config.token === undefined) {
    throw new ConfigError(
      `refusing to bind ${config.host} without a token: set BALANCE_GATE_TOKEN (clients then send "Authorization: Bearer <token>"), or bind 127.0.0.1`,
    );
  }
  return config;
}
