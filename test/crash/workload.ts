/**
 * The kill -9 test's workload: every command is a pure function of its idempotency key, so the parent can
 * rebuild the exact command behind any key the recovered store holds (the child may die before it reports
 * what it sent), and every command has a key, so the recovered idempotency window names the command at
 * every recovered LSN.
 */
import type { BankCommand } from '../sim/bank-model.ts';

const ACCOUNTS = 7;

/** Key of the `i`th command of a round: `<round>-<i>`. */
export function commandKey(round: string, i: number): string {
  return `${round}-${i}`;
}

/** The command a key stands for: about one in four is a transfer (some refused), the rest deposits. */
export function commandFor(key: string): BankCommand {
  const i = Number(key.slice(key.lastIndexOf('-') + 1));
  if (!Number.isSafeInteger(i)) throw new Error(`not a workload key: ${key}`);
  if (i % 4 === 3) {
    return {
      kind: 'transfer',
      id: key,
      from: `acct${i % ACCOUNTS}`,
      to: `acct${(i * 3 + 1) % ACCOUNTS}`,
      amount: 1 + ((i * 13) % 120),
    };
  }
  return { kind: 'deposit', id: key, account: `acct${i % ACCOUNTS}`, amount: 1 + ((i * 37) % 50) };
}

/** Every tenth command of a later round retries one of the previous round (recorded or lost). */
export function retryOf(previousRound: string | undefined, i: number): string | undefined {
  if (previousRound === undefined || i % 10 !== 9) return undefined;
  return commandKey(previousRound, (i * 7919) % 1000);
}
