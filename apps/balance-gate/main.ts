/**
 * balance-gate: `npm start` (see --help). Opens the HTTP port first (/healthz answers, /readyz says
 * "recovering"), recovers the store, then serves; SIGTERM/SIGINT stop accepting, finish in-flight
 * requests, flush and exit 0. Exit 2: unusable configuration; exit 1: cannot start or stop cleanly.
 */
import { pino } from 'pino';
import { Store } from '../../src/engine/store.ts';
import { groupSealFallbackReason, groupSealKind } from '../../src/log/group-seal.ts';
import { HttpMetrics } from '../../src/server/http-metrics.ts';
import { closeGracefully } from '../../src/server/json-server.ts';
import { combineObservers, EngineMetrics } from '../../src/server/metrics.ts';
import { fileMappingStatus } from '../../src/storage/file-mapping.ts';
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
    // commander has printed its own errors already (unknown option, invalid flag value).
    if (error instanceof ConfigError || !code?.startsWith('commander.'))
      process.stderr.write(`balance-gate: ${(error as Error).message}\n`);
    process.exit(2);
  }
}

const config = readConfig();
const log = pino({ level: config.logLevel, base: { service: 'balance-gate' } });
const metrics = new EngineMetrics({ prefix: 'engram', commandsName: 'balance_gate_commands_total' });
const httpMetrics = new HttpMetrics(metrics.registry, 'balance_gate_http_requests_total');
let store: GateStore | undefined;
let opening: Promise<GateStore> | undefined;
const app = buildApp({
  store: () => store,
  metrics,
  httpMetrics,
  token: config.token,
  errorLog: log,
  // Per-request lines only at debug or trace: at info they would cost more than the requests.
  requestLogger: log.isLevelEnabled('debug') ? log : undefined,
});
const expiry = new ExpiryTimer(log);
/** In-flight requests wait at most one flush; this bounds a shutdown behind a stalled disk or client. */
const SHUTDOWN_GRACE_MS = 10_000;
const definitionModule = new URL('./domain.ts', import.meta.url).href;

const logging = {
  onFailure: (error: { code: string; message: string; details: unknown }) =>
    log.fatal(
      { code: error.code, details: error.details },
      `write path failed, refusing writes until a restart (/readyz 503): ${error.message}`,
    ),
  onSnapshot: (
    built: { lsn: number; bytes: number; durationMs: number },
    compaction: { deleted: string[] },
  ) =>
    log.info(
      {
        lsn: built.lsn,
        bytes: built.bytes,
        ms: Math.round(built.durationMs),
        segmentsDeleted: compaction.deleted.length,
      },
      'snapshot written',
    ),
  onSnapshotError: (error: { code: string; message: string }) =>
    log.error({ code: error.code }, `snapshot failed (writes continue): ${error.message}`),
};

async function start(): Promise<void> {
  const address = await app.listen({ port: config.port, host: config.host });
  log.info(
    { address, ackPoint: config.durability, dataDir: config.dataDir },
    'listening; recovering the store (/readyz 503 until done)',
  );
  opening = Store.open(balanceGateDefinition, {
    dir: config.dataDir,
    ackPoint: config.durability,
    observer: combineObservers(metrics.observer(), logging),
    // Resident: the worker keeps a copy of the state and follows the log, so a snapshot does not rebuild
    // the state first (decision 017); the price is that second copy in memory.
    snapshots: { worker: { module: definitionModule, exportName: 'balanceGateDefinition', resident: true } },
  });
  const opened = await opening;
  metrics.attach(opened);
  const r = opened.recovery;
  for (const fallback of r.snapshotFallbacks)
    log.warn(fallback, 'skipped a snapshot that does not verify; recovered from an older one');
  for (const torn of r.tornTails) log.warn(torn, 'cut a torn log tail (never acknowledged)');
  const mapping = fileMappingStatus();
  if (!mapping.available)
    log.warn(`snapshots are read, not mapped (slower restarts of a large store): ${mapping.reason}`);
  const logChecksums = groupSealKind();
  if (logChecksums === 'js')
    log.warn(
      `log groups are checksummed in JS, not by the native addon (slower writes; the same bytes): ${groupSealFallbackReason()}`,
    );
  store = opened;
  expiry.start(opened);
  log.info(
    {
      address,
      ackPoint: config.durability,
      dataDir: config.dataDir,
      lsn: r.lastLsn,
      snapshotLsn: r.snapshot?.lsn ?? 0,
      recordsReplayed: r.recordsReplayed,
      replayMs: Math.round(r.replayMs),
      recoveryMs: Math.round(r.totalMs),
      tornTails: r.tornTails.length,
      snapshotsMapped: mapping.available,
      logChecksums,
    },
    `ready: ack point '${config.durability}' (${config.durability === 'disk' ? "a 200 means fdatasync'd" : 'a 200 means applied in memory, flushed within 10 ms'}), ` +
      `data in ${config.dataDir}, replayed ${r.recordsReplayed} records in ${Math.round(r.replayMs)} ms`,
  );
}

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping: no new requests, finishing in-flight ones, flushing');
  expiry.stop();
  await closeGracefully(app, SHUTDOWN_GRACE_MS);
  // A signal during recovery: let recovery finish, so the log is left as a clean open would leave it.
  if (store === undefined && opening !== undefined) store = await opening.catch(() => undefined);
  try {
    await store?.close();
  } catch (error) {
    log.error({ err: error }, 'the store did not close cleanly; the next start recovers from the log');
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
