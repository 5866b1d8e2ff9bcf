/**
 * What a long load calls between blocks of work, with how much it did (in about microseconds), so that a
 * thread nobody waits for keeps to a share of the CPU (`ReplayPacer.tick`). It may block the thread.
 */
export type Pace = (workUs: number) => void;
