/**
 * balance-gate: `npm start` (see --help). Opens the HTTP port first (healthz answers, readyz says
 * "recovering"), recovers the store, then serves; SIGTERM/SIGINT stop accepting, finish in-flight
 * requests, flush and exit 0.
 */
import { pino } from 'pino';
import { Store } from '../../src/engine/store.ts';
import { EngineMetrics } from '../../src/server/metrics.ts';
import { buildApp, type GateStore } from './app.ts';
import { ConfigError, type GateConfig, parseConfig } from './config.ts';
import { balanceGateDefinition } from './domain.ts';
import { ExpiryTimer } from './expiry-timer.ts';

function readConfig(): GateConfig {
  try {
    return parseConfig(process.argv.slice(2), process.env);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version') process.exit(0);
    if (error instanceof ConfigError) process.stderr.write(`balance-gate: ${error.message}\n`);
    else if (!code?.startsWith('commander.'))
      process.stderr.write(`balance-gate: ${(error as Error).message}\n`);
    process.exit(2);
  }
}

const config = readConfig();
const log = pino({ level: config.logLevel, base: { service: 'balance-gate' } });
const metrics = new EngineMetrics('engram');
let store: GateStore | undefined;
const app = buildApp({ store: () => store, metrics, token: config.token, logger: false });
const definitionModule = new URL('./domain.ts', import.meta.url).href;

async function start(): Promise<void> {
  const address = await app.listen({ port: config.port, host: config.host });
  log.info(
    { address, ackPoint: config.durability, dataDir: config.dataDir },
    'listening; recovering the store',
  );
  const opened = await Store.open(balanceGateDefinition, {
    dir: config.dataDir,
    ackPoint: config.durability,
    observer: {
      ...metrics.observer(),
      onFailure: (error) => {
        metrics.observer().onFailure?.(error);
        log.fatal({ code: error.code, details: error.details }, `write path failed: ${error.message}`);
      },
      onSnapshot: (built, compaction) =>
        log.info(
          {
            lsn: built.lsn,
            bytes: built.bytes,
            ms: Math.round(built.durationMs),
            segmentsDeleted: compaction.deleted.length,
          },
          'snapshot written',
        ),
      onSnapshotError: (error) => log.error({ code: error.code }, `snapshot failed: ${error.message}`),
    },
    snapshots: { worker: { module: definitionModule, exportName: 'balanceGateDefinition' } },
  });
  metrics.attach(opened);
  const r = opened.recovery;
  for (const fallback of r.snapshotFallbacks)
    log.warn(fallback, 'skipped a snapshot that does not verify; restarting from an older one');
  for (const torn of r.tornTails) log.warn(torn, 'cut a torn log tail (never acknowledged)');
  store = opened;
  expiry.start(opened);
  log.info(
    {
      ackPoint: config.durability,
      dataDir: config.dataDir,
      lsn: r.lastLsn,
      snapshotLsn: r.snapshot?.lsn ?? 0,
      recordsReplayed: r.recordsReplayed,
      recoveryMs: Math.round(r.totalMs),
      address,
    },
    `ready: ack point '${config.durability}' (${config.durability === 'disk' ? 'a 200 means fdatasync’d' : 'a 200 means applied in memory; flushed within 10 ms'}), data in ${config.dataDir}`,
  );
}

const expiry = new ExpiryTimer((error) => log.error({ err: error }, 'expiring holds failed'));

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping: no new requests, finishing in-flight ones, flushing');
  expiry.stop();
  await app.close();
  try {
    await store?.close();
  } catch (error) {
    log.error({ err: error }, 'the store did not close cleanly');
    process.exit(1);
  }
  log.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

start().catch((error) => {
  log.fatal({ code: error?.code, details: error?.details }, `cannot start: ${error?.message ?? error}`);
  process.exit(1);
});
