/**
 * The checksums of one group commit, computed once when the group is handed to the disk instead of record
 * by record as each is sealed:
 * - each frame's CRC-32C (of its bytes after the CRC field), written into the frame's header;
 * - the chain: `chainStep` folded over those CRCs, from the previous group's chain;
 * - the group CRC: CRC-32C of every byte of the group (frames and their padding), which the commit marker
 *   carries.
 *
 * The same bytes either way: only when they are computed moved. The addon (native/log-seal.c) does it in one
 * call with the CPU's crc32 instruction; without it the JS below does. Checksumming in JS as each record was
 * sealed took 8-9% of the main thread at saturation.
 */
import { AssertionFailure } from '../errors.ts';
import { type NativeSealGroup, nativeAddon } from '../native/addon.ts';
import { readU64 } from '../util/bin.ts';
import { crc32c } from './crc32c.ts';
import { alignUp, FRAME_BYTES_MAX, FRAME_HEADER_BYTES } from './format.ts';
import { chainStep } from './frame.ts';

export interface GroupSeal {
  frames: number;
  chain: number;
  groupCrc: number;
}

export type GroupSealer = (buf: Buffer, end: number, firstLsn: number, chain: number) => GroupSeal;

/**
 * Seals the frames in `buf[0, end)`, which must be whole frames (each 8-byte aligned, its CRC field not
 * yet set) with consecutive LSNs from `firstLsn`. Returns how many frames it sealed, the new chain and the
 * group CRC. Throws an AssertionFailure, and the group must not be written, if the bytes are not such
 * frames.
 */
export const sealGroup: GroupSealer = pickSealer();

/** Why groups are sealed in JS here, or undefined when the addon seals them. */
export function groupSealFallbackReason(): string | undefined {
  if (process.env.ENGRAM_NATIVE_SEAL === 'off') return 'turned off by ENGRAM_NATIVE_SEAL=off';
  const native = nativeAddon();
  return native.available ? undefined : native.reason;
}

/** Which code seals groups in this process: the addon (and which checksum it runs), or JS. */
export function groupSealKind(): 'native sse4.2' | 'native table' | 'js' {
  const native = nativeAddon();
  if (groupSealFallbackReason() !== undefined || !native.available) return 'js';
  return native.addon.sealKind() === 'sse4.2' ? 'native sse4.2' : 'native table';
}

function pickSealer(): GroupSealer {
  const native = nativeAddon();
  if (groupSealFallbackReason() !== undefined || !native.available) return sealGroupJs;
  return nativeSealer(native.addon.sealGroup);
}

/** The addon's sealGroup, with its error codes turned into the JS sealer's failures. */
export function nativeSealer(seal: NativeSealGroup): GroupSealer {
  const out = new Uint32Array(2);
  return (buf, end, firstLsn, chain) => {
    const frames = seal(buf, end, firstLsn, chain, out);
    if (frames === -1) throw new AssertionFailure('a frame in the group is malformed');
    if (frames === -2) throw new AssertionFailure('LSNs in a group must be consecutive');
    return { frames, chain: out[0], groupCrc: out[1] };
  };
}

export function sealGroupJs(buf: Buffer, end: number, firstLsn: number, chain: number): GroupSeal {
  let offset = 0;
  let lsn = firstLsn;
  for (; offset < end; lsn++) {
    const length = end - offset >= FRAME_HEADER_BYTES ? buf.readUInt32LE(offset) : 0;
    if (length < FRAME_HEADER_BYTES || length > FRAME_BYTES_MAX || length > end - offset)
      throw new AssertionFailure('a frame in the group is malformed');
    if (readU64(buf, offset + 8) !== lsn) throw new AssertionFailure('LSNs in a group must be consecutive');
    const crc = crc32c(buf, offset + 8, offset + length);
    buf.writeUInt32LE(crc, offset + 4);
    chain = chainStep(chain, crc);
    offset += alignUp(length);
  }
  if (offset !== end) throw new AssertionFailure('a frame in the group is malformed');
  return { frames: lsn - firstLsn, chain, groupCrc: crc32c(buf, 0, end) };
}
