import * as path from 'node:path';
import { Prng } from '../util/prng.ts';
import type { FileHandle, FileSystem, OpenMode, OpenOptions } from './file-system.ts';

/**
 * A deterministic, in-memory file system that fails the way disks do, for the crash simulation.
 *
 * Model: every file has its current content (what reads see) and its durable content (what survives power
 * loss). Writes and truncates change the current content and are remembered as unsynced operations;
 * `datasync` makes the current content durable. Directory changes (create, rename, unlink) are current at
 * once and durable after `syncDir` of their directory. `crash()` is power loss and reboot: each file keeps
 * its durable content plus, by the seed, an in-order prefix of its unsynced operations whose last one may
 * be torn (a byte prefix, or whole 512-byte sectors missing); each directory keeps a prefix of its unsynced
 * changes. After a failed `datasync` (fsyncgate) each unsynced operation independently survives or not.
 * Faults: injected EIO/ENOSPC on chosen calls, a capacity limit, and bit flips in durable bytes.
 */
export type SimOp = 'write' | 'datasync' | 'syncDir' | 'open' | 'rename' | 'read' | 'unlink' | 'truncate';

export interface FaultRule {
  op: SimOp;
  error: 'EIO' | 'ENOSPC';
  pathIncludes?: string;
  /** Fail the (n+1)th matching call; default 0 (the next one). */
  afterMatchingCalls?: number;
  /** Keep failing every matching call after the first failure. */
  persistent?: boolean;
}

interface Pending {
  position: number;
  data: Uint8Array | undefined;
  /** For truncates: the new length. */
  truncateTo: number;
}

class SimFile {
  current: Buffer = Buffer.alloc(0);
  durable: Buffer = Buffer.alloc(0);
  pending: Pending[] = [];
  /** A datasync failed since the last successful one: unsynced writes are in an unknown state. */
  syncFailed = false;
}

type DirChange = { kind: 'set'; name: string; file: SimFile } | { kind: 'delete'; name: string };

interface SimDir {
  current: Map<string, SimFile>;
  durable: Map<string, SimFile>;
  pending: DirChange[];
}

const SECTOR_BYTES = 512;

export interface SimFileSystemOptions {
  seed: number;
  /** Writes beyond this many bytes in all files fail with ENOSPC. */
  capacityBytes?: number;
  /** Honour `syncWrites` (O_DSYNC) opens; otherwise the caller falls back to explicit datasync. */
  syncWrites?: boolean;
}

export class SimFileSystem implements FileSystem {
  readonly supportsSyncWrites: boolean;
  private readonly prng: Prng;
  private readonly dirs = new Map<string, SimDir>();
  private rules: (FaultRule & { seen: number; fired: boolean })[] = [];
  /** Set on the view a crash retired: the crashed process's file system is gone, whatever it still does. */
  private dead = false;
  private readonly capacityBytes: number;
  readonly stats = { writes: 0, datasyncs: 0, syncDirs: 0, bytesWritten: 0, crashes: 0, faultsInjected: 0 };

  constructor(options: SimFileSystemOptions) {
    this.prng = new Prng(options.seed);
    this.capacityBytes = options.capacityBytes ?? Number.POSITIVE_INFINITY;
    this.supportsSyncWrites = options.syncWrites ?? false;
  }

  // ---- faults ----------------------------------------------------------------------------------------

  injectFault(rule: FaultRule): void {
    this.rules.push({ ...rule, seen: 0, fired: false });
  }

  clearFaults(): void {
    this.rules = [];
  }

  private fault(op: SimOp, file: string): void {
    for (const rule of this.rules) {
      if (rule.op !== op || (rule.pathIncludes !== undefined && !file.includes(rule.pathIncludes))) continue;
      if (rule.fired && !rule.persistent) continue;
      rule.seen++;
      if (rule.fired || rule.seen > (rule.afterMatchingCalls ?? 0)) {
        rule.fired = true;
        this.stats.faultsInjected++;
        throw Object.assign(new Error(`${rule.error}: injected ${op} fault on ${file}`), {
          code: rule.error,
        });
      }
    }
  }

  // ---- power loss ------------------------------------------------------------------------------------

  /**
   * Power loss and reboot. Returns the rebooted disk's file system; this one, and every handle opened
   * through it, fails from now on (the crashed process may still have work in flight: it must not touch
   * the rebooted disk).
   */
  crash(): SimFileSystem {
    this.stats.crashes++;
    this.rules = [];
    const files = new Set<SimFile>();
    for (const dir of this.dirs.values()) {
      for (const file of dir.current.values()) files.add(file);
      for (const file of dir.durable.values()) files.add(file);
      for (const change of dir.pending) if (change.kind === 'set') files.add(change.file);
    }
    for (const file of files) this.crashFile(file);
    for (const dir of this.dirs.values()) {
      const kept = this.prng.int(dir.pending.length + 1);
      for (const change of dir.pending.slice(0, kept)) {
        if (change.kind === 'set') dir.durable.set(change.name, change.file);
        else dir.durable.delete(change.name);
      }
      dir.pending = [];
      dir.current = new Map(dir.durable);
    }
    const rebooted = Object.create(SimFileSystem.prototype) as SimFileSystem;
    Object.assign(rebooted, this);
    this.dead = true;
    return rebooted;
  }

