import * as path from 'node:path';
import type { Command } from 'commander';
import { EXIT_DAMAGED, EXIT_OK } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { DEFINITION_NAMES, loadTypeNames, type TypeNames } from '../definitions.ts';
import { locateLog } from '../log-dir.ts';
import { buildLogReport, type LogReport } from '../log-report.ts';
import { describeSnapshots, type SnapshotRow } from '../snapshot-report.ts';
import { formatBytes, isoTime, lsnRange, table } from '../text.ts';
import { damageAdvice } from './verify.ts';

interface InspectOptions {
  json?: boolean;
  definition?: string;
}

export function registerInspect(program: Command, context: CommandContext): void {
  program
    .command('inspect')
    .description('describe a log: segments, record counts by type, the last commit, any torn tail')
    .argument('<dir>', 'data directory (holding wal/) or the wal/ directory')
    .option('--json', 'print one JSON object instead of tables')
    .option(
      '--definition <name>',
      `name record types after a definition's commands (${DEFINITION_NAMES.join(', ')})`,
    )
    .action(async (dir: string, options: InspectOptions) => {
      const names = await loadTypeNames(options.definition);
      const location = await locateLog(context.fs, dir);
      const report = await buildLogReport(context.fs, context.io, location);
      const snapshots = location.dataDir
        ? await describeSnapshots(context.fs, location.dataDir, report.firstLsn, report.lastLsn)
        : [];
      context.io.out(
        options.json
          ? `${JSON.stringify({ ...inspectJson(report, names), snapshots }, null, 2)}\n`
          : inspectText(report, names, dir) + snapshotsText(snapshots),
      );
      context.setExitCode(
        report.status === 'corrupt' || report.status === 'log_gap' ? EXIT_DAMAGED : EXIT_OK,
      );
    });
}

function typeRows(report: LogReport, names: TypeNames | undefined) {
  return [...report.recordsByType]
    .sort((a, b) => a[0] - b[0])
    .map(([type, records]) => ({
      type,
      name: names ? (names.nameOf(type) ?? null) : undefined,
      records,
    }));
}

export function inspectJson(report: LogReport, names: TypeNames | undefined): Record<string, unknown> {
  const last = report.lastRecord;
  return {
    dir: report.dir,
    status: report.status,
    definition: names?.definition,
    segments: report.segments.map((s) => ({
      name: s.name,
      baseLsn: s.baseLsn,
      firstLsn: s.records > 0 ? s.baseLsn : null,
      lastLsn: s.records > 0 ? s.lastLsn : null,
      records: s.records,
      groups: s.groups,
      fileBytes: s.fileBytes,
      committedBytes: s.committedBytes,
      state: s.state ?? null,
    })),
    firstLsn: report.firstLsn,
    lastLsn: report.lastLsn,
    records: report.records,
    groups: report.groups,
    recordsByType: typeRows(report, names),
    lastCommit: last
      ? {
          lsn: last.lsn,
          type: last.type,
          name: names ? (names.nameOf(last.type) ?? null) : undefined,
          timestampMs: last.nowMs ?? null,
          timestamp: last.nowMs === undefined ? null : (isoTime(last.nowMs) ?? null),
        }
      : null,
    tornTails: report.tornTails.map((t) => ({
      file: t.file,
      offset: t.offset,
      bytes: t.discardedBytes,
      uncommittedRecords: t.uncommittedRecords,
      deletesFile: t.deleteFile,
      reason: t.reason,
    })),
    error: report.error ?? null,
    damage: report.damage ?? null,
    suggestedRepair: report.suggestedRepair
      ? {
          truncateAfter: report.suggestedRepair.lsn,
          recordsLostMin: report.suggestedRepair.recordsLostMin,
        }
      : null,
  };
}

function inspectText(report: LogReport, names: TypeNames | undefined, dirArgument: string): string {
  const parts: string[] = [];
  const fileBytes = report.segments.reduce((a, s) => a + s.fileBytes, 0);
  parts.push(`log ${report.dir}: ${report.segments.length} segment(s), ${formatBytes(fileBytes)}\n`);
  if (report.status === 'corrupt' || report.status === 'log_gap') {
    parts.push('DAMAGED: the figures below cover only the verified part of the log, up to the damage.\n');
  }
  if (report.segments.length > 0) {
    parts.push('\nsegments\n');
    const damaged = report.segments.some((s) => s.state !== undefined);
    const header = ['segment', 'base LSN', 'LSNs', 'records', 'groups', 'bytes', 'committed bytes'];
    const rows = report.segments.map((s) => {
      const row = [s.name, s.baseLsn, lsnRange(s.baseLsn, s.lastLsn), s.records, s.groups, s.fileBytes];
      return [...row, s.committedBytes, ...(damaged ? [s.state ?? ''] : [])];
    });
    parts.push(table(damaged ? [...header, 'state'] : header, rows));
  }
  parts.push(
    `\nrecords: ${report.records} in ${report.groups} group(s), LSN ${lsnRange(report.firstLsn, report.lastLsn)}\n`,
  );
  const types = typeRows(report, names);
  if (types.length > 0) {
    const header = names ? ['type', `command (${names.definition})`, 'records'] : ['type', 'records'];
    const rows = types.map((t) =>
      names ? [t.type, t.name ?? `(unknown to ${names.definition})`, t.records] : [t.type, t.records],
    );
    parts.push('\nrecords by type\n', table(header, rows));
  }
  const last = report.lastRecord;
  if (last) {
    const name = names ? ` ${names.nameOf(last.type) ?? '(unknown)'}` : '';
    const time = last.nowMs === undefined ? undefined : isoTime(last.nowMs);
    parts.push(
      `\nlast commit: LSN ${last.lsn}, type ${last.type}${name}, at ${time ?? 'unknown time (not a command record)'}\n`,
    );
  } else {
    parts.push('\nlast commit: none (the log holds no committed record)\n');
  }
  for (const t of report.tornTails) {
    parts.push(
      `\ntorn tail: ${path.basename(t.file)} at offset ${t.offset}: ${t.discardedBytes} byte(s)` +
        `${t.deleteFile ? ' (the whole file)' : ''}, ${t.uncommittedRecords} uncommitted record(s); ` +
        `a restart cuts them (${t.reason}). They were never acknowledged.\n`,
    );
  }
  if (report.error) parts.push(`\n${damageAdvice(report, dirArgument)}`);
  return parts.join('');
}

function snapshotsText(rows: SnapshotRow[]): string {
  if (rows.length === 0) return '\nsnapshots: none (a restart replays the whole log)\n';
  const table_ = table(
    ['snapshot', 'LSN', 'age', 'bytes', 'state', 'restart'],
    rows.map((r) => [
      r.file.split('/').at(-1) ?? r.file,
      r.lsn,
      r.ageS === undefined ? '-' : `${Math.round(r.ageS)} s`,
      formatBytes(r.bytes),
      r.valid ? (r.reason ? 'valid, unreachable' : 'valid') : 'INVALID',
      r.restartUses ? 'uses this' : '',
    ]),
  );
  const notes = rows.filter((r) => r.reason).map((r) => `  ${r.file.split('/').at(-1)}: ${r.reason}\n`);
  const none = rows.some((r) => r.restartUses)
    ? ''
    : '  no snapshot is usable: a restart replays the log from its start, if it reaches back to LSN 1\n';
  return `\nsnapshots\n${table_}${notes.join('')}${none}`;
}
