import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Prng } from '../util/prng.ts';
import type { FileHandle, FileSystem, OpenMode, OpenOptions } from './file-system.ts';

/** The calls a fault rule can target. The model itself is described on `SimFileSystem`, below. */
export type SimOp = 'write' | 'datasync' | 'syncDir' | 'open' | 'rename' | 'read' | 'unlink' | 'truncate';

export type SimFaultCode = 'EIO' | 'ENOSPC';

export interface FaultRule {
  op: SimOp;
  error: SimFaultCode;
  /** Only calls whose path (for rename: either path) contains this string match. */
  pathIncludes?: string;
  /** Fail the (n+1)th matching call; default 0 (the next one). */
  afterMatchingCalls?: number;
  /** Keep failing every matching call after the first failure. */
  persistent?: boolean;
}

/** How many `setImmediate` ticks each operation takes, chosen uniformly by the seed. */
export interface SimLatency {
  minTicks: number;
  maxTicks: number;
}

export interface SimFileSystemOptions {
  seed: number;
  /** Bytes the disk holds (sum of file sizes); a write past it fills the disk and fails with ENOSPC. */
  capacityBytes?: number;
  /** Honour `syncWrites` (O_DSYNC) opens; otherwise callers use the explicit `datasync` path. */
  syncWrites?: boolean;
  latency?: SimLatency;
}

/** Counters over the disk's whole life, across crashes. */
export interface SimStats {
  /** Successful `write` calls, and the bytes they wrote. */
  writes: number;
  bytesWritten: number;
  /** Successful `datasync` and `syncDir` calls. */
  datasyncs: number;
  syncDirs: number;
  crashes: number;
  faultsInjected: number;
}

export interface FlippedBit {
  byteOffset: number;
  bit: number;
}

export interface CorruptedFile extends FlippedBit {
  path: string;
}

/** Unit of a torn write's sector pattern; also the alignment of its sectors in the file. */
const SECTOR_BYTES = 512;
/** "Large": 1 TiB, far beyond any test, so only tests that set a capacity meet ENOSPC. */
const CAPACITY_BYTES_DEFAULT = 2 ** 40;
const LATENCY_DEFAULT: SimLatency = { minTicks: 1, maxTicks: 1 };
/** The last unsynced write a crash keeps is torn this often... */
const TORN_WRITE_PROBABILITY = 0.5;
/** ...as a byte prefix this often, otherwise as a subset of its sectors. */
const TORN_AS_PREFIX_PROBABILITY = 0.5;
const TORN_SECTOR_SURVIVES_PROBABILITY = 0.6;
/** After a failed datasync, each unsynced change reached the disk with this probability. */
const CHANGE_SURVIVES_FAILED_SYNC_PROBABILITY = 0.5;
const BITS_PER_BYTE = 8;

// ---- bytes ------------------------------------------------------------------------------------------------

/**
 * A growable byte array that is changed in place: a file takes thousands of small appends, and copying the
 * whole file per write would make long simulations quadratic. Invariant: bytes past `length` are zero, so
 * growing (a write past the end, an extending truncate) exposes zeros, as a hole reads on a real disk.
 */
class ByteArray {
  private bytes: Buffer;
  length: number;

  constructor(initial: Uint8Array = new Uint8Array(0)) {
    this.bytes = Buffer.alloc(Math.max(initial.length, 64));
    this.bytes.set(initial);
    this.length = initial.length;
  }

  view(): Buffer {
    return this.bytes.subarray(0, this.length);
  }

  copy(): Buffer {
    return Buffer.from(this.view());
  }

  clone(): ByteArray {
    return new ByteArray(this.view());
  }

  write(position: number, data: Uint8Array): void {
    this.reserve(position + data.length);
    this.bytes.set(data, position);
    this.length = Math.max(this.length, position + data.length);
  }

  truncate(length: number): void {
    if (length < this.length) this.bytes.fill(0, length, this.length);
    else this.reserve(length);
    this.length = length;
  }

