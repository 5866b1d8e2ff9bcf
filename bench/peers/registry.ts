/**
 * The embedded peers by name, with their benchmark defaults, so the runner, the self-check and the crash
 * child open them the same way.
 */
import type { Merchant, Peer } from '../lib/workload.ts';
import { openLmdbPeer } from './lmdb.ts';
import { openSqlitePeer } from './sqlite.ts';

export const PEER_KINDS = ['sqlite-tx', 'sqlite-batch', 'lmdb', 'lmdb-overlapping'] as const;
export type PeerKind = (typeof PEER_KINDS)[number];

export function isPeerKind(name: string): name is PeerKind {
  return (PEER_KINDS as readonly string[]).includes(name);
}

/** Opens (or reopens: an existing store keeps its state) peer `kind` in `dir`. */
export function openPeer(kind: PeerKind, dir: string, merchants: readonly Merchant[]): Promise<Peer> {
  switch (kind) {
    case 'sqlite-tx':
      return openSqlitePeer(dir, { merchants, mode: 'tx' });
    case 'sqlite-batch':
      return openSqlitePeer(dir, { merchants, mode: 'batch' });
    case 'lmdb':
      return openLmdbPeer(dir, { merchants, sync: 'commit' });
    case 'lmdb-overlapping':
      return openLmdbPeer(dir, { merchants, sync: 'overlapping' });
  }
}
