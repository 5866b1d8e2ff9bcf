import type { Codec } from './codec.ts';

/**
 * How an application describes its state machine to Engram.
 *
 * Contract (read before writing one):
 * - `decide(state, command, ctx)` is pure: it reads state (never mutates it), and returns the events that
 *   record the decision plus the result the caller gets. Time and randomness come only from `ctx`, because
 *   `decide` runs once, live; what it decided is logged as events, and replay never calls it again.
 *   Throw `CommandRejected` for a command that must not be recorded (an illegal transition).
 * - `apply(state, data, meta)` mutates state for one event. It must be deterministic and must not fail for
 *   an event `decide` produced: replay and replicas call it with exactly the logged events.
 * - Ids are numeric and stable forever (they are in the log); bump `version` when a payload's encoding
 *   changes and keep decoding the old versions.
 */
export interface ApplyMeta {
  lsn: number;
  /** The record's timestamp (ms since the epoch), identical on replay. */
  nowMs: number;
}

export interface EventDef<S, D> {
  id: number;
  version?: number;
  codec?: Codec<D>;
  apply(state: S, data: D, meta: ApplyMeta): void;
}

export interface DecideContext<I> {
  /** The LSN this command's record gets if it is recorded. */
  readonly lsn: number;
  /** Wall-clock time of the decision (ms), recorded in the log; never decreases. */
  readonly nowMs: number;
  /** Deterministic random number in [0, 1), seeded from the record. */
  random(): number;
  /** The store's secondary indexes (read only). */
  readonly indexes: I;
}

/**
 * What `decide` returns. The store encodes and applies the events before `decide` runs again and keeps
 * neither the decision nor its events (only `result`, which it hands to the caller and may keep for
 * retries): a hot command may return the same decision and event objects every time, refilled.
 */
export interface Decision<Ev, R> {
  events: Ev[];
  result: R;
  /**
   * Answer without recording anything: `decide` recognised the command as already decided (a retry the
   * state itself remembers) and `result` is the recorded answer. The caller still waits until what the
   * answer reflects (everything applied so far) reached the ack point, like a read. `events` must be empty.
   */
  unrecorded?: boolean;
}

export interface CommandDef<S, Ev, C, R, I = unknown> {
  id: number;
  version?: number;
  resultCodec?: Codec<R>;
  /** Idempotency key: a retry with the same key gets the recorded result instead of a second decision. */
  key?(command: C): string | undefined;
  /** Identity of the command's content; the same key with a different fingerprint is a conflict. */
  fingerprint?(command: C): string;
  decide(state: S, command: C, ctx: DecideContext<I>): Decision<Ev, R>;
}

/** Secondary indexes: derived from state, maintained on apply, never logged, rebuilt after a snapshot load. */
export interface IndexDef<S, Ev, I> {
  build(state: S): I;
  /** Called after each event's apply. `event` is only valid during the call (replay reuses it): keep its data, not it. */
  onEvent(index: I, event: Ev, state: S, meta: ApplyMeta): void;
}

export type AnyEventDefs<S> = Record<string, EventDef<S, any>>;
export type EventData<D> = D extends EventDef<any, infer X> ? X : never;
export type EventOf<E> = { [K in keyof E & string]: { type: K; data: EventData<E[K]> } }[keyof E & string];

export type CommandInput<D> = D extends { decide(state: any, command: infer C, ctx: any): any } ? C : never;
export type CommandResult<D> = D extends {
  decide(state: any, command: any, ctx: any): Decision<any, infer R>;
}
  ? R
  : never;

export interface StoreDefinition<S, E extends AnyEventDefs<S>, C, I> {
  name: string;
  initialState(): S;
  events: E;
  commands: C;
  indexes?: IndexDef<S, EventOf<E>, I>;
  /** Snapshot encoding of the state; defaults to msgpack of the whole state. */
  stateCodec?: Codec<S>;
}

/** Fixes the state type, then infers event payload types from each `apply`'s annotation. */
export function defineEvents<S>() {
  return <E extends AnyEventDefs<S>>(events: E): E => events;
}

/** Fixes state, events and indexes, then infers each command's input and result from its `decide`. */
export function defineCommands<S, E extends AnyEventDefs<S>, I = undefined>() {
  return <C extends Record<string, CommandDef<S, EventOf<E>, any, any, I>>>(commands: C): C => commands;
}

export function defineStore<
  S,
  E extends AnyEventDefs<S>,
  C extends Record<string, CommandDef<S, EventOf<E>, any, any, I>>,
  I = undefined,
>(definition: StoreDefinition<S, E, C, I>): StoreDefinition<S, E, C, I> {
  return definition;
}

/** Thrown by `decide` for a command that must not be recorded; the caller gets it with its code. */
export class CommandRejected extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'CommandRejected';
  }
}
