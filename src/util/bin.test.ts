import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BinWriter, PieceWriter } from './bin.ts';

type Op =
  | { kind: 'u8' | 'u32' | 'varuint'; value: number }
  | { kind: 'f64'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'raw'; value: Uint8Array }
  | { kind: 'padTo'; value: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('u8' as const), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('u32' as const), value: fc.nat() }),
  fc.record({ kind: fc.constant('varuint' as const), value: fc.nat() }),
  fc.record({ kind: fc.constant('f64' as const), value: fc.double() }),
  fc.record({ kind: fc.constant('string' as const), value: fc.string({ maxLength: 40 }) }),
  fc.record({ kind: fc.constant('raw' as const), value: fc.uint8Array({ maxLength: 100 }) }),
  fc.record({ kind: fc.constant('padTo' as const), value: fc.constantFrom(2, 4, 8) }),
);

function apply(w: BinWriter, o: Op): void {
  if (o.kind === 'string') w.string(o.value);
  else if (o.kind === 'raw') w.raw(o.value);
  else if (o.kind === 'f64') w.f64(o.value);
  else w[o.kind](o.value);
}

test('a PieceWriter writes the same bytes as a BinWriter, large raw values by reference, padding counted from the start', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const whole = new BinWriter(8);
      // Tiny sizes, so growth and references happen in every run.
      const pieces = new PieceWriter(8, 16);
      for (const o of ops) {
        apply(whole, o);
        apply(pieces, o);
        assert.equal(pieces.length, whole.length);
      }
      const out = pieces.pieces();
      assert.ok(Buffer.concat(out).equals(whole.buf.subarray(0, whole.pos)));
      for (const o of ops) {
        if (o.kind === 'raw' && o.value.length >= 16)
          assert.ok(out.includes(o.value), 'referenced, not copied');
      }
    }),
    { numRuns: 500 },
  );
});

test('pieces handed out stay valid while the writer grows, and reset starts over', () => {
  const w = new PieceWriter(4, 1024);
  w.u32(1);
  const first = w.pieces();
  for (let i = 0; i < 1000; i++) w.u32(i);
  assert.deepEqual([...first[0]], [1, 0, 0, 0]);
  assert.equal(w.length, 4 + 4000);
  w.reset();
  assert.equal(w.length, 0);
  assert.deepEqual(w.pieces(), []);
  w.u32(0xffffffff);
  assert.deepEqual([...first[0]], [1, 0, 0, 0], 'a write after reset leaves earlier pieces alone');
});