  flipBit(byteOffset: number, bit: number): void {
    assert.ok(
      Number.isInteger(byteOffset) && byteOffset >= 0,
      `bit flip offset must be >= 0, got ${byteOffset}`,
    );
    assert.ok(byteOffset < this.length, `bit flip at ${byteOffset} is past the end (${this.length} bytes)`);
    this.bytes[byteOffset] ^= 1 << bit;
  }

  private reserve(length: number): void {
    if (length <= this.bytes.length) return;
    const grown = Buffer.alloc(Math.max(length, this.bytes.length * 2));
    grown.set(this.view());
    this.bytes = grown;
  }
}

// ---- file content -----------------------------------------------------------------------------------------

type FileChange = { kind: 'write'; position: number; data: Buffer } | { kind: 'truncate'; length: number };

function applyChange(target: ByteArray, change: FileChange): void {
  if (change.kind === 'write') target.write(change.position, change.data);
  else target.truncate(change.length);
}

class SimFile {
  /** The page cache: what reads see. */
  current = new ByteArray();
  /** The platter: what survives power loss. */
  durable = new ByteArray();
  /** Changes since the last sync, in order: what a crash may keep a prefix of. */
  unsynced: FileChange[] = [];
  /**
   * Whether `current` must equal `durable` plus `unsynced`. False once a failed sync dropped changes or a
   * bit flipped on disk only: the pair assertion in `sync` then has nothing to compare.
   */
  cacheMatchesDisk = true;

  change(change: FileChange): void {
    applyChange(this.current, change);
    this.unsynced.push(change);
  }

  /** Writes the dirty changes to disk; changes a failed sync lost were marked clean and stay lost. */
  sync(): void {
    for (const change of this.unsynced) applyChange(this.durable, change);
    this.unsynced = [];
    if (this.cacheMatchesDisk) assert.ok(this.durable.view().equals(this.current.view()), 'sync lost bytes');
  }

  /** A failed sync: each dirty change reached the disk or not, and none of them is dirty any more. */
  failSync(prng: Prng): void {
    for (const change of this.unsynced)
      if (prng.chance(CHANGE_SURVIVES_FAILED_SYNC_PROBABILITY)) applyChange(this.durable, change);
    this.unsynced = [];
    this.cacheMatchesDisk = false;
  }

  /** Power loss: durable bytes plus a seed-chosen prefix of the unsynced changes, the last maybe torn. */
  crash(prng: Prng): void {
    const kept = prng.int(this.unsynced.length + 1);
    for (let i = 0; i < kept; i++) {
      const change = this.unsynced[i];
      const torn = i === kept - 1 && change.kind === 'write' && prng.chance(TORN_WRITE_PROBABILITY);
      if (torn) tearWrite(this.durable, change, prng);
      else applyChange(this.durable, change);
    }
    this.unsynced = [];
    this.current = this.durable.clone();
    this.cacheMatchesDisk = true;
  }
}

/** A write cut by power loss: a byte prefix of it, or its sectors with some missing (old bytes or zeros). */
function tearWrite(target: ByteArray, change: FileChange & { kind: 'write' }, prng: Prng): void {
  const { position, data } = change;
  if (prng.chance(TORN_AS_PREFIX_PROBABILITY)) {
    target.write(position, data.subarray(0, prng.int(data.length + 1)));
    return;
  }
  // The size update made it (journaled metadata), so sectors that did not read as zeros past the old end.
  const end = position + data.length;
  if (target.length < end) target.truncate(end);
  for (let sector = position - (position % SECTOR_BYTES); sector < end; sector += SECTOR_BYTES) {
    if (!prng.chance(TORN_SECTOR_SURVIVES_PROBABILITY)) continue;
    const from = Math.max(sector, position);
    const to = Math.min(sector + SECTOR_BYTES, end);
    target.write(from, data.subarray(from - position, to - position));
  }
}

// ---- namespace --------------------------------------------------------------------------------------------

type NamespaceChange =
  | { kind: 'link'; dir: string; name: string; file: SimFile }
  | { kind: 'unlink'; dir: string; name: string; file: SimFile }
  | { kind: 'rename'; fromDir: string; fromName: string; toDir: string; toName: string; file: SimFile };

interface SimDir {
  current: Map<string, SimFile>;
  durable: Map<string, SimFile>;
}

