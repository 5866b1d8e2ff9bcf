/**
 * Little-endian binary writer/reader over Node Buffers, used by the log, the record codec and snapshots.
 * The writer grows geometrically; callers that must bound memory check `length` themselves.
 */
/** A DataView over a Buffer's bytes: its typed accessors are ~10x faster than Buffer's writeXxxLE. */
function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

export class BinWriter {
  buf: Buffer;
  pos = 0;
  protected view: DataView;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
    this.view = viewOf(this.buf);
  }

  get length(): number {
    return this.pos;
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(extraBytes: number): void {
    const need = this.pos + extraBytes;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.view = viewOf(next);
  }

  u8(value: number): void {
    this.ensure(1);
    this.buf[this.pos++] = value;
  }

  u16(value: number): void {
    this.ensure(2);
    this.view.setUint16(this.pos, value, true);
    this.pos += 2;
  }

  u32(value: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, value, true);
    this.pos += 4;
  }

  i32(value: number): void {
    this.ensure(4);
    this.view.setInt32(this.pos, value, true);
    this.pos += 4;
  }

  f64(value: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
  }

  /** A non-negative safe integer (< 2^53) in 8 bytes. */
  u64(value: number): void {
    this.ensure(8);
    this.view.setUint32(this.pos, value >>> 0, true);
    this.view.setUint32(this.pos + 4, Math.floor(value / 0x1_0000_0000), true);
    this.pos += 8;
  }

  /** Variable-length unsigned integer (LEB128), for lengths and small counts. */
  varuint(value: number): void {
    this.ensure(8);
    while (value >= 0x80) {
      this.buf[this.pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    this.buf[this.pos++] = value;
  }

  /** UTF-8 string prefixed with its byte length (varuint). */
  string(value: string): void {
    const length = value.length;
    if (length < SHORT_STRING_MAX) {
      // Short strings (ids, keys) are written by a JS loop: cheaper than a call into C++ per string.
      this.ensure(1 + length);
      const buf = this.buf;
      const start = this.pos + 1;
      let i = 0;
      for (; i < length; i++) {
        const code = value.charCodeAt(i);
        if (code > 0x7f) break;
        buf[start + i] = code;
      }
      if (i === length) {
        buf[this.pos] = length;
        this.pos = start + length;
        return;
      }
    }
    const byteLength = Buffer.byteLength(value, 'utf8');
    this.varuint(byteLength);
    this.ensure(byteLength);
    this.buf.write(value, this.pos, 'utf8');
    this.pos += byteLength;
  }

  bytes(value: Uint8Array): void {
    this.varuint(value.length);
    this.raw(value);
  }

  raw(value: Uint8Array): void {
    this.ensure(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  /** Zero bytes up to the next multiple of `alignment`, counted from the start of the output (`length`). */
  padTo(alignment: number): void {
    const rem = this.length % alignment;
    if (rem === 0) return;
    const pad = alignment - rem;
    this.ensure(pad);
    // A loop, not Buffer.fill: a log record pads 1-7 bytes, less than fill's argument checks cost.
    const buf = this.buf;
    const end = this.pos + pad;
    for (let i = this.pos; i < end; i++) buf[i] = 0;
    this.pos = end;
  }
}

/**
 * A BinWriter whose output is a list of pieces, for snapshot images of a gigabyte. A `raw` value of at least
 * `referenceBytes` is kept by reference instead of being copied in, so an image of typed-array columns is
 * those columns, not a second copy of them in fresh memory; the caller must leave referenced bytes unchanged
 * until the pieces are consumed. When its buffer is full, what it holds becomes a piece and writing goes on
 * in a new one of `pieceBytes`: nothing is copied twice, where doubling copied a 1 GB image ten times. A value
 * never spans two pieces. `length`, and so `padTo`, count from the start of the whole output, as in a
 * BinWriter.
 */
export class PieceWriter extends BinWriter {
  private readonly done: Uint8Array[] = [];
  private doneBytes = 0;
  /** Where the bytes of this.buf not yet handed to `done` start. */
  private pieceStart = 0;

  constructor(
    private readonly pieceBytes = 4 * 1024 * 1024,
    private readonly referenceBytes = 64 * 1024,
  ) {
    super(pieceBytes);
  }

  override get length(): number {
    return this.doneBytes + this.pos - this.pieceStart;
  }

  /** Starts over in a new buffer: pieces handed out before keep their bytes. */
  override reset(): void {
    this.done.length = 0;
    this.doneBytes = 0;
    this.newBuffer(this.pieceBytes);
  }

  override ensure(extraBytes: number): void {
    if (this.pos + extraBytes <= this.buf.length) return;
    this.cut();
    this.newBuffer(Math.max(this.pieceBytes, extraBytes));
  }

  override raw(value: Uint8Array): void {
    if (value.length < this.referenceBytes) {
      super.raw(value);
      return;
    }
    this.cut();
    this.done.push(value);
    this.doneBytes += value.length;
  }

  /** The output so far, in order: referenced values and runs of this writer's own bytes. */
  pieces(): Uint8Array[] {
    this.cut();
    return [...this.done];
  }

  private cut(): void {
    if (this.pos === this.pieceStart) return;
    this.done.push(this.buf.subarray(this.pieceStart, this.pos));
    this.doneBytes += this.pos - this.pieceStart;
    this.pieceStart = this.pos;
  }

  private newBuffer(bytes: number): void {
    this.buf = Buffer.allocUnsafe(bytes);
    this.view = viewOf(this.buf);
    this.pos = 0;
    this.pieceStart = 0;
  }
}

/** Strings shorter than this are tried as ASCII with a one-byte length prefix. */
const SHORT_STRING_MAX = 64;

function truncated(bytes: number, pos: number, end: number): RangeError {
  return new RangeError(`truncated data: need ${bytes} bytes at offset ${pos}, have ${end - pos}`);
}

export class BinReader {
  /** The buffer read; change it only through `reset`. */
  buf: Buffer;
  pos: number;
  end: number;
  private view: DataView;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.view = viewOf(buf);
    this.pos = start;
    this.end = end;
  }

  /** Points the reader at another range: readers on hot paths are reused rather than allocated. */
  reset(buf: Buffer, start: number, end: number): this {
    if (buf !== this.buf) {
      this.buf = buf;
      this.view = viewOf(buf);
    }
    this.pos = start;
    this.end = end;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** The bounds check of every read; its throw lives in `truncated` so that this stays small enough to inline. */
  private need(bytes: number): void {
    if (this.pos + bytes > this.end) throw truncated(bytes, this.pos, this.end);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  u64(): number {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    if (hi > 0x1fffff) throw new RangeError(`u64 at offset ${this.pos - 8} exceeds 2^53`);
    return hi * 0x1_0000_0000 + lo;
  }

  varuint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.u8();
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
    throw new RangeError(`varuint too long at offset ${this.pos}`);
  }

  string(): string {
    const length = this.varuint();
    if (length === 0) return ''; // every record without an idempotency key: no call into C++ for it
    this.need(length);
    const v = this.buf.toString('utf8', this.pos, this.pos + length);
    this.pos += length;
    return v;
  }

  /**
   * Skips a string and returns where its UTF-8 bytes start in `buf`; they end at `pos` right after the
   * call. (Two numbers without an array: this is on replay's hot path.)
   */
  skipString(): number {
    const length = this.varuint();
    this.need(length);
    const start = this.pos;
    this.pos += length;
    return start;
  }

  bytes(): Buffer {
    const length = this.varuint();
    return this.raw(length);
  }

  raw(length: number): Buffer {
    this.need(length);
    const v = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return v;
  }
}

/** Read a u64 (< 2^53) at an absolute offset without a reader. */
export function readU64(buf: Uint8Array, offset: number): number {
  const view = buf as Buffer;
  return view.readUInt32LE(offset + 4) * 0x1_0000_0000 + view.readUInt32LE(offset);
}

type TypedArrayOf<T> = T extends {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): infer A;
}
  ? A
  : never;

/**
 * `length` elements of a typed array over `bytes` without copying when its position allows (aligned to
 * the element size), else a copy. Large snapshot columns load as views of the file's buffer.
 */
export function typedArrayOver<
  C extends Float64ArrayConstructor | Int32ArrayConstructor | Uint32ArrayConstructor | Uint8ArrayConstructor,
>(type: C, bytes: Uint8Array, length: number): TypedArrayOf<C> {
  const size = type.BYTES_PER_ELEMENT;
  if (bytes.length < length * size) throw new RangeError(`need ${length * size} bytes, have ${bytes.length}`);
  if (bytes.byteOffset % size === 0) {
    return new (type as Float64ArrayConstructor)(bytes.buffer, bytes.byteOffset, length) as TypedArrayOf<C>;
  }
  const copy = new (type as Float64ArrayConstructor)(length);
  new Uint8Array(copy.buffer).set(bytes.subarray(0, length * size));
  return copy as TypedArrayOf<C>;
}
