import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import fc from 'fast-check';
import { AssertionFailure } from '../errors.ts';
import { nativeAddon } from '../native/addon.ts';
import { crc32c } from './crc32c.ts';
import { alignUp, FRAME_HEADER_BYTES } from './format.ts';
import { chainStep, parseFrame, writeFrameHeader } from './frame.ts';
import {
  type GroupSealer,
  groupSealFallbackReason,
  groupSealKind,
  nativeSealer,
  sealGroup,
  sealGroupJs,
} from './group-seal.ts';

const native = nativeAddon();
const sealers: [string, GroupSealer][] = [['js', sealGroupJs]];
if (native.available) {
  sealers.push(['native', nativeSealer(native.addon.sealGroup)]);
  sealers.push(['native table', nativeSealer(native.addon.sealGroupTable)]);
}

/** A group as the writer leaves it before sealing: frames with headers but stale bytes in their CRC fields. */
function unsealedGroup(payloads: Uint8Array[], firstLsn: number, stale: number): Buffer {
  const size = payloads.reduce((n, p) => n + alignUp(FRAME_HEADER_BYTES + p.length), 0);
  const buf = Buffer.alloc(size + 64, stale & 0xff); // room past the end, which sealing must not read
  let offset = 0;
  payloads.forEach((payload, i) => {
    buf.set(payload, offset + FRAME_HEADER_BYTES);
    const end = offset + FRAME_HEADER_BYTES + payload.length;
    writeFrameHeader(buf, offset, end, firstLsn + i, (i * 7) % 0xfffe, 1, 0);
    buf.fill(0, end, offset + alignUp(end - offset)); // the writer zeroes padding
    offset += alignUp(end - offset);
  });
  return buf.subarray(0, size + 64);
}

const groups = fc.record({
  payloads: fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 40 }),
  firstLsn: fc.oneof(
    fc.integer({ min: 1, max: 1000 }),
    fc.integer({ min: 2 ** 32 - 20, max: 2 ** 53 - 100 }),
  ),
  chain: fc.integer({ min: 0, max: 0xffffffff }),
  stale: fc.nat(),
});

test('sealing a group gives every frame the CRC sealFrame would, the chain over them and the group CRC', () => {
  fc.assert(
    fc.property(groups, ({ payloads, firstLsn, chain, stale }) => {
      const end = unsealedGroup(payloads, firstLsn, stale).length - 64;
      for (const [name, seal] of sealers) {
        const buf = unsealedGroup(payloads, firstLsn, stale);
        const sealed = seal(buf, end, firstLsn, chain);
        let expectedChain = chain;
        let offset = 0;
        for (let i = 0; i < payloads.length; i++) {
          const parsed = parseFrame(buf, offset, end);
          assert.ok(parsed.ok, `${name}: frame ${i} does not verify: ${!parsed.ok && parsed.reason}`);
          assert.equal(parsed.frame.lsn, firstLsn + i);
          expectedChain = chainStep(expectedChain, parsed.frame.crc);
          offset = parsed.frame.next;
        }
        assert.deepEqual(
          sealed,
          { frames: payloads.length, chain: expectedChain, groupCrc: crc32c(buf, 0, end) },
          name,
        );
        assert.ok(
          buf.subarray(end).every((b) => b === (stale & 0xff)),
          `${name} wrote past the group`,
        );
      }
    }),
    { numRuns: 300 },
  );
});

test('the addon (with the CPU instruction and with the table) and the JS seal a group into the same bytes', (t) => {
  if (!native.available) return t.skip(`no addon: ${native.reason}`);
  const [, js] = sealers[0];
  fc.assert(
    fc.property(groups, ({ payloads, firstLsn, chain, stale }) => {
      const b = unsealedGroup(payloads, firstLsn, stale);
      const end = b.length - 64;
      const expected = js(b, end, firstLsn, chain);
      for (const [name, seal] of sealers.slice(1)) {
        const a = unsealedGroup(payloads, firstLsn, stale);
        assert.deepEqual(seal(a, end, firstLsn, chain), expected, name);
        assert.ok(a.equals(b), name);
      }
    }),
    { numRuns: 300 },
  );
});