function dirsTouched(change: NamespaceChange): string[] {
  if (change.kind !== 'rename') return [change.dir];
  return change.fromDir === change.toDir ? [change.fromDir] : [change.fromDir, change.toDir];
}

/**
 * Directory entries, current and durable, and the journal of changes between them. Changes to one directory
 * become durable in order; changes to different directories are ordered only through a rename joining them.
 */
class Namespace {
  private readonly dirs = new Map<string, SimDir>();
  private journal: NamespaceChange[] = [];

  hasDir(dir: string): boolean {
    return this.dirs.has(dir);
  }

  entries(dir: string): Map<string, SimFile> | undefined {
    return this.dirs.get(dir)?.current;
  }

  lookup(dir: string, name: string): SimFile | undefined {
    return this.dirs.get(dir)?.current.get(name);
  }

  lookupDurable(dir: string, name: string): SimFile | undefined {
    return this.dirs.get(dir)?.durable.get(name);
  }

  /** Directories, in creation order (deterministic: iteration order feeds the seed's choices). */
  dirNames(): IterableIterator<string> {
    return this.dirs.keys();
  }

  addDir(dir: string): void {
    this.dirs.set(dir, { current: new Map(), durable: new Map() });
  }

  change(change: NamespaceChange): void {
    this.apply(change, 'current');
    this.journal.push(change);
  }

  /** Makes `dir`'s changes durable, with the earlier changes (in other directories) they depend on. */
  syncDir(dir: string): void {
    const needed = new Set([dir]);
    const committed = new Set<NamespaceChange>();
    for (let i = this.journal.length - 1; i >= 0; i--) {
      const touched = dirsTouched(this.journal[i]);
      if (!touched.some((d) => needed.has(d))) continue;
      committed.add(this.journal[i]);
      for (const d of touched) needed.add(d);
    }
    // Applied in journal order: the durable side must see each directory's changes in the order made.
    for (const change of this.journal) if (committed.has(change)) this.apply(change, 'durable');
    this.journal = this.journal.filter((change) => !committed.has(change));
  }

  /** Power loss: each directory keeps a seed-chosen prefix of its journal, closed under dependencies. */
  crash(prng: Prng): void {
    const cuts = this.chooseCuts(prng);
    const blocked = new Set<string>();
    for (const change of this.journal) {
      const touched = dirsTouched(change);
      const survives = touched.every((d) => !blocked.has(d) && cuts.get(d)! > 0);
      for (const d of touched) cuts.set(d, cuts.get(d)! - 1);
      if (survives) this.apply(change, 'durable');
      else for (const d of touched) blocked.add(d);
    }
    this.journal = [];
    for (const dir of this.dirs.values()) dir.current = new Map(dir.durable);
  }

  /** For each directory with journaled changes: how many of them, from the first, may survive. */
  private chooseCuts(prng: Prng): Map<string, number> {
    const counts = new Map<string, number>();
    for (const change of this.journal)
      for (const d of dirsTouched(change)) counts.set(d, (counts.get(d) ?? 0) + 1);
    const cuts = new Map<string, number>();
    for (const [dir, count] of counts) cuts.set(dir, prng.int(count + 1));
    return cuts;
  }

  private apply(change: NamespaceChange, side: keyof SimDir): void {
    const entries = (dir: string) => this.dirs.get(dir)![side];
    if (change.kind === 'link') {
      entries(change.dir).set(change.name, change.file);
    } else if (change.kind === 'unlink') {
      // Pair assertion: the durable side reflects every earlier change to this directory.
      assert.equal(
        entries(change.dir).get(change.name),
        change.file,
        `unlink of ${change.name} out of order`,
      );
      entries(change.dir).delete(change.name);
    } else {
      assert.equal(entries(change.fromDir).get(change.fromName), change.file, 'rename out of order');
      entries(change.fromDir).delete(change.fromName);
      entries(change.toDir).set(change.toName, change.file);
    }
  }
}

// ---- faults -----------------------------------------------------------------------------------------------

interface ActiveRule extends FaultRule {
  matchingCalls: number;
  fired: boolean;
}

class FaultInjector {
  private rules: ActiveRule[] = [];

