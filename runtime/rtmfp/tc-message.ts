import type { AmfObject, AmfValue } from './amf-value.ts';
import { Amf0Reader, Amf0Writer } from './amf0.ts';
import { Reader, Writer } from './binary.ts';
import { ProtocolError } from './errors.ts';

/** RTMP message types as carried on RTMFP flows (RFC 7425 §5.1; numbering from RTMP). */
export const TCMessageType = {
  setChunkSize: 1,
  abort: 2,
  ack: 3,
  userControl: 4,
  windowAckSize: 5,
  setPeerBandwidth: 6,
  audio: 8,
  video: 9,
  dataAmf3: 15,
  sharedObjectAmf3: 16,
  commandAmf3: 17,
  dataAmf0: 18,
  sharedObjectAmf0: 19,
  commandAmf0: 20,
  aggregate: 22,
} as const;

/** User Control event types (RFC 7425 §5.2, §5.3.4; RTMP for the rest). */
export const UserControlEvent = {
  streamBegin: 0,
  streamEOF: 1,
  streamDry: 2,
  setBufferLength: 3,
  streamIsRecorded: 4,
  flowSync: 34,
  setKeepalive: 41,
} as const;

/** A message on a TC flow: `type u8 · timestamp u32 · payload` (RFC 7425 §5.1). */
export interface TCMessage {
  type: number;
  timestamp: number;
  /** A view into the message bytes. */
  payload: Buffer;
}

/** A NetConnection/NetStream command or its reply (RFC 7425 §5.3). */
export interface Command {
  name: string;
  /** 0 means no reply is expected; connect is 1. */
  transactionId: number;
  /** null in everything but connect. */
  commandObject: AmfValue;
  args: AmfValue[];
}

export interface AmfEncoding {
  /** Send as the "AMF3" message type (format byte 0, then AMF0 with objects behind 0x11). */
  amf3?: boolean;
}

export interface UserControl {
  event: number;
  data: number[];
}

export interface TCMetadata {
  streamId: number;
  /** Receive intent: deliver in network arrival order instead of original order. */
  networkOrder: boolean;
}

const HEADER_LENGTH = 5;
/** RFC 7425 §5.3.3: the "AMF3" command and data types start with a format byte that must be 0. */
const AMF3_FORMAT = 0x00;
const TC_SIGNATURE_T = 0x54;
const TC_SIGNATURE_C = 0x43;
const GC_SIGNATURE_G = 0x47;
/** Flow metadata flags (rtmfp-cpp TCMessage.hpp): stream ID present (required), receive intent. */
const FLAG_STREAM_ID = 0x04;
const FLAG_NETWORK_ORDER = 0x01;
/** Stream IDs are 32-bit (rtmfp-cpp TCMetadata; createStream answers 1 … 2^32−1). */
export const MAX_STREAM_ID = 0xffffffff;

export function encodeTCMessage(type: number, timestamp: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LENGTH + payload.length);
  out[0] = type;
  out.writeUInt32BE(timestamp >>> 0, 1);
  out.set(payload, HEADER_LENGTH);
  return out;
}

export function decodeTCMessage(buf: Buffer): TCMessage {
  if (buf.length < HEADER_LENGTH) throw new ProtocolError('truncated', `TC message of ${buf.length} bytes`);
  return { type: buf[0], timestamp: buf.readUInt32BE(1), payload: buf.subarray(HEADER_LENGTH) };
}

/**
 * A whole command message. Timestamp 0 as rtmfp-cpp writes commands. With `amf3` it is type 17
 * with objects in AMF3 (objectEncoding 3 clients); else type 20 in plain AMF0, which every
 * client reads (tcserver and Cumulus answer with 20).
 */
export function encodeCommand(cmd: Command, options: AmfEncoding = {}): Buffer {
  const { writer, amf } = amfMessage(options.amf3 ? TCMessageType.commandAmf3 : TCMessageType.commandAmf0, 0);
  amf.write(cmd.name).write(cmd.transactionId).write(cmd.commandObject);
  for (const arg of cmd.args) amf.write(arg);
  return writer.toBuffer();
}

/** Decodes a command message (type 20, or 17 as Flash sends); a missing command object reads as null. */
export function decodeCommand(msg: Buffer | TCMessage): Command {
  const amf = amfPayload(msg, TCMessageType.commandAmf0, TCMessageType.commandAmf3);
  const name = amf.read();
  if (typeof name !== 'string') throw new ProtocolError('bad-command', 'command name is not a string');
  const transactionId = amf.done ? undefined : amf.read();
  if (typeof transactionId !== 'number') {
    throw new ProtocolError('bad-command', `command "${name}" has no numeric transaction ID`);
  }
  const commandObject = amf.done ? null : amf.read();
  return { name, transactionId, commandObject, args: amf.readAll() };
}

/** `onStatus`(0, null, info): how NetStream events reach the client (RFC 7425 §5.3; timestamp 0). */
export function encodeOnStatus(info: AmfObject): Buffer {
  return encodeCommand({ name: 'onStatus', transactionId: 0, commandObject: null, args: [info] });
}