  private alive(what: string): void {
    if (this.dead) throw errno('EIO', `${what}: this file system was lost in a crash`);
  }

  private crashFile(file: SimFile): void {
    let content: Buffer = Buffer.from(file.durable);
    const ops = file.pending;
    if (file.syncFailed) {
      for (const op of ops) if (this.prng.chance(0.5)) content = applyOp(content, op, op.data);
    } else {
      const kept = this.prng.int(ops.length + 1);
      for (let i = 0; i < kept; i++) {
        const op = ops[i];
        const torn = i === kept - 1 && op.data !== undefined && this.prng.chance(0.5);
        content = torn ? this.tear(content, op) : applyOp(content, op, op.data);
      }
    }
    file.current = content;
    file.durable = Buffer.from(content);
    file.pending = [];
    file.syncFailed = false;
  }

  /** A torn write: a prefix of its bytes, or its sectors with some missing (those keep the old content). */
  private tear(content: Buffer, op: Pending): Buffer {
    const data = op.data!;
    if (this.prng.chance(0.5)) return applyOp(content, op, data.subarray(0, this.prng.int(data.length + 1)));
    const end = op.position + data.length;
    let out: Buffer = Buffer.from(content);
    if (out.length < end) out = Buffer.concat([out, Buffer.alloc(end - out.length)]);
    for (
      let sector = Math.floor(op.position / SECTOR_BYTES) * SECTOR_BYTES;
      sector < end;
      sector += SECTOR_BYTES
    ) {
      if (!this.prng.chance(0.6)) continue;
      const from = Math.max(sector, op.position);
      const to = Math.min(sector + SECTOR_BYTES, end);
      out.set(data.subarray(from - op.position, to - op.position), from);
    }
    return out;
  }

  /** Flips one bit of a file's durable (and current) bytes; returns where. */
  flipBit(filePath: string, byteOffset?: number): { byteOffset: number; bit: number } {
    const file = this.lookup(filePath);
    if (!file || file.durable.length === 0) throw new Error(`flipBit: ${filePath} is missing or empty`);
    const offset = byteOffset ?? this.prng.int(file.durable.length);
    const bit = this.prng.int(8);
    file.durable[offset] ^= 1 << bit;
    if (offset < file.current.length) file.current[offset] ^= 1 << bit;
    return { byteOffset: offset, bit };
  }

  // ---- introspection ---------------------------------------------------------------------------------

  paths(): string[] {
    const out: string[] = [];
    for (const [dirPath, dir] of this.dirs)
      for (const name of dir.current.keys()) out.push(path.join(dirPath, name));
    return out.sort();
  }

  durableContent(filePath: string): Buffer | undefined {
    const { dir, name } = this.split(filePath);
    const file = this.dirs.get(dir)?.durable.get(name);
    return file && Buffer.from(file.durable);
  }

  // ---- FileSystem ------------------------------------------------------------------------------------