  add(rule: FaultRule): void {
    const after = rule.afterMatchingCalls ?? 0;
    assert.ok(Number.isInteger(after) && after >= 0, `afterMatchingCalls must be >= 0, got ${after}`);
    this.rules.push({ ...rule, matchingCalls: 0, fired: false });
  }

  clear(): void {
    this.rules = [];
  }

  /** The code this call fails with, if a rule says so; counts the call against every matching rule. */
  check(op: SimOp, paths: readonly string[]): SimFaultCode | undefined {
    let code: SimFaultCode | undefined;
    for (const rule of this.rules) {
      if (rule.op !== op || (rule.fired && !rule.persistent)) continue;
      const pattern = rule.pathIncludes;
      if (pattern !== undefined && !paths.some((p) => p.includes(pattern))) continue;
      rule.matchingCalls++;
      if (rule.fired || rule.matchingCalls > (rule.afterMatchingCalls ?? 0)) {
        rule.fired = true;
        code ??= rule.error;
      }
    }
    return code;
  }
}

// ---- the disk ---------------------------------------------------------------------------------------------

/**
 * The storage shared by every boot: synchronous, so each operation is one atomic step of the model; the
 * async views (`SimFileSystem`, `SimFileHandle`) add ticks and check that their boot is still the current one.
 */
class SimDisk {
  readonly namespace = new Namespace();
  readonly faults = new FaultInjector();
  readonly stats: SimStats = {
    writes: 0,
    bytesWritten: 0,
    datasyncs: 0,
    syncDirs: 0,
    crashes: 0,
    faultsInjected: 0,
  };
  readonly capacityBytes: number;
  readonly latency: SimLatency;
  /** Incremented by each crash: views and handles of an older boot are dead. */
  boot = 0;
  // One stream per concern, so that, say, enabling latency does not change which writes a crash tears.
  private readonly crashPrng: Prng;
  private readonly faultPrng: Prng;
  private readonly latencyPrng: Prng;
  readonly corruptionPrng: Prng;

  constructor(options: SimFileSystemOptions) {
    this.capacityBytes = options.capacityBytes ?? CAPACITY_BYTES_DEFAULT;
    this.latency = options.latency ?? LATENCY_DEFAULT;
    const { minTicks, maxTicks } = this.latency;
    assert.ok(Number.isInteger(minTicks) && minTicks >= 1, 'latency.minTicks: an integer >= 1');
    assert.ok(Number.isInteger(maxTicks) && maxTicks >= minTicks, 'latency.maxTicks: an integer >= minTicks');
    const root = new Prng(options.seed);
    this.crashPrng = root.fork();
    this.faultPrng = root.fork();
    this.latencyPrng = root.fork();
    this.corruptionPrng = root.fork();
  }

  async delay(): Promise<void> {
    const { minTicks, maxTicks } = this.latency;
    const ticks = minTicks === maxTicks ? minTicks : minTicks + this.latencyPrng.int(maxTicks - minTicks + 1);
    for (let i = 0; i < ticks; i++) await new Promise((resolve) => setImmediate(resolve));
  }

  fault(op: SimOp, ...paths: string[]): void {
    const code = this.faults.check(op, paths);
    if (code === undefined) return;
    this.stats.faultsInjected++;
    throw ioError(code, `injected ${op} fault`, paths[0]);
  }

  crash(): void {
    this.stats.crashes++;
    this.boot++;
    // A reboot starts on healthy hardware; tests inject again if they want the fault to outlive it.
    this.faults.clear();
    this.namespace.crash(this.crashPrng);
    for (const file of this.linkedFiles()) file.crash(this.crashPrng);
  }

  /** Files in the current namespace, in a deterministic order. */
  linkedFiles(): Set<SimFile> {
    const files = new Set<SimFile>();
    for (const dir of this.namespace.dirNames())
      for (const file of this.namespace.entries(dir)!.values()) files.add(file);
    return files;
  }

