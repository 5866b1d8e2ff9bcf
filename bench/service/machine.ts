/**
 * The conditions a bench:service run happens in, printed with its figures: how busy the cores already are
 * (other work on a shared machine makes every figure pessimistic) and who used the CPU during each run. What
 * a durable write costs on the disk is bench/lib/fdatasync-probe.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { sleep } from './processes.ts';

/** Cumulative busy and total jiffies over all cores (/proc/stat). */
export function cpuTimes(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3] + (fields[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

export function busyPctSince(before: { busy: number; total: number }): number {
  const after = cpuTimes();
  return after.total === before.total ? 0 : (100 * (after.busy - before.busy)) / (after.total - before.total);
}

/** Share of all cores busy while this process sleeps: the load others put on the machine. */
export async function backgroundBusyPct(windowMs: number): Promise<number> {
  const before = cpuTimes();
  await sleep(windowMs);
  return busyPctSince(before);
}

// ---- who used the CPU during a run -----------------------------------------------------------------------

const CLOCK_TICKS_PER_S = 100; // USER_HZ: 100 on Linux x86-64 and arm64

interface ProcStat {
  ppid: number;
  /** utime + stime */
  own: number;
  /** cutime + cstime: reaped children */
  reaped: number;
}

function readProcs(): Map<number, ProcStat> {
  const procs = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // Fields after the command name, which is in parentheses and may hold spaces: state ppid ... (from 3rd)
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    procs.set(Number(name), {
      ppid: Number(f[1]),
      own: Number(f[11]) + Number(f[12]),
      reaped: Number(f[13]) + Number(f[14]),
    });
  }
  return procs;
}

/** Ticks of `root` (with its reaped children) and its live descendants, skipping the subtree at `skip`. */
function treeTicks(procs: Map<number, ProcStat>, root: number, skip?: number): number {
  const children = new Map<number, number[]>();
  for (const [pid, p] of procs) {
    const list = children.get(p.ppid);
    if (list) list.push(pid);
    else children.set(p.ppid, [pid]);
  }
  const rootStat = procs.get(root);
  if (!rootStat) return 0;
  let ticks = rootStat.own + rootStat.reaped;
  const stack = [...(children.get(root) ?? [])];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (pid === skip) continue;
    ticks += procs.get(pid)!.own;
    stack.push(...(children.get(pid) ?? []));
  }
  return ticks;
}

export interface CpuSnapshot {
  machine: { busy: number; total: number };
  /** This process and its descendants (generator, tools), minus the target if it is one of them. */
  loadTicks: number;
  targetTicks: number;
}

export function cpuSnapshot(targetPid: number | undefined): CpuSnapshot {
  const procs = readProcs();
  return {
    machine: cpuTimes(),
    loadTicks: treeTicks(procs, process.pid, targetPid),
    targetTicks: targetPid === undefined ? 0 : treeTicks(procs, targetPid),
  };
}

/** CPU used between two snapshots, in % of one core (the machine's total can reach cores x 100). */
export interface CpuShare {
  machinePct: number;
  targetPct: number;
  /** Load generation: orchestrator, our generator, the C tools. */
  loadPct: number;
  /** Everything else on the machine: other people's work, the kernel's threads. */
  othersPct: number;
}

export function cpuShare(before: CpuSnapshot, after: CpuSnapshot, cores: number): CpuShare {
  const total = after.machine.total - before.machine.total;
  const seconds = total / cores / CLOCK_TICKS_PER_S;
  const pct = (ticks: number) => (seconds > 0 ? ticks / CLOCK_TICKS_PER_S / seconds : 0) * 100;
  const machinePct = total > 0 ? ((after.machine.busy - before.machine.busy) / total) * cores * 100 : 0;
  const targetPct = pct(after.targetTicks - before.targetTicks);
  const loadPct = pct(after.loadTicks - before.loadTicks);
  return { machinePct, targetPct, loadPct, othersPct: Math.max(0, machinePct - targetPct - loadPct) };
}
