import * as path from 'node:path';
import type { Command } from 'commander';
import { acquireDirLock } from '../../engine/dir-lock.ts';
import { MaterializedState } from '../../engine/materialized-state.ts';
import { compileDefinition } from '../../engine/registry.ts';
import { EngramError } from '../../errors.ts';
import { segmentName } from '../../log/format.ts';
import { scanLog } from '../../log/reader.ts';
import { buildSnapshot } from '../../snapshot/build.ts';
import { readSnapshotFile } from '../../snapshot/snapshot-file.ts';
import { EXIT_DAMAGED, EXIT_OK, usageError } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { DEFINITION_NAMES, loadDefinition } from '../definitions.ts';
import { formatBytes, isoTime } from '../text.ts';

interface SnapshotOptions {
  json?: boolean;
  definition?: string;
}

/**
 * `engram snapshot inspect|verify <file>`: the header, and a verification of every chunk checksum; with
 * --definition also a full decode whose recomputed state hash must equal the header's.
 */
export function registerSnapshot(program: Command, context: CommandContext): void {
  const group = program.command('snapshot').description('create, inspect or verify snapshots');
  group
    .command('create')
    .description(
      'take a snapshot of a stopped store now, at the end of its log (a running store snapshots itself)',
    )
    .argument('<dir>', "the store's data directory")
    .requiredOption('--definition <name>', `the store's definition (${DEFINITION_NAMES.join(', ')})`)
    .option('--keep <n>', 'snapshots to keep', '2')
    .action(async (dir: string, options: { definition: string; keep: string }) => {
      const keep = Number(options.keep);
      if (!Number.isInteger(keep) || keep < 1)
        throw usageError(`--keep must be a positive integer, not '${options.keep}'`);
      const definition = await loadDefinition(options.definition);
      if (!(await context.fs.exists(path.join(dir, 'wal'))))
        throw usageError(`${dir} holds no wal/ directory: pass a store's data directory`);
      const release = await acquireDirLock(context.fs, dir);
      try {
        const scan = await scanLog(context.fs, path.join(dir, 'wal'), {});
        const built = await buildSnapshot({
          fs: context.fs,
          dataDir: dir,
          definition,
          targetLsn: scan.lastLsn,
          keep,
        });
        context.io.out(
          `snapshot ${built.file}: LSN ${built.lsn}, ${formatBytes(built.bytes)}, state hash ${built.stateHash}, ` +
            `built in ${Math.round(built.durationMs)} ms from ${built.baseLsn > 0 ? `the snapshot at LSN ${built.baseLsn}` : 'the start of the log'} + ${built.recordsReplayed} records\n`,
        );
      } finally {
        await release();
      }
    });
  for (const action of ['inspect', 'verify'] as const) {
    group
      .command(action)
      .description(
        action === 'inspect'
          ? 'show a snapshot header (LSN, time, state hash, size) and check it'
          : 'verify a snapshot (checksums; with --definition, decode it and check its state hash); exit 0 if a restart could load it',
      )
      .argument('<file>', 'a snap-<lsn>.snap file (in <data dir>/snapshots/)')
      .option('--json', 'print one JSON object')
      .option(
        '--definition <name>',
        `decode the state with this definition (${DEFINITION_NAMES.join(', ')}) and check its hash`,
      )
      .action(async (file: string, options: SnapshotOptions) => {
        const result = await check(context, file, options.definition);
        if (options.json) context.io.out(`${JSON.stringify(result, null, 2)}\n`);
        else context.io.out(text(result, action));
        context.setExitCode(result.ok ? EXIT_OK : EXIT_DAMAGED);
      });
  }
}

interface SnapshotCheck {
  file: string;
  ok: boolean;
  lsn?: number;
  createdAt?: string;
  ageS?: number;
  stateHash?: string;
  formatVersion?: number;
  engineVersion?: string;
  fileBytes?: number;
  payloadBytes?: number;
  /** Where the log continues after the snapshot's LSN, if the snapshot recorded it. */
  logPosition?: { segment: string; offset: number };
  decoded?: { definition: string; recomputedStateHash: string; matches: boolean; loadMs: number };
  error?: string;
}

async function check(
  context: CommandContext,
  file: string,
  definitionName: string | undefined,
): Promise<SnapshotCheck> {
  if (!(await context.fs.exists(file)))
    throw usageError(`${file} does not exist; pass a snapshot file, e.g. ./data/snapshots/snap-<lsn>.snap`);
  const definition = definitionName === undefined ? undefined : await loadDefinition(definitionName);
  try {
    const snapshot = await readSnapshotFile(context.fs, file);
    const h = snapshot.header;
    const result: SnapshotCheck = {
      file,
      ok: true,
      lsn: h.lsn,
      createdAt: isoTime(h.createdAtMs),
      ageS: (Date.now() - h.createdAtMs) / 1000,
      stateHash: h.stateHash,
      formatVersion: h.formatVersion,
      engineVersion: `${h.engineVersion >>> 16}.${h.engineVersion & 0xffff}`,
      fileBytes: snapshot.fileBytes,
      payloadBytes: snapshot.payload.length,
      logPosition: h.logPosition && {
        segment: segmentName(h.logPosition.segmentBaseLsn),
        offset: h.logPosition.offset,
      },
    };
    if (definition) {
      const startMs = performance.now();
      // Indexes are not part of the hash, and an inspection reads nothing through them.
      const state = MaterializedState.fromImage(
        definition,
        compileDefinition(definition),
        snapshot.payload,
        h.lsn,
        {
          maintainIndexes: false,
        },
      );
      const recomputed = state.stateHash();
      result.decoded = {
        definition: definition.name,
        recomputedStateHash: recomputed,
        matches: recomputed === h.stateHash,
        loadMs: performance.now() - startMs,
      };
      if (!result.decoded.matches) {
        result.ok = false;
        result.error = `decoded state hash ${recomputed} differs from the header's ${h.stateHash}`;
      }
    }
    return result;
  } catch (error) {
    if (!(error instanceof EngramError) && !(error instanceof Error)) throw error;
    return { file, ok: false, error: error.message };
  }
}

function text(r: SnapshotCheck, action: 'inspect' | 'verify'): string {
  if (!r.ok && r.lsn === undefined) {
    return `snapshot ${r.file}: INVALID: ${r.error}\nA restart skips it and falls back to an older snapshot (and says so).\n`;
  }
  const lines = [`snapshot ${r.file}`];
  if (action === 'inspect' || r.ok) {
    lines.push(
      `  LSN ${r.lsn}, written ${r.createdAt} (${Math.round(r.ageS ?? 0)} s ago)`,
      `  state hash ${r.stateHash}, format ${r.formatVersion}, engine ${r.engineVersion}`,
      `  ${formatBytes(r.fileBytes ?? 0)} on disk, ${formatBytes(r.payloadBytes ?? 0)} of state; every chunk checksum verifies`,
      r.logPosition
        ? `  the log continues after it at ${r.logPosition.segment} offset ${r.logPosition.offset} (where a restart starts reading)`
        : '  the log position after it is not recorded (a restart reads its segment from the start)',
    );
  }
  if (r.decoded) {
    lines.push(
      `  decoded with ${r.decoded.definition} in ${Math.round(r.decoded.loadMs)} ms: state hash ${r.decoded.recomputedStateHash} ${r.decoded.matches ? 'matches the header' : 'DOES NOT match the header'}`,
    );
  }
  lines.push(r.ok ? '  OK: a restart can load it' : `  INVALID: ${r.error}`);
  return `${lines.join('\n')}\n`;
}