  write(file: SimFile, filePath: string, data: Buffer, position: number): void {
    try {
      this.fault('write', filePath);
    } catch (error) {
      // A write that fails may have written part of its bytes first, as a short write does.
      const written = this.faultPrng.int(data.length + 1);
      if (written > 0) file.change({ kind: 'write', position, data: data.subarray(0, written) });
      throw error;
    }
    const fitting = this.fittingBytes(file, position, data.length);
    if (fitting < data.length) {
      // The disk fills up: what fits is written, the rest fails, as write(2) then a retried write do.
      if (fitting > 0) file.change({ kind: 'write', position, data: data.subarray(0, fitting) });
      throw ioError('ENOSPC', `disk full (${this.capacityBytes} bytes)`, filePath);
    }
    file.change({ kind: 'write', position, data });
    this.stats.writes++;
    this.stats.bytesWritten += data.length;
  }

  /** How many bytes of a write at `position` fit: growing the file needs free space, overwriting does not. */
  private fittingBytes(file: SimFile, position: number, length: number): number {
    const free = this.capacityBytes - this.usedBytes();
    return Math.max(0, Math.min(length, file.current.length + free - position));
  }

  private usedBytes(): number {
    let total = 0;
    for (const file of this.linkedFiles()) total += file.current.length;
    return total;
  }

  datasync(file: SimFile, filePath: string): void {
    try {
      this.fault('datasync', filePath);
    } catch (error) {
      file.failSync(this.faultPrng);
      throw error;
    }
    file.sync();
    this.stats.datasyncs++;
  }
}

// ---- paths and errors -------------------------------------------------------------------------------------

function splitPath(filePath: string): { dir: string; name: string } {
  const resolved = path.resolve(filePath);
  return { dir: path.dirname(resolved), name: path.basename(resolved) };
}

/** An error shaped like Node's (`code`, `path`), so callers' `ioErrorCode` handling is exercised as is. */
function ioError(code: string, message: string, filePath?: string): Error {
  const where = filePath === undefined ? '' : `, '${filePath}'`;
  return Object.assign(new Error(`${code}: ${message}${where}`), { code, path: filePath });
}

// ---- handles ----------------------------------------------------------------------------------------------

class SimFileHandle implements FileHandle {
  private closed = false;

  constructor(
    private readonly disk: SimDisk,
    private readonly boot: number,
    private readonly filePath: string,
    private readonly file: SimFile,
    private readonly writable: boolean,
    private readonly syncWrites: boolean,
  ) {}

  async write(data: Uint8Array, dataOffset: number, length: number, position: number): Promise<void> {
    assertRange(data.length, dataOffset, length, position);
    await this.enter();
    if (!this.writable) throw ioError('EBADF', 'bad file descriptor (opened read-only)', this.filePath);
    // Copied: the caller may reuse its buffer as soon as the promise resolves.
    const bytes = Buffer.from(data.subarray(dataOffset, dataOffset + length));
    this.disk.write(this.file, this.filePath, bytes, position);
    if (!this.syncWrites) return;
    // O_DSYNC: durable before the call returns, but a crash can still strike between the two.
    await this.enter();
    this.file.sync();
  }

  async read(into: Uint8Array, intoOffset: number, length: number, position: number): Promise<number> {
    assertRange(into.length, intoOffset, length, position);
    await this.enter();
    this.disk.fault('read', this.filePath);
    const content = this.file.current.view();
    const end = Math.min(content.length, position + length);
    if (end <= position) return 0;
    into.set(content.subarray(position, end), intoOffset);
    return end - position;
  }

  async datasync(): Promise<void> {
    await this.enter();
    this.disk.datasync(this.file, this.filePath);
  }

  async truncate(length: number): Promise<void> {
    assert.ok(Number.isInteger(length) && length >= 0, `truncate length must be >= 0, got ${length}`);
    await this.enter();
    // ftruncate(2) on a descriptor not open for writing is EINVAL on Linux.
    if (!this.writable) throw ioError('EINVAL', 'invalid argument (opened read-only)', this.filePath);
    this.disk.fault('truncate', this.filePath);
    this.file.change({ kind: 'truncate', length });
  }

  async size(): Promise<number> {
    await this.enter();
    return this.file.current.length;
  }

  async close(): Promise<void> {
    this.checkBoot();
    // Closing twice is harmless, as with node:fs.
    this.closed = true;
    await this.disk.delay();
  }

