/** Engram's public API. */

export { KeyIndex } from './collections/key-index.ts';
export type { AckPoint } from './engine/ack-point.ts';
export { type Codec, emptyCodec, msgpackCodec } from './engine/codec.ts';
export {
  type ApplyMeta,
  type CommandDef,
  CommandRejected,
  type DecideContext,
  type Decision,
  defineCommands,
  defineEvents,
  defineStore,
  type EventDef,
  type IndexDef,
  type StoreDefinition,
} from './engine/definition.ts';
export { hashState } from './engine/state-hash.ts';
export {
  type BatchItemResult,
  type BatchSink,
  type CommandOutcome,
  type ExecuteOptions,
  type RecoveryReport,
  Store,
  type StoreObserver,
  type StoreOptions,
} from './engine/store.ts';
export { EngramError, OverloadedError } from './errors.ts';
export type { FlushPolicy } from './log/flush-policy.ts';
export type { FileHandle, FileSystem } from './storage/file-system.ts';
export { NodeFileSystem } from './storage/node-file-system.ts';
