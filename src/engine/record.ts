import { EngramError } from '../errors.ts';
import { FLAG_IGNORABLE } from '../log/format.ts';
import type { LogRecord } from '../log/reader.ts';
import { BinReader, type BinWriter } from '../util/bin.ts';
import type { CompiledCommand, CompiledEvent, Registry } from './registry.ts';

/**
 * The payload of a command record (the frame's type and version are the command's id and version):
 *   f64      nowMs: the decision's timestamp
 *   u32      random seed handed to decide
 *   u32 u32  fingerprint of the command (two independent CRC-32C values of its canonical form)
 *   string   idempotency key ('' when none)
 *   u32      event count, then per event: u16 event id, u16 version, u32 byte length, payload
 *   rest     the result, in the command's result codec, only when there is an idempotency key (a retry is
 *            answered from it, so replay must restore it); without a key the rest is empty (or, in logs
 *            written before this rule, an unread result)
 * Events come before the result so replay can apply them and decode the result only when it is kept.
 */
export interface DecodedRecordHeader {
  nowMs: number;
  seed: number;
  fingerprintA: number;
  fingerprintB: number;
  key: string;
}

export function encodeRecordHeader(
  w: BinWriter,
  nowMs: number,
  seed: number,
  fpA: number,
  fpB: number,
  key: string,
): void {
  w.f64(nowMs);
  w.u32(seed);
  w.u32(fpA);
  w.u32(fpB);
  w.string(key);
}

export function encodeEvent(w: BinWriter, event: CompiledEvent, data: unknown): void {
  w.u16(event.id);
  w.u16(event.version);
  // The payload length is back-filled so that tools can skip events they cannot decode.
  const lengthAt = w.pos;
  w.u32(0);
  const start = w.pos;
  event.codec.encode(data, w);
  w.buf.writeUInt32LE(w.pos - start, lengthAt);
}

/**
 * Decodes command records for replay. One instance per consumer: it reuses its readers and header object,
 * so replaying millions of records allocates only what the events' own decoders build.
 */
const EMPTY = Buffer.alloc(0);

export class RecordReader {
  readonly header: DecodedRecordHeader = { nowMs: 0, seed: 0, fingerprintA: 0, fingerprintB: 0, key: '' };
  private readonly reader = new BinReader(EMPTY);
  private readonly eventReader = new BinReader(EMPTY);

  private lastType = -1;
  private lastCommand: CompiledCommand | undefined;
  private lastEventId = -1;
  private lastEvent: CompiledEvent | undefined;

  constructor(private readonly registry: Registry) {}

  /** Drops the reference to the last record's buffer: during recovery, a whole log segment. */
  release(): void {
    this.reader.reset(EMPTY, 0, 0);
    this.eventReader.reset(EMPTY, 0, 0);
  }

  /**
   * Reads the header, then calls `visit` for each event in order. Returns the command and a reader
   * positioned at the result (valid until the next call), or undefined for an ignorable unknown record.
   */
  read(
    record: LogRecord,
    visit: (event: CompiledEvent, data: unknown) => void,
  ): { command: CompiledCommand; result: BinReader } | undefined {
    // The last type's command, cached: replay reads runs of the same command.
    const command =
      record.type === this.lastType ? this.lastCommand : this.registry.commandsById.get(record.type);
    this.lastType = command ? record.type : -1;
    this.lastCommand = command;
    if (!command) {
      if (record.flags & FLAG_IGNORABLE) return undefined;
      throw new EngramError(
        'unknown_record_type',
        `log record at LSN ${record.lsn} has command type ${record.type}, which this build does not define. ` +
          'Run the build that wrote it, or add the command (ids never change) before starting.',
        { lsn: record.lsn, type: record.type },
      );
    }
    const r = this.reader.reset(record.buf, record.payloadStart, record.payloadEnd);
    const header = this.header;
    header.nowMs = r.f64();
    header.seed = r.u32();
    header.fingerprintA = r.u32();
    header.fingerprintB = r.u32();
    header.key = r.string();
    const eventCount = r.u32();
    for (let i = 0; i < eventCount; i++) {
      const id = r.u16();
      const version = r.u16();
      const length = r.u32();
      const end = r.pos + length;
      const event = id === this.lastEventId ? this.lastEvent : this.registry.eventsById.get(id);
      this.lastEventId = event ? id : -1;
      this.lastEvent = event;
      if (!event) {
        throw new EngramError(
          'unknown_record_type',
          `log record at LSN ${record.lsn} holds event type ${id} (version ${version}), which this build does not define.`,
          { lsn: record.lsn, eventType: id },
        );
      }
      const data = event.codec.decode(this.eventReader.reset(record.buf, r.pos, end), version);
      r.pos = end;
      visit(event, data);
    }
    const decoded = this.decoded;
    decoded.command = command;
    decoded.result = r;
    return decoded;
  }

  /** What `read` returns, reused across calls (valid until the next one). */
  private readonly decoded: { command: CompiledCommand; result: BinReader } = {
    command: undefined as unknown as CompiledCommand,
    result: this.reader,
  };
}