  /** Every call takes at least a tick; a crash or close during the wait fails it. */
  private async enter(): Promise<void> {
    this.checkOpen();
    await this.disk.delay();
    this.checkOpen();
  }

  private checkOpen(): void {
    this.checkBoot();
    if (this.closed) throw ioError('EBADF', 'bad file descriptor (closed)', this.filePath);
  }

  private checkBoot(): void {
    if (this.boot !== this.disk.boot)
      throw ioError('EBADF', 'bad file descriptor (opened before a crash)', this.filePath);
  }
}

function assertRange(bufferLength: number, offset: number, length: number, position: number): void {
  assert.ok(Number.isInteger(offset) && offset >= 0, `buffer offset must be >= 0, got ${offset}`);
  assert.ok(Number.isInteger(length) && length >= 0, `length must be >= 0, got ${length}`);
  assert.ok(
    offset + length <= bufferLength,
    `range ${offset}+${length} exceeds the ${bufferLength}-byte buffer`,
  );
  assert.ok(Number.isInteger(position) && position >= 0, `file position must be >= 0, got ${position}`);
}

// ---- the file system --------------------------------------------------------------------------------------

/**
 * A deterministic, in-memory file system that fails the way a disk and its page cache do, for tests and the
 * crash simulation. Everything it decides (which unsynced writes survive a power loss, how the last one tears,
 * how many ticks an operation takes, where a bit flips) comes from the seed, so a failing seed replays exactly.
 *
 * Model
 * - File content: every file has `current` bytes (the page cache: what reads see) and `durable` bytes (the
 *   platter: what survives power loss). `write` and `truncate` change `current` and are remembered, in order,
 *   as unsynced changes; `datasync` (any handle of the file) writes them to `durable`.
 * - Directory entries: create, rename and unlink change the namespace at once and are journaled; `syncDir(d)`
 *   makes every journaled change of `d` durable, plus whatever earlier changes those depend on (a rename
 *   into `d` from `e` carries `e`'s earlier changes with it). Directories themselves (`mkdirp`) are durable
 *   at once: the engine creates them at setup, and losing them would only re-test "no data yet".
 * - `crash()` is power loss and reboot. Each directory keeps a seed-chosen prefix of its journaled changes,
 *   closed under dependencies, so a rename is atomic (the file is under its old or its new name, never both,
 *   never neither) and no directory reflects a change without the earlier changes to it. Each file that is
 *   still linked keeps its durable bytes plus a seed-chosen in-order prefix of its unsynced changes, the
 *   last of which may be torn: a byte prefix of it, or its 512-byte sectors with some missing.
 * - Failed `datasync` (fsyncgate, as Linux does it): each unsynced change independently reached the disk or
 *   not, decided by the seed at the failure. The page cache keeps showing all of them and marks them clean,
 *   so a later successful `datasync`, on any handle, does not write the lost ones again.
 * - Faults: `injectFault` rules (EIO/ENOSPC on the nth matching call, once or for good), a capacity past
 *   which writes fail with ENOSPC after filling the disk, and bit flips in durable bytes. An injected write
 *   fault may still have written a prefix of the bytes, as a short write before the error does.
 * - Every operation resolves after at least one `setImmediate` tick (optionally a seeded number of them), so
 *   callers really run concurrently with their I/O.
 *
 * Decision (differs from a "same instance after the crash" design): `crash()` returns the rebooted disk as a
 * new `SimFileSystem` over the same storage and retires this one. The crashed process usually still has work
 * in flight (a flush loop, a segment roll, a snapshot rename) and keeps calling the file system object it
 * holds; a single instance cannot tell those calls from the rebooted process's, and the crash simulation
 * showed them creating and deleting files on the rebooted disk. A retired view rejects every call with EIO,
 * and every handle opened before the crash rejects with EBADF.
 */
export class SimFileSystem implements FileSystem {
  readonly supportsSyncWrites: boolean;
  // Reassigned only by `crash()`, to build the rebooted view over the same disk.
  private disk: SimDisk;
  private boot: number;