/** A data message such as `@setDataFrame` (type 18, or 15 with `amf3`). */
export function encodeData(values: AmfValue[], options: AmfEncoding & { timestamp?: number } = {}): Buffer {
  const type = options.amf3 ? TCMessageType.dataAmf3 : TCMessageType.dataAmf0;
  const { writer, amf } = amfMessage(type, options.timestamp ?? 0);
  for (const value of values) amf.write(value);
  return writer.toBuffer();
}

export function decodeData(msg: Buffer | TCMessage): AmfValue[] {
  return amfPayload(msg, TCMessageType.dataAmf0, TCMessageType.dataAmf3).readAll();
}

/** A User Control message: u16 event type, then u32 data words (RFC 7425 §5.2). */
export function encodeUserControl(event: number, ...data: number[]): Buffer {
  const writer = new Writer(HEADER_LENGTH + 2 + 4 * data.length);
  writer.u8(TCMessageType.userControl).u32(0).u16(event);
  for (const word of data) writer.u32(word);
  return writer.toBuffer();
}

export function decodeUserControl(msg: Buffer | TCMessage): UserControl {
  const { type, payload } = Buffer.isBuffer(msg) ? decodeTCMessage(msg) : msg;
  if (type !== TCMessageType.userControl) throw notType(type, 'user control');
  const r = new Reader(payload);
  const event = r.u16();
  if (r.remaining % 4 !== 0) {
    throw new ProtocolError('bad-user-control', `user control event ${event} data is not whole u32 words`);
  }
  const data: number[] = [];
  while (r.remaining > 0) data.push(r.u32());
  return { event, data };
}

/** Flow metadata of a TC flow: "TC", flags, VLU stream ID (rtmfp-cpp TCMetadata::encode). */
export function encodeTCMetadata(metadata: { streamId: number; networkOrder?: boolean }): Buffer {
  if (metadata.streamId > MAX_STREAM_ID)
    throw new RangeError(`TC stream ID ${metadata.streamId} exceeds 2^32-1`);
  const flags = FLAG_STREAM_ID | (metadata.networkOrder ? FLAG_NETWORK_ORDER : 0);
  return new Writer(8).u8(TC_SIGNATURE_T).u8(TC_SIGNATURE_C).u8(flags).vlu(metadata.streamId).toBuffer();
}

/**
 * Parses TC flow metadata; undefined when it is not one, as rtmfp-cpp's TCMetadata::parse
 * judges it: no "TC", no stream-ID flag, a cut VLU or a stream ID over 32 bits. Bytes after
 * the stream ID are ignored.
 */
export function decodeTCMetadata(buf: Buffer): TCMetadata | undefined {
  if (buf.length < 4 || buf[0] !== TC_SIGNATURE_T || buf[1] !== TC_SIGNATURE_C) return undefined;
  const flags = buf[2];
  if ((flags & FLAG_STREAM_ID) === 0) return undefined;
  let streamId = 0;
  for (let i = 3; i < buf.length; i++) {
    streamId = streamId * 128 + (buf[i] & 0x7f);
    if (streamId > MAX_STREAM_ID) return undefined;
    if ((buf[i] & 0x80) === 0) return { streamId, networkOrder: (flags & FLAG_NETWORK_ORDER) !== 0 };
  }
  return undefined;
}

/** NetGroup flows carry "GC" metadata (Cumulus FlowGroup, MonaServer, librtmfp). */
export function isGroupMetadata(buf: Buffer): boolean {
  return buf.length >= 2 && buf[0] === GC_SIGNATURE_G && buf[1] === TC_SIGNATURE_C;
}

/** The metadata of our return flow to a client's NetGroup flow ("GC", as Cumulus's FlowWriter). */
export const GROUP_METADATA: Buffer = Buffer.from([GC_SIGNATURE_G, TC_SIGNATURE_C]);

/** An info object for onStatus/_result: `{ level: 'status', code, description, ...extra }`. */
export function statusInfo(code: string, description: string, extra: AmfObject = {}): AmfObject {
  return { level: 'status', code, description, ...extra };
}

/** An info object for failures: `{ level: 'error', code, description, ...extra }`. */
export function errorInfo(code: string, description: string, extra: AmfObject = {}): AmfObject {
  return { level: 'error', code, description, ...extra };
}

function amfMessage(type: number, timestamp: number): { writer: Writer; amf: Amf0Writer } {
  const amf3 = type === TCMessageType.commandAmf3 || type === TCMessageType.dataAmf3;
  const writer = new Writer().u8(type).u32(timestamp);
  if (amf3) writer.u8(AMF3_FORMAT);
  return { writer, amf: new Amf0Writer(writer, { amf3Objects: amf3 }) };
}

function amfPayload(msg: Buffer | TCMessage, amf0Type: number, amf3Type: number): Amf0Reader {
  const { type, payload } = Buffer.isBuffer(msg) ? decodeTCMessage(msg) : msg;
  if (type === amf0Type) return new Amf0Reader(payload);
  if (type !== amf3Type) throw notType(type, amf0Type === TCMessageType.commandAmf0 ? 'command' : 'data');
  const r = new Reader(payload);
  const format = r.u8();
  if (format !== AMF3_FORMAT)
    throw new ProtocolError('bad-tc-message', `AMF3 message format byte ${format}, not 0`);
  return new Amf0Reader(r);
}

function notType(type: number, what: string): ProtocolError {
  return new ProtocolError('bad-tc-message', `message type ${type} is not a ${what} message`);
}
