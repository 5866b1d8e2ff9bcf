/**
 * engram's Node-API addon (`native/*.c`), which `npm install` builds into build/engram-native.node
 * (scripts/build-native.mjs). Everything in it has a JS fallback: without a C compiler at install time the
 * addon is missing, and Engram is slower (snapshots read instead of mapped, log groups checksummed in JS),
 * never different.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Seals one group commit's frames in `buf[0, end)` (native/log-seal.c; see src/log/group-seal.ts): the
 * frame count, or -1 (malformed frame) / -2 (LSN out of sequence); the chain and group CRC go to `out`.
 */
export type NativeSealGroup = (
  buf: Uint8Array,
  end: number,
  firstLsn: number,
  chain: number,
  out: Uint32Array,
) => number;

export interface NativeAddon {
  /** A private, copy-on-write mapping of the whole file (native/file-mapping.c). */
  map(path: string): ArrayBuffer;
  sealGroup: NativeSealGroup;
  /** sealGroup with the table, whatever the CPU (for tests: what a CPU without SSE4.2 runs). */
  sealGroupTable: NativeSealGroup;
  /** Which checksum code sealGroup runs: the CPU's crc32 instruction or a table. */
  sealKind(): 'sse4.2' | 'table';
}

export const NATIVE_ADDON = fileURLToPath(new URL('../../build/engram-native.node', import.meta.url));

export type NativeStatus = { available: true; addon: NativeAddon } | { available: false; reason: string };

let status: NativeStatus | undefined;

function load(): NativeStatus {
  if (!existsSync(NATIVE_ADDON)) {
    return {
      available: false,
      reason: `${NATIVE_ADDON} is not built (npm install builds it when a C compiler is installed; then run: npm run build:native)`,
    };
  }
  try {
    return { available: true, addon: createRequire(import.meta.url)(NATIVE_ADDON) as NativeAddon };
  } catch (error) {
    return { available: false, reason: `${NATIVE_ADDON} does not load: ${(error as Error).message}` };
  }
}

/** The addon if this process can load it, else why not. Loaded once. */
export function nativeAddon(): NativeStatus {
  status ??= load();
  return status;
}