  constructor(options: SimFileSystemOptions) {
    this.supportsSyncWrites = options.syncWrites ?? false;
    this.disk = new SimDisk(options);
    this.boot = this.disk.boot;
  }

  /** Counters over the disk's life, shared by every boot. */
  get stats(): Readonly<SimStats> {
    return this.disk.stats;
  }

  // ---- faults, power loss, corruption ---------------------------------------------------------------------

  injectFault(rule: FaultRule): void {
    this.disk.faults.add(rule);
  }

  clearFaults(): void {
    this.disk.faults.clear();
  }

  /**
   * Power loss and reboot. Returns the rebooted disk; this view rejects every call from now on (EIO), and
   * every handle opened before rejects with EBADF, so the crashed process cannot touch the rebooted disk.
   * Injected faults are cleared. Calls in flight at the crash fail too.
   */
  crash(): SimFileSystem {
    this.checkLive('crash');
    this.disk.crash();
    const rebooted = new SimFileSystem({ seed: 0, syncWrites: this.supportsSyncWrites });
    rebooted.disk = this.disk;
    rebooted.boot = this.disk.boot;
    return rebooted;
  }

  /**
   * Flips one bit of a file's durable bytes (and its cached bytes, so reads see it too), as media decay
   * does. `byteOffset` defaults to a seed-chosen byte; the bit is always seed-chosen.
   */
  flipBit(filePath: string, byteOffset?: number): FlippedBit {
    const file = this.lookup(filePath);
    if (!file || file.durable.length === 0)
      throw new Error(`flipBit: ${filePath} is missing or has no durable bytes`);
    const prng = this.disk.corruptionPrng;
    const offset = byteOffset ?? prng.int(file.durable.length);
    const bit = prng.int(BITS_PER_BYTE);
    file.durable.flipBit(offset, bit);
    if (offset < file.current.length) file.current.flipBit(offset, bit);
    // With unsynced changes on top, the cache no longer equals disk + changes at that byte.
    if (file.unsynced.length > 0 || offset >= file.current.length) file.cacheMatchesDisk = false;
    return { byteOffset: offset, bit };
  }

  /** Flips a bit in a seed-chosen file with durable bytes (among those `filter` accepts); undefined if none. */
  corruptRandomFile(filter: (filePath: string) => boolean = () => true): CorruptedFile | undefined {
    const candidates = this.paths().filter((p) => filter(p) && this.lookup(p)!.durable.length > 0);
    if (candidates.length === 0) return undefined;
    const filePath = this.disk.corruptionPrng.pick(candidates);
    return { path: filePath, ...this.flipBit(filePath) };
  }

  // ---- introspection (for tests: synchronous, and allowed on a retired view) ------------------------------

  /** Every file path in the current namespace, sorted. */
  paths(): string[] {
    const out: string[] = [];
    for (const dir of this.disk.namespace.dirNames())
      for (const name of this.disk.namespace.entries(dir)!.keys()) out.push(path.join(dir, name));
    return out.sort();
  }

  /** What a crash now would start from: the durable bytes of the file durably linked at `filePath`. */
  durableContent(filePath: string): Buffer | undefined {
    const { dir, name } = splitPath(filePath);
    return this.disk.namespace.lookupDurable(dir, name)?.durable.copy();
  }

  // ---- FileSystem -----------------------------------------------------------------------------------------

