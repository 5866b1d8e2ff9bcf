/**
 * The reference model of the bank test definition, written independently of the engine: plain code that
 * applies commands in LSN order. The crash simulation compares recovered stores against it.
 */
export type BankCommand =
  | { kind: 'deposit'; id: string; account: string; amount: number }
  | { kind: 'transfer'; from: string; to: string; amount: number };

export interface BankModel {
  balances: Map<string, number>;
  transfers: number;
}

export function applyModel(commands: readonly BankCommand[]): BankModel {
  const model: BankModel = { balances: new Map(), transfers: 0 };
  for (const c of commands) {
    if (c.kind === 'deposit') {
      model.balances.set(c.account, (model.balances.get(c.account) ?? 0) + c.amount);
    } else {
      const from = model.balances.get(c.from) ?? 0;
      if (from >= c.amount) {
        model.balances.set(c.from, from - c.amount);
        model.balances.set(c.to, (model.balances.get(c.to) ?? 0) + c.amount);
        model.transfers++;
      }
    }
  }
  return model;
}
