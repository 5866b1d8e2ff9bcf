import * as path from 'node:path';
import type { Command } from 'commander';
import { EXIT_DAMAGED, EXIT_OK } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { locateLog } from '../log-dir.ts';
import { buildLogReport, type LogReport } from '../log-report.ts';
import { lsnRange } from '../text.ts';

interface VerifyOptions {
  json?: boolean;
}

export function registerVerify(program: Command, context: CommandContext): void {
  program
    .command('verify')
    .description(
      'verify the whole log (checksums, LSN sequence, commit markers, chain); exit 0 if Engram can start on it, 1 if not',
    )
    .argument('<dir>', 'data directory (holding wal/) or the wal/ directory')
    .option('--json', 'print one JSON object')
    .action(async (dir: string, options: VerifyOptions) => {
      const location = await locateLog(context.fs, dir);
      const report = await buildLogReport(context.fs, context.io, location);
      const healthy = report.status === 'clean' || report.status === 'torn_tail';
      context.io.out(
        options.json ? `${JSON.stringify(verifyJson(report, dir), null, 2)}\n` : verifyText(report, dir),
      );
      context.setExitCode(healthy ? EXIT_OK : EXIT_DAMAGED);
    });
}

function verifyJson(report: LogReport, dirArgument: string): Record<string, unknown> {
  const plan = report.suggestedRepair;
  return {
    dir: report.dir,
    ok: report.status === 'clean' || report.status === 'torn_tail',
    status: report.status,
    segments: report.segments.length,
    records: report.records,
    groups: report.groups,
    firstLsn: report.firstLsn,
    lastLsn: report.lastLsn,
    warnings: report.tornTails.map((t) => ({
      kind: 'torn_tail',
      file: t.file,
      offset: t.offset,
      bytes: t.discardedBytes,
      uncommittedRecords: t.uncommittedRecords,
      reason: t.reason,
    })),
    error: report.error ?? null,
    damage: report.damage ?? null,
    repair: plan
      ? {
          truncateAfter: plan.lsn,
          command: `engram repair ${dirArgument} --truncate-after ${plan.lsn}`,
          recordsLostMin: plan.recordsLostMin,
          lsnMaxLost: plan.lsnMaxLost ?? null,
        }
      : null,
  };
}

function verifyText(report: LogReport, dirArgument: string): string {
  const summary =
    `${report.records} committed record(s) in ${report.groups} group(s), ${report.segments.length} segment(s), ` +
    `LSN ${lsnRange(report.firstLsn, report.lastLsn)}`;
  if (report.status === 'clean') {
    return `OK ${report.dir}: ${summary}; every checksum, commit marker and chain link verified.\n`;
  }
  if (report.status === 'torn_tail') {
    const warnings = report.tornTails.map(
      (t) =>
        `warning: torn tail in ${t.file} at offset ${t.offset}: ${t.discardedBytes} byte(s)` +
        `${t.deleteFile ? ' (the whole file)' : ''} after the last commit marker (${t.reason}), ` +
        `${t.uncommittedRecords} uncommitted record(s).\n`,
    );
    return (
      `OK ${report.dir}: ${summary}.\n${warnings.join('')}` +
      'These bytes were never acknowledged (an interrupted write); the next start cuts them automatically. Nothing to do.\n'
    );
  }
  return damageAdvice(report, dirArgument);
}

/** What is wrong with a damaged log and the two ways out, with the exact repair command. */
export function damageAdvice(report: LogReport, dirArgument: string): string {
  const error = report.error;
  const where = error?.file !== undefined ? `${error.file} at offset ${error.offset ?? 0}` : report.dir;
  const lines = [
    `${report.status === 'log_gap' ? 'LOG GAP' : 'CORRUPT'}: ${where}`,
    `  ${error?.message ?? 'the log does not verify'}`,
  ];
  if (report.damage) {
    lines.push(
      `  first failed check: ${path.basename(report.damage.file)} at offset ${report.damage.offset}: ${report.damage.reason}`,
    );
  }
  lines.push(`  verified: LSN ${lsnRange(report.firstLsn, report.lastLsn)} (${report.records} record(s))`);
  lines.push('', 'Engram will not start on this log. What to do:');
  lines.push(
    '  1. Best: restore the damaged segment(s) from a replica or a backup, then run `engram verify` again.',
  );
  const plan = report.suggestedRepair;
  if (plan) {
    const upTo = plan.lsnMaxLost !== undefined ? `, up to LSN ${plan.lsnMaxLost}` : '';
    const loss =
      plan.recordsLostMin === 0
        ? 'the damaged bytes hold no record that still checksums'
        : `at least ${plan.recordsLostMin} record(s)${upTo}, which were durable and may have been acknowledged`;
    lines.push(
      `  2. Or accept losing every record after LSN ${plan.lsn} (${loss}): stop every process using the directory, then`,
      `       engram repair ${dirArgument} --truncate-after ${plan.lsn}         (shows what it would delete)`,
      `       engram repair ${dirArgument} --truncate-after ${plan.lsn} --yes   (does it)`,
    );
  } else {
    lines.push(
      '  2. No verified group precedes the damage, so a repair cannot keep anything: restore from a backup.',
    );
  }
  return `${lines.join('\n')}\n`;
}
