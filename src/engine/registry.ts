import { invalidArgument } from '../errors.ts';
import { RESERVED_TYPE_MIN } from '../log/format.ts';
import { type Codec, msgpackCodec } from './codec.ts';
import type { AnyEventDefs, CommandDef, StoreDefinition } from './definition.ts';

export interface CompiledEvent {
  name: string;
  id: number;
  version: number;
  codec: Codec<any>;
  apply: (state: any, data: any, meta: any) => void;
}

export interface CompiledCommand {
  name: string;
  id: number;
  version: number;
  resultCodec: Codec<any>;
  def: CommandDef<any, any, any, any, any>;
}

/** Lookup tables built once from a definition, checked for the mistakes that would corrupt a log. */
export interface Registry {
  eventsByName: Map<string, CompiledEvent>;
  eventsById: Map<number, CompiledEvent>;
  commandsByName: Map<string, CompiledCommand>;
  commandsById: Map<number, CompiledCommand>;
}

export function compileDefinition(definition: StoreDefinition<any, AnyEventDefs<any>, any, any>): Registry {
  const registry: Registry = {
    eventsByName: new Map(),
    eventsById: new Map(),
    commandsByName: new Map(),
    commandsById: new Map(),
  };
  for (const [name, def] of Object.entries(definition.events)) {
    checkId(`event '${name}'`, def.id, 0xffff);
    if (registry.eventsById.has(def.id)) {
      throw invalidArgument(
        `event '${name}' reuses id ${def.id} of '${registry.eventsById.get(def.id)!.name}'`,
      );
    }
    const compiled = {
      name,
      id: def.id,
      version: def.version ?? 1,
      codec: def.codec ?? msgpackCodec,
      apply: def.apply,
    };
    registry.eventsByName.set(name, compiled);
    registry.eventsById.set(def.id, compiled);
  }
  for (const [name, def] of Object.entries(
    definition.commands as Record<string, CommandDef<any, any, any, any>>,
  )) {
    checkId(`command '${name}'`, def.id, RESERVED_TYPE_MIN - 1);
    if (registry.commandsById.has(def.id)) {
      throw invalidArgument(
        `command '${name}' reuses id ${def.id} of '${registry.commandsById.get(def.id)!.name}'`,
      );
    }
    const compiled = {
      name,
      id: def.id,
      version: def.version ?? 1,
      resultCodec: def.resultCodec ?? msgpackCodec,
      def,
    };
    registry.commandsByName.set(name, compiled);
    registry.commandsById.set(def.id, compiled);
  }
  return registry;
}

function checkId(what: string, id: number, max: number): void {
  if (!Number.isInteger(id) || id < 1 || id > max) {
    throw invalidArgument(
      `${what} has id ${id}; ids must be integers in 1..${max} and never change once used`,
    );
  }
}
