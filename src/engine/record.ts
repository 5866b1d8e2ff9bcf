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
 *   rest     the result, in the command's result codec
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

/** Decodes a command record, calling `onEvent` for each event in order; returns the header and a reader at the result. */
export function readRecord(
  registry: Registry,
  record: LogRecord,
  visit: (event: CompiledEvent, data: unknown, header: DecodedRecordHeader) => void,
): { header: DecodedRecordHeader; command: CompiledCommand; result: BinReader } | undefined {
  const command = registry.commandsById.get(record.type);
  if (!command) {
    if (record.flags & FLAG_IGNORABLE) return undefined;
    throw new EngramError(
      'unknown_record_type',
      `log record at LSN ${record.lsn} has command type ${record.type}, which this build does not define. ` +
        'Run the build that wrote it, or add the command (ids never change) before starting.',
      { lsn: record.lsn, type: record.type },
    );
  }
  const r = new BinReader(record.buf, record.payloadStart, record.payloadEnd);
  const header: DecodedRecordHeader = {
    nowMs: r.f64(),
    seed: r.u32(),
    fingerprintA: r.u32(),
    fingerprintB: r.u32(),
    key: r.string(),
  };
  const eventCount = r.u32();
  for (let i = 0; i < eventCount; i++) {
    const id = r.u16();
    const version = r.u16();
    const length = r.u32();
    const end = r.pos + length;
    const event = registry.eventsById.get(id);
    if (!event) {
      throw new EngramError(
        'unknown_record_type',
        `log record at LSN ${record.lsn} holds event type ${id} (version ${version}), which this build does not define.`,
        { lsn: record.lsn, eventType: id },
      );
    }
    const data = event.codec.decode(new BinReader(record.buf, r.pos, end), version);
    r.pos = end;
    visit(event, data, header);
  }
  return { header, command, result: r };
}
