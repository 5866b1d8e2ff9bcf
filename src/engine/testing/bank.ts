import { CommandRejected, defineCommands, defineEvents, defineStore } from '../definition.ts';

/** A small bank used by engine tests and the crash simulation: accounts, transfers, idempotent deposits. */
export interface BankState {
  balances: Map<string, number>;
  transfers: number;
}

const events = defineEvents<BankState>()({
  deposited: {
    id: 1,
    apply(state, e: { account: string; amount: number }) {
      state.balances.set(e.account, (state.balances.get(e.account) ?? 0) + e.amount);
    },
  },
  transferred: {
    id: 2,
    apply(state, e: { from: string; to: string; amount: number }) {
      const from = state.balances.get(e.from) ?? 0;
      if (from < e.amount) throw new Error(`balance of ${e.from} would go negative`);
      state.balances.set(e.from, from - e.amount);
      state.balances.set(e.to, (state.balances.get(e.to) ?? 0) + e.amount);
      state.transfers++;
    },
  },
});

export interface BankIndexes {
  /** Accounts with a zero balance: maintained on apply, never logged. */
  empty: Set<string>;
}

const commands = defineCommands<BankState, typeof events, BankIndexes>()({
  deposit: {
    id: 1,
    key: (c: { id: string; account: string; amount: number }) => c.id,
    decide(state, c: { id: string; account: string; amount: number }, ctx) {
      if (!(c.amount > 0)) throw new CommandRejected('invalid_amount', 'amount must be positive');
      return {
        events: [{ type: 'deposited', data: { account: c.account, amount: c.amount } }],
        result: { balance: (state.balances.get(c.account) ?? 0) + c.amount, lsn: ctx.lsn },
      };
    },
  },
  transfer: {
    id: 2,
    key: (c: { id?: string; from: string; to: string; amount: number }) => c.id,
    decide(state, c: { id?: string; from: string; to: string; amount: number }, ctx) {
      const available = state.balances.get(c.from) ?? 0;
      if (available < c.amount) return { events: [], result: { ok: false as const, lsn: ctx.lsn } };
      return {
        events: [{ type: 'transferred', data: { from: c.from, to: c.to, amount: c.amount } }],
        result: { ok: true as const, lsn: ctx.lsn },
      };
    },
  },
});

export const bankDefinition = defineStore({
  name: 'bank',
  initialState: (): BankState => ({ balances: new Map(), transfers: 0 }),
  events,
  commands,
  indexes: {
    build(state: BankState): BankIndexes {
      const empty = new Set<string>();
      for (const [account, balance] of state.balances) if (balance === 0) empty.add(account);
      return { empty };
    },
    onEvent(index, event, state) {
      const touched = event.type === 'deposited' ? [event.data.account] : [event.data.from, event.data.to];
      for (const account of touched) {
        if (state.balances.get(account) === 0) index.empty.add(account);
        else index.empty.delete(account);
      }
    },
  },
});

/** What the deposit helper needs of a store (structural: this module is also a worker's definition). */
interface DepositTarget {
  execute(command: 'deposit', input: { id: string; account: string; amount: number }): Promise<unknown>;
  sync(): Promise<unknown>;
}

/** Deposits `d<from>`..`d<from + count - 1>` over seven accounts, all in flight at once, then syncs. */
export async function deposits(store: DepositTarget, from: number, count: number): Promise<void> {
  const pending = [];
  for (let i = from; i < from + count; i++) {
    pending.push(store.execute('deposit', { id: `d${i}`, account: `acct${i % 7}`, amount: 1 + (i % 13) }));
  }
  await Promise.all(pending);
  await store.sync();
}