test('a group that is not a run of whole frames with consecutive LSNs is refused, by either sealer', () => {
  const payloads = [Buffer.from('first record'), Buffer.from('second, longer record'), Buffer.alloc(3)];
  const whole = (buf: Buffer) => buf.length - 64;
  /** Each damages an unsealed group and says where the group ends. */
  const cases: [string, (buf: Buffer) => number, RegExp][] = [
    [
      'an LSN skipped',
      (buf) => {
        buf.writeUInt32LE(9, alignUp(FRAME_HEADER_BYTES + 12) + 8);
        return whole(buf);
      },
      /consecutive/,
    ],
    ['cut inside the last frame', (buf) => whole(buf) - 3, /malformed/],
    ['cut inside a frame header', () => 10, /malformed/],
    ...(
      [
        ['a zero length', 0],
        ['a length shorter than a header', 16],
        ['a length past the end', 0x7fffffff],
      ] as const
    ).map(([what, length]): [string, (buf: Buffer) => number, RegExp] => [
      what,
      (buf) => {
        buf.writeUInt32LE(length, 0);
        return whole(buf);
      },
      /malformed/,
    ]),
  ];
  for (const [name, seal] of sealers) {
    for (const [what, damage, message] of cases) {
      const buf = unsealedGroup(payloads, 5, 0);
      const end = damage(buf);
      assert.throws(
        () => seal(buf, end, 5, 0),
        (e: Error) => e instanceof AssertionFailure && message.test(e.message),
        `${name}: ${what}`,
      );
    }
    assert.deepEqual(
      seal(Buffer.alloc(8), 0, 1, 77),
      { frames: 0, chain: 77, groupCrc: 0 },
      `${name}: empty`,
    );
  }
});

test('the addon refuses arguments of the wrong kinds with a TypeError or RangeError, changing nothing', (t) => {
  if (!native.available) return t.skip(`no addon: ${native.reason}`);
  const { sealGroup: raw } = native.addon;
  const buf = unsealedGroup([Buffer.from('x')], 1, 0);
  const before = Buffer.from(buf);
  const out = new Uint32Array(2);
  const call = (...args: unknown[]) => (raw as (...a: unknown[]) => number)(...args);
  assert.throws(() => call('not bytes', 8, 1, 0, out), TypeError);
  assert.throws(() => call(buf, 8, 1, 0, new Uint8Array(8)), TypeError);
  assert.throws(() => call(buf, 8, 1, 0, new Uint32Array(1)), TypeError);
  assert.throws(() => call(buf, buf.length + 1, 1, 0, out), RangeError);
  assert.throws(() => call(buf, -1, 1, 0, out), RangeError);
  assert.throws(() => call(buf, 8, 2 ** 53, 0, out), RangeError);
  assert.ok(buf.equals(before));
});

test('the writer uses the addon where it loads, on this CPU its crc32 instruction; ENGRAM_NATIVE_SEAL=off forces JS', () => {
  const sse42 =
    process.arch === 'x64' &&
    /\bsse4_2\b/.test(spawnSync('cat', ['/proc/cpuinfo'], { encoding: 'utf8' }).stdout);
  assert.equal(groupSealKind(), native.available ? (sse42 ? 'native sse4.2' : 'native table') : 'js');
  assert.equal(sealGroup === sealGroupJs, !native.available);
  assert.equal(groupSealFallbackReason(), native.available ? undefined : native.reason);
  const script = `import { groupSealFallbackReason, groupSealKind, sealGroup, sealGroupJs } from ${JSON.stringify(new URL('./group-seal.ts', import.meta.url).href)};
console.log(JSON.stringify({ kind: groupSealKind(), js: sealGroup === sealGroupJs, why: groupSealFallbackReason() }));`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, ENGRAM_NATIVE_SEAL: 'off' },
    encoding: 'utf8',
  });
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), {
    kind: 'js',
    js: true,
    why: 'turned off by ENGRAM_NATIVE_SEAL=off',
  });
});
