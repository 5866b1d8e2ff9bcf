/**
 * JSON written straight into bytes, for response bodies too large to build as a string first. A batch of
 * 8190 reservation answers is 1.8 MB: `JSON.stringify` walks every object generically, turns each large
 * number into a string through the shortest-double algorithm, and the string is then measured
 * (`Buffer.byteLength`) and encoded to UTF-8 once more by the socket write. Here fixed parts are copied from
 * pre-encoded bytes, plain ASCII strings byte by byte and safe integers digit by digit; anything else takes
 * `JSON.stringify`'s path, so the bytes always equal `Buffer.from(JSON.stringify(value))`.
 *
 * The buffer is handed over by `finish()` and never reused: a socket may still be sending it.
 */
import { BinWriter } from './bin.ts';

export class JsonBytes {
  /** The buffer and its growth are BinWriter's; this class only knows JSON. */
  private out: BinWriter;

  constructor(sizeHint = 4096) {
    this.out = new BinWriter(Math.max(64, sizeHint));
  }

  /** Pre-encodes a fixed fragment (keys, punctuation) for `raw`. */
  static fragment(text: string): Uint8Array {
    return Buffer.from(text, 'utf8');
  }

  /** Bytes that already are JSON (a fragment). */
  raw(bytes: Uint8Array): void {
    const out = this.out;
    const n = bytes.length;
    out.ensure(n);
    const b = out.buf;
    let o = out.pos;
    // Fragments are a few bytes: a loop beats the call into `set` (BinWriter.raw) at that size.
    for (let i = 0; i < n; i++) b[o++] = bytes[i];
    out.pos = o;
  }

  byte(code: number): void {
    this.out.u8(code);
  }

  /** A JSON string with its quotes. */
  string(value: string): void {
    const out = this.out;
    const n = value.length;
    out.ensure(n + 2);
    const b = out.buf;
    let o = out.pos;
    b[o++] = QUOTE;
    for (let i = 0; i < n; i++) {
      const c = value.charCodeAt(i);
      // Control characters, the quote and the backslash need escapes; beyond ASCII needs UTF-8.
      if (c < 0x20 || c === QUOTE || c === BACKSLASH || c > 0x7e) {
        this.text(JSON.stringify(value));
        return;
      }
      b[o++] = c;
    }
    b[o++] = QUOTE;
    out.pos = o;
  }

  /** A JSON number: non-negative safe integers digit by digit, anything else as `JSON.stringify` writes it. */
  number(value: number): void {
    // -0 passes too: its digit, like JSON.stringify's, is "0".
    if (!(value >= 0 && value <= Number.MAX_SAFE_INTEGER && Math.floor(value) === value)) {
      this.text(Number.isFinite(value) ? `${value}` : 'null');
      return;
    }
    let digits = 1;
    for (let p = 10; p <= value; p *= 10) digits++;
    const out = this.out;
    out.ensure(digits);
    const b = out.buf;
    let o = out.pos + digits;
    let x = value;
    // Float division above 32 bits, then integer division once the rest fits in a uint32.
    while (x > 0xffffffff) {
      const q = Math.floor(x / 10);
      b[--o] = ZERO + (x - q * 10);
      x = q;
    }
    let y = x >>> 0;
    while (y >= 10) {
      const q = (y / 10) >>> 0;
      b[--o] = ZERO + (y - q * 10);
      y = q;
    }
    b[--o] = ZERO + y;
    out.pos += digits;
  }

  /** The bytes written, as a view of a buffer this writer no longer touches. */
  finish(): Buffer {
    const bytes = this.out.buf.subarray(0, this.out.pos);
    this.out = new BinWriter(64);
    return bytes;
  }

  private text(json: string): void {
    const out = this.out;
    out.ensure(Buffer.byteLength(json));
    out.pos += out.buf.write(json, out.pos, 'utf8');
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
