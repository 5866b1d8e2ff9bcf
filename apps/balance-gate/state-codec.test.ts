import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashState } from '../../src/engine/state-hash.ts';
import { BinReader, BinWriter } from '../../src/util/bin.ts';
import { emptyGateState, type GateState, Status } from './domain.ts';
import { CHUNK_SLOTS } from './reservation-table.ts';
import { gateStateCodec } from './state-codec.ts';

function populated(holds: number): GateState {
  const state = emptyGateState();
  for (let i = 0; i < 3; i++) {
    const m = {
      id: `m${i}`,
      index: i,
      credited: 1e12,
      available: 1e12,
      held: 0,
      captured: 0,
      nextSequence: 1,
    };
    state.merchants.set(m.id, m);
    state.merchantList.push(m);
  }
  for (let i = 0; i < holds; i++) {
    const m = state.merchantList[i % 3];
    m.available -= 5;
    m.held += 5;
    const status = i % 11 === 0 ? Status.Rejected : Status.Held;
    state.reservations.add(
      `hold-${i}-${'x'.repeat(i % 9)}`,
      m,
      5,
      status,
      i,
      i % 7 === 0 ? 1e12 + i : 0,
      0,
      i + 1,
    );
  }
  return state;
}

/** Encodes, then decodes from a copy whose payload starts `shift` bytes into its buffer. */
function roundTrip(state: GateState, shift: number): GateState {
  const w = new BinWriter(1024);
  gateStateCodec.encode(state, w);
  const copy = Buffer.alloc(w.pos + shift);
  w.buf.copy(copy, shift, 0, w.pos);
  return gateStateCodec.decode(new BinReader(copy.subarray(shift)), 1);
}

test('the state round-trips through its snapshot encoding, zero-copy or not, and keeps growing afterwards', () => {
  const holds = CHUNK_SLOTS * 2 + 777; // two full chunks (views when aligned) and a partial one (a copy)
  const state = populated(holds);
  const expected = hashState(state);
  for (const shift of [0, 3]) {
    const loaded = roundTrip(state, shift);
    assert.equal(hashState(loaded), expected, `payload shifted by ${shift}`);
    assert.equal(loaded.reservations.get('hold-70000-xxxxxxx')?.sequence, 70000);
    assert.equal(loaded.reservations.get(`hold-${holds}`), undefined);
    // New holds go into the copied partial chunk and then new ones, never into the views.
    for (let i = holds; i < holds + CHUNK_SLOTS; i++) {
      loaded.reservations.add(`new-${i}`, loaded.merchantList[0], 1, Status.Held, i, 0, 0, i + 1);
    }
    const again = roundTrip(loaded, shift);
    assert.equal(hashState(again), hashState(loaded));
    assert.equal(again.reservations.size, holds + CHUNK_SLOTS);
    assert.equal(again.reservations.get('hold-0-')?.status, Status.Rejected);
    assert.equal(again.reservations.get(`new-${holds + 5}`)?.sequence, holds + 5);
  }
});

test('a snapshot of another state layout is refused with the reason', () => {
  const w = new BinWriter(64);
  gateStateCodec.encode(populated(1), w);
  w.buf[0] = 2;
  assert.throws(
    () => gateStateCodec.decode(new BinReader(w.buf.subarray(0, w.pos)), 1),
    /layout 2 is not supported/,
  );
});

test('a paced decode reports its work every few thousand holds and yields the same state', () => {
  const holds = 50_000;
  const state = populated(holds);
  const w = new BinWriter(1024);
  gateStateCodec.encode(state, w);
  const reported: number[] = [];
  const loaded = gateStateCodec.decode(new BinReader(w.buf.subarray(0, w.pos)), 1, {
    pace: (units) => reported.push(units),
  });
  assert.equal(hashState(loaded), hashState(state));
  // The id index is rebuilt in three passes over the keys (hash, bucket, insert), each paced every 4,096.
  assert.equal(reported.length, 3 * Math.floor(holds / 4096));
  assert.ok(reported.every((units) => units > 0));
});
