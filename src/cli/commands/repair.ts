import * as path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { EngramError } from '../../errors.ts';
import { scanLog } from '../../log/reader.ts';
import {
  applyTruncate,
  planIsEmpty,
  planTruncateAfter,
  scanTolerant,
  type TolerantScan,
  type TruncatePlan,
} from '../../log/repair.ts';
import { snapshotsDir } from '../../snapshot/build.ts';
import { listSnapshots, type SnapshotEntry } from '../../snapshot/catalog.ts';
import { CliError, EXIT_DAMAGED, EXIT_DRY_RUN, EXIT_OK, usageError } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { locateLog } from '../log-dir.ts';
import { withProgress } from '../progress.ts';
import { formatBytes, lsnRange } from '../text.ts';

interface RepairOptions {
  truncateAfter: number;
  yes?: boolean;
}

/** Parses an LSN argument: a non-negative safe integer in decimal. */
export function parseLsn(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`'${value}' is not an LSN (a whole number such as 1200).`);
  }
  return Number(value);
}

export function registerRepair(program: Command, context: CommandContext): void {
  program
    .command('repair')
    .description(
      'cut the log after a committed group, deleting every later record; prints the plan unless --yes is given',
    )
    .argument('<dir>', 'data directory (holding wal/) or the wal/ directory')
    .requiredOption(
      '--truncate-after <lsn>',
      'keep records up to this LSN (the last LSN of a committed group)',
      parseLsn,
    )
    .option('--yes', 'apply the plan (without it, nothing is changed)')
    .addHelpText(
      'after',
      '\nRun `engram verify <dir>` first: it names the damage and the LSN that keeps everything before it.\n' +
        'Stop every process using the directory before repairing: the store holds no lock that repair could see.',
    )
    .action(async (dir: string, options: RepairOptions) => {
      context.setExitCode(await repair(context, dir, options));
    });
}

async function repair(context: CommandContext, dir: string, options: RepairOptions): Promise<number> {
  const { io, fs } = context;
  const location = await locateLog(fs, dir);
  const scan = await withProgress(io, 'scanning', location.bytesTotal, (onProgress) =>
    scanTolerant(fs, location.walDir, { onProgress }),
  );
  const planned = planTruncateAfter(scan, options.truncateAfter);
  if (!planned.ok) throw usageError(invalidCutMessage(scan, options.truncateAfter, planned, dir));
  const plan = planned.plan;
  if (planIsEmpty(plan)) {
    io.out(`Nothing to remove: the log in ${location.walDir} already ends at LSN ${plan.lsn}.\n`);
    return EXIT_OK;
  }
  const ahead = location.dataDir
    ? (await listSnapshots(fs, snapshotsDir(location.dataDir))).filter((s) => s.lsn > plan.lsn)
    : [];
  if (ahead.length > 0) throw new CliError(EXIT_DAMAGED, snapshotsAheadMessage(ahead, plan.lsn));
  io.out(planText(scan, plan));
  if (!options.yes) {
    io.out(
      `\nDry run: nothing was changed. To apply, run:\n  engram repair ${dir} --truncate-after ${plan.lsn} --yes\n`,
    );
    return EXIT_DRY_RUN;
  }
  try {
    await applyTruncate(fs, plan);
  } catch (error) {
    // The log changed under us (a store still running?): nothing was cut, and it is not a usage error.
    if (error instanceof EngramError) throw new CliError(EXIT_DAMAGED, error.message);
    throw error;
  }
  try {
    const after = await scanLog(fs, location.walDir, { verifyAll: true });
    io.out(`\nRepaired: the log now ends at LSN ${after.lastLsn} and verifies; the store can start.\n`);
    return EXIT_OK;
  } catch (error) {
    if (!(error instanceof EngramError)) throw error;
    io.out(`\nThe cut was made, but the log still does not verify: ${error.message}\n`);
    return EXIT_DAMAGED;
  }
}

function planText(scan: TolerantScan, plan: TruncatePlan): string {
  const lines = [
    `Repair plan for ${scan.dir}: keep LSN ${lsnRange(scan.firstLsn, plan.lsn)}, remove everything after.`,
  ];
  if (scan.damage) {
    lines.push(
      `  verification stops at ${path.basename(scan.damage.file)} offset ${scan.damage.offset}: ${scan.damage.reason} ` +
        `(the log verifies up to LSN ${scan.lastLsn}; nothing after that point can be kept)`,
    );
  } else {
    lines.push(
      `  the log verifies completely (up to LSN ${scan.lastLsn}): this cut removes acknowledged records`,
    );
  }
  if (plan.truncate) {
    const t = plan.truncate;
    lines.push(
      `  truncate ${t.file}: remove bytes ${t.keepBytes}..${t.fileBytes} (${formatBytes(t.fileBytes - t.keepBytes)}), ` +
        `keeping ${t.keepBytes} bytes`,
    );
  }
  for (const d of plan.deletes) lines.push(`  delete ${d.file} (${formatBytes(d.bytes)})`);
  lines.push(`  records lost: ${lostText(plan)}; ${formatBytes(plan.bytesRemoved)} removed`);
  return `${lines.join('\n')}\n`;
}

function lostText(plan: TruncatePlan): string {
  if (plan.recordsLostMin === 0) return 'none (the bytes removed hold no record that still checksums)';
  const range = plan.lsnMaxLost !== undefined ? ` (LSN ${lsnRange(plan.lsn + 1, plan.lsnMaxLost)})` : '';
  const unverified =
    plan.unverifiedRecordsLost > 0
      ? `, ${plan.unverifiedRecordsLost} more that still checksum but cannot be verified`
      : '';
  return `at least ${plan.recordsLostMin}${range}: ${plan.verifiedRecordsLost} verified${unverified}`;
}

function invalidCutMessage(
  scan: TolerantScan,
  lsn: number,
  planned: { reason: string; below: number | undefined; above: number | undefined },
  dir: string,
): string {
  const choices: string[] = [];
  if (planned.below !== undefined) choices.push(`${planned.below} (keeps up to LSN ${planned.below})`);
  if (planned.above !== undefined) choices.push(`${planned.above} (keeps up to LSN ${planned.above})`);
  const damage = scan.damage
    ? ` The log verifies up to LSN ${scan.lastLsn}; it is damaged at ${scan.damage.file} offset ${scan.damage.offset} (${scan.damage.reason}).`
    : '';
  if (choices.length === 0) {
    return `cannot cut after LSN ${lsn}: ${planned.reason}.${damage} Nothing can be kept; restore the log from a backup or a replica.`;
  }
  return (
    `cannot cut after LSN ${lsn}: ${planned.reason}.${damage}\n` +
    `Valid choices around it: ${choices.join(', ')}. For example:\n` +
    `  engram repair ${dir} --truncate-after ${planned.below ?? planned.above}`
  );
}

function snapshotsAheadMessage(ahead: SnapshotEntry[], lsn: number): string {
  return (
    `refusing to cut after LSN ${lsn}: snapshot(s) ${ahead.map((s) => `${s.file} (LSN ${s.lsn})`).join(', ')} ` +
    'hold state past the cut, so the store would refuse to start (its log would end before the snapshot). ' +
    'Move them out of the snapshots directory first (they include records this repair removes), then repeat the repair.'
  );
}
