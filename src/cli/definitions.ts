import { usageError } from './cli-error.ts';

/**
 * Definitions the CLI can name record types with (`--definition`). Loaded on demand, so the log tools
 * never load an application they were not asked about. Ids come from each definition's `commands`: the
 * frame type of a command record is its command id.
 */
type AnyDefinition = import('../engine/definition.ts').StoreDefinition<any, any, any, any>;

const LOADERS: Record<string, () => Promise<AnyDefinition>> = {
  'balance-gate': async () => (await import('../../apps/balance-gate/domain.ts')).balanceGateDefinition,
  bank: async () => (await import('../engine/testing/bank.ts')).bankDefinition,
};

export const DEFINITION_NAMES = Object.keys(LOADERS);

export interface TypeNames {
  definition: string;
  /** The command name of a record type, or undefined if the definition does not define it. */
  nameOf(type: number): string | undefined;
}

export async function loadTypeNames(name: string | undefined): Promise<TypeNames | undefined> {
  if (name === undefined) return undefined;
  const load = LOADERS[name];
  if (!load) {
    throw usageError(`unknown definition '${name}'; known definitions: ${DEFINITION_NAMES.join(', ')}`);
  }
  const definition = await load();
  const names = new Map<number, string>();
  for (const [command, def] of Object.entries(definition.commands as Record<string, { id: number }>))
    names.set(def.id, command);
  return { definition: definition.name, nameOf: (type) => names.get(type) };
}

/** The whole definition (to decode snapshot images), or a usage error naming the known ones. */
export async function loadDefinition(name: string): Promise<AnyDefinition> {
  const load = LOADERS[name];
  if (!load)
    throw usageError(`unknown definition '${name}'; known definitions: ${DEFINITION_NAMES.join(', ')}`);
  return load();
}