  async open(filePath: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle> {
    await tick();
    this.alive('open');
    this.fault('open', filePath);
    const { dir, name } = this.split(filePath);
    const simDir = this.dirs.get(dir);
    if (!simDir) throw errno('ENOENT', `no such directory: ${dir}`);
    let file = simDir.current.get(name);
    if (mode === 'create') {
      if (file) throw errno('EEXIST', `file exists: ${filePath}`);
      file = new SimFile();
      simDir.current.set(name, file);
      simDir.pending.push({ kind: 'set', name, file });
    } else if (!file) {
      throw errno('ENOENT', `no such file: ${filePath}`);
    }
    return this.handle(
      filePath,
      file,
      mode !== 'read',
      options?.syncWrites === true && this.supportsSyncWrites,
    );
  }

  private handle(filePath: string, file: SimFile, writable: boolean, syncWrites: boolean): FileHandle {
    const live = () => {
      if (this.dead) throw errno('EBADF', `handle of ${filePath} is from before a crash`);
    };
    return {
      write: async (data, dataOffset, length, position) => {
        await tick();
        live();
        if (!writable) throw errno('EBADF', `${filePath} is open read-only`);
        const bytes = Buffer.from(data.subarray(dataOffset, dataOffset + length));
        try {
          this.fault('write', filePath);
          if (this.usedBytes() + Math.max(0, position + length - file.current.length) > this.capacityBytes) {
            throw errno('ENOSPC', `no space left writing ${filePath}`);
          }
        } catch (error) {
          // A failing write may still have written a prefix (a short write before ENOSPC/EIO).
          const prefix = bytes.subarray(0, this.prng.int(bytes.length + 1));
          if (prefix.length > 0) this.applyWrite(file, position, prefix);
          throw error;
        }
        this.applyWrite(file, position, bytes);
        this.stats.writes++;
        this.stats.bytesWritten += length;
        if (syncWrites) {
          await tick();
          live();
          this.makeDurable(file);
        }
      },
      read: async (into, intoOffset, length, position) => {
        await tick();
        live();
        this.fault('read', filePath);
        const end = Math.min(file.current.length, position + length);
        if (end <= position) return 0;
        into.set(file.current.subarray(position, end), intoOffset);
        return end - position;
      },
      datasync: async () => {
        await tick();
        live();
        try {
          this.fault('datasync', filePath);
        } catch (error) {
          file.syncFailed = true;
          throw error;
        }
        this.stats.datasyncs++;
        this.makeDurable(file);
      },
      truncate: async (length) => {
        await tick();
        live();
        this.fault('truncate', filePath);
        file.current = applyOp(file.current, { position: 0, data: undefined, truncateTo: length }, undefined);
        file.pending.push({ position: 0, data: undefined, truncateTo: length });
      },
      size: async () => {
        await tick();
        live();
        return file.current.length;
      },
      close: async () => {
        await tick();
      },
    };
  }

  private applyWrite(file: SimFile, position: number, bytes: Buffer): void {
    const op = { position, data: bytes, truncateTo: -1 };
    file.current = applyOp(file.current, op, bytes);
    file.pending.push(op);
  }

  private makeDurable(file: SimFile): void {
    file.durable = Buffer.from(file.current);
    file.pending = [];
    file.syncFailed = false;
  }

  private usedBytes(): number {
    let total = 0;
    for (const dir of this.dirs.values())
      for (const file of dir.current.values()) total += file.current.length;
    return total;
  }

  async list(dir: string): Promise<string[]> {
    await tick();
    this.alive('list');
    return [...(this.dirs.get(path.resolve(dir))?.current.keys() ?? [])];
  }

  async mkdirp(dir: string): Promise<void> {
    await tick();
    this.alive('mkdirp');
    // Directories themselves are modelled as durable once made: the engine syncs their entries, not them.
    let current = path.resolve(dir);
    while (!this.dirs.has(current)) {
      this.dirs.set(current, { current: new Map(), durable: new Map(), pending: [] });
      const parent = path.dirname(current);
      if (parent === current) break;
      current = parent;
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await tick();
    this.alive('rename');
    this.fault('rename', from);
    const source = this.split(from);
    const target = this.split(to);
    const file = this.dirs.get(source.dir)?.current.get(source.name);
    const targetDir = this.dirs.get(target.dir);
    if (!file || !targetDir) throw errno('ENOENT', `rename ${from} -> ${to}: no such file or directory`);
    const sourceDir = this.dirs.get(source.dir)!;
    sourceDir.current.delete(source.name);
    sourceDir.pending.push({ kind: 'delete', name: source.name });
    targetDir.current.set(target.name, file);
    targetDir.pending.push({ kind: 'set', name: target.name, file });
  }

  async unlink(filePath: string): Promise<void> {
    await tick();
    this.alive('unlink');
    this.fault('unlink', filePath);
    const { dir, name } = this.split(filePath);
    const simDir = this.dirs.get(dir);
    if (!simDir?.current.has(name)) throw errno('ENOENT', `no such file: ${filePath}`);
    simDir.current.delete(name);
    simDir.pending.push({ kind: 'delete', name });
  }

  async syncDir(dir: string): Promise<void> {
    await tick();
    this.alive('syncDir');
    this.fault('syncDir', dir);
    const simDir = this.dirs.get(path.resolve(dir));
    if (!simDir) throw errno('ENOENT', `no such directory: ${dir}`);
    this.stats.syncDirs++;
    simDir.durable = new Map(simDir.current);
    simDir.pending = [];
  }

  async exists(filePath: string): Promise<boolean> {
    await tick();
    this.alive('exists');
    return this.lookup(filePath) !== undefined || this.dirs.has(path.resolve(filePath));
  }

  async readFile(filePath: string): Promise<Uint8Array> {
    await tick();
    this.alive('readFile');
    this.fault('read', filePath);
    const file = this.lookup(filePath);
    if (!file) throw errno('ENOENT', `no such file: ${filePath}`);
    return Buffer.from(file.current);
  }

  private lookup(filePath: string): SimFile | undefined {
    const { dir, name } = this.split(filePath);
    return this.dirs.get(dir)?.current.get(name);
  }

  private split(filePath: string): { dir: string; name: string } {
    const resolved = path.resolve(filePath);
    return { dir: path.dirname(resolved), name: path.basename(resolved) };
  }
}

function applyOp(content: Buffer, op: Pending, data: Uint8Array | undefined): Buffer {
  if (data === undefined) {
    if (op.truncateTo >= content.length)
      return Buffer.concat([content, Buffer.alloc(op.truncateTo - content.length)]);
    return Buffer.from(content.subarray(0, op.truncateTo));
  }
  const end = op.position + data.length;
  const out =
    content.length >= end
      ? Buffer.from(content)
      : Buffer.concat([content, Buffer.alloc(end - content.length)]);
  out.set(data, op.position);
  return out;
}

function errno(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