  async open(filePath: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle> {
    await this.enter('open');
    this.disk.fault('open', filePath);
    const file = mode === 'create' ? this.createFile(filePath) : this.existingFile(filePath);
    const syncWrites = options?.syncWrites === true && this.supportsSyncWrites;
    return new SimFileHandle(this.disk, this.boot, filePath, file, mode !== 'read', syncWrites);
  }

  private createFile(filePath: string): SimFile {
    const { dir, name } = splitPath(filePath);
    const namespace = this.disk.namespace;
    if (!namespace.hasDir(dir)) throw ioError('ENOENT', 'no such file or directory', filePath);
    if (namespace.lookup(dir, name) || namespace.hasDir(path.join(dir, name)))
      throw ioError('EEXIST', 'file already exists', filePath);
    const file = new SimFile();
    namespace.change({ kind: 'link', dir, name, file });
    return file;
  }

  private existingFile(filePath: string): SimFile {
    if (this.disk.namespace.hasDir(path.resolve(filePath)))
      throw ioError('EISDIR', 'illegal operation on a directory', filePath);
    const file = this.lookup(filePath);
    if (!file) throw ioError('ENOENT', 'no such file or directory', filePath);
    return file;
  }

  async list(dir: string): Promise<string[]> {
    await this.enter('list');
    const resolved = path.resolve(dir);
    const names = [...(this.disk.namespace.entries(resolved)?.keys() ?? [])];
    for (const other of this.disk.namespace.dirNames())
      if (other !== resolved && path.dirname(other) === resolved) names.push(path.basename(other));
    return names;
  }

  async mkdirp(dir: string): Promise<void> {
    await this.enter('mkdirp');
    const missing: string[] = [];
    let current = path.resolve(dir);
    while (!this.disk.namespace.hasDir(current)) {
      missing.push(current);
      if (current === path.dirname(current)) break; // the root
      current = path.dirname(current);
    }
    for (const missingDir of missing.reverse()) {
      const { dir: parent, name } = splitPath(missingDir);
      if (this.disk.namespace.lookup(parent, name)) {
        const code = missingDir === path.resolve(dir) ? 'EEXIST' : 'ENOTDIR';
        throw ioError(code, 'a file is in the way', missingDir);
      }
      this.disk.namespace.addDir(missingDir);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await this.enter('rename');
    this.disk.fault('rename', from, to);
    const source = splitPath(from);
    const target = splitPath(to);
    const namespace = this.disk.namespace;
    const file = namespace.lookup(source.dir, source.name);
    if (!file || !namespace.hasDir(target.dir)) throw ioError('ENOENT', 'no such file or directory', from);
    if (namespace.hasDir(path.join(target.dir, target.name)))
      throw ioError('EISDIR', 'illegal operation on a directory', to);
    if (namespace.lookup(target.dir, target.name) === file) return; // POSIX: renaming a file onto itself
    namespace.change({
      kind: 'rename',
      fromDir: source.dir,
      fromName: source.name,
      toDir: target.dir,
      toName: target.name,
      file,
    });
  }

  async unlink(filePath: string): Promise<void> {
    await this.enter('unlink');
    this.disk.fault('unlink', filePath);
    const { dir, name } = splitPath(filePath);
    const namespace = this.disk.namespace;
    if (namespace.hasDir(path.join(dir, name)))
      throw ioError('EISDIR', 'illegal operation on a directory', filePath);
    const file = namespace.lookup(dir, name);
    if (!file) throw ioError('ENOENT', 'no such file or directory', filePath);
    namespace.change({ kind: 'unlink', dir, name, file });
  }

  async syncDir(dir: string): Promise<void> {
    await this.enter('syncDir');
    this.disk.fault('syncDir', dir);
    const resolved = path.resolve(dir);
    if (!this.disk.namespace.hasDir(resolved)) throw ioError('ENOENT', 'no such file or directory', dir);
    this.disk.namespace.syncDir(resolved);
    this.disk.stats.syncDirs++;
  }

  async exists(filePath: string): Promise<boolean> {
    await this.enter('exists');
    return this.lookup(filePath) !== undefined || this.disk.namespace.hasDir(path.resolve(filePath));
  }

  async readFile(filePath: string): Promise<Uint8Array> {
    await this.enter('readFile');
    this.disk.fault('read', filePath);
    return this.existingFile(filePath).current.copy();
  }

  private lookup(filePath: string): SimFile | undefined {
    const { dir, name } = splitPath(filePath);
    return this.disk.namespace.lookup(dir, name);
  }

  /** Every call takes at least a tick; a crash during the wait fails it, as the crashed process is gone. */
  private async enter(what: string): Promise<void> {
    this.checkLive(what);
    await this.disk.delay();
    this.checkLive(what);
  }

  private checkLive(what: string): void {
    if (this.boot !== this.disk.boot)
      throw ioError(
        'EIO',
        `${what}: this view of the disk was retired by a crash; use the one crash() returned`,
      );
  }
}
