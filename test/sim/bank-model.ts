/**
 * The reference model of the bank test definition (src/engine/testing/bank.ts), written independently of the
 * engine: plain code over plain maps, no log, no codecs, no idempotency window class. The crash simulation
 * runs it beside the store to predict what every command must do (record, answer from the window, conflict,
 * be refused), what result it must return, and what state a recovered store must hold.
 */
export type BankCommand =
  | { kind: 'deposit'; id: string; account: string; amount: number }
  | { kind: 'transfer'; id?: string; from: string; to: string; amount: number };

export type BankResult = { balance: number; lsn: number } | { ok: boolean; lsn: number };

/**
 * What the store must do with a command, given what is recorded:
 * - `record`: decide it and append a record at the next LSN;
 * - `duplicate`: its key was recorded with the same content: answer with the recorded result, record nothing;
 * - `conflict`: its key was recorded with different content: reject (`idempotency_conflict`);
 * - `invalid`: `decide` refuses it (a deposit of a non-positive amount): reject, record nothing.
 */
export type Outcome = 'record' | 'duplicate' | 'conflict' | 'invalid';

export interface BankState {
  balances: Map<string, number>;
  transfers: number;
}

/** The command as the store receives it (the same object shape, so the same fingerprint). */
export function commandInput(c: BankCommand): Record<string, unknown> {
  if (c.kind === 'deposit') return { id: c.id, account: c.account, amount: c.amount };
  return c.id === undefined
    ? { from: c.from, to: c.to, amount: c.amount }
    : { id: c.id, from: c.from, to: c.to, amount: c.amount };
}

function sameContent(a: BankCommand, b: BankCommand): boolean {
  return a.kind === b.kind && JSON.stringify(commandInput(a)) === JSON.stringify(commandInput(b));
}

export class BankModel {
  /**
   * @param windowMax keys remembered at most (the store's `idempotency.maxEntries`): recording one more
   * forgets the oldest, after which a retry of it is a new command.
   */
  constructor(readonly windowMax = Number.POSITIVE_INFINITY) {}

  readonly state: BankState = { balances: new Map(), transfers: 0 };
  /** LSN of the last recorded command. */
  lsn = 0;
  /** Every recorded command, index = LSN - 1. */
  readonly recorded: BankCommand[] = [];
  /** Recorded command and result by idempotency key, oldest first (the last `windowMax` keys). */
  readonly byKey = new Map<string, { command: BankCommand; result: BankResult; lsn: number }>();

  /** The model after exactly `commands`, in order (each must be one the store records). */
  static replay(commands: readonly BankCommand[], windowMax = Number.POSITIVE_INFINITY): BankModel {
    const model = new BankModel(windowMax);
    for (const c of commands) {
      const outcome = model.outcome(c);
      if (outcome !== 'record') throw new Error(`model replay: ${JSON.stringify(c)} would be a ${outcome}`);
      model.record(c);
    }
    return model;
  }

  outcome(c: BankCommand): Outcome {
    const key = c.id;
    if (key !== undefined) {
      const seen = this.byKey.get(key);
      if (seen) return sameContent(seen.command, c) ? 'duplicate' : 'conflict';
    }
    if (c.kind === 'deposit' && !(c.amount > 0)) return 'invalid';
    return 'record';
  }

  /** The answer a duplicate gets: the result recorded under its key. */
  recordedResult(c: BankCommand): BankResult {
    return this.byKey.get(c.id!)!.result;
  }

  /** Records `c` at the next LSN and returns the result the store must give. */
  record(c: BankCommand): BankResult {
    const lsn = ++this.lsn;
    const balances = this.state.balances;
    let result: BankResult;
    if (c.kind === 'deposit') {
      const balance = (balances.get(c.account) ?? 0) + c.amount;
      balances.set(c.account, balance);
      result = { balance, lsn };
    } else {
      const available = balances.get(c.from) ?? 0;
      const ok = available >= c.amount;
      if (ok) {
        balances.set(c.from, available - c.amount);
        balances.set(c.to, (balances.get(c.to) ?? 0) + c.amount);
        this.state.transfers++;
      }
      result = { ok, lsn };
    }
    this.recorded.push(c);
    if (c.id !== undefined) {
      this.byKey.set(c.id, { command: c, result, lsn });
      while (this.byKey.size > this.windowMax) this.byKey.delete(this.byKey.keys().next().value!);
    }
    return result;
  }
}
