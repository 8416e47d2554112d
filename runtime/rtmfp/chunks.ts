import { type OriginAddress, readAddress, writeAddress } from './address.ts';
import { type Reader, vluLength, type Writer } from './binary.ts';
import { type Option, readOptions, writeMarker, writeOption } from './option.ts';

/** RFC 7016 §2.3 chunk type codes. */
export const ChunkType = {
  iHello: 0x30,
  rHello: 0x70,
  redirect: 0x71,
  cookieChange: 0x79,
  iiKeying: 0x38,
  riKeying: 0x78,
  forwardedIHello: 0x0f,
  ping: 0x01,
  pingReply: 0x41,
  userData: 0x10,
  nextUserData: 0x11,
  bufferProbe: 0x18,
  ackBitmap: 0x50,
  ackRanges: 0x51,
  flowException: 0x5e,
  closeRequest: 0x0c,
  closeAck: 0x4c,
  padding: 0xff,
} as const;

/** RFC 7016 §2.3.11 User Data flags. */
export const DataFlags = {
  options: 0x80,
  fragmentMask: 0x30,
  fragmentWhole: 0x00,
  fragmentBegin: 0x10,
  fragmentEnd: 0x20,
  fragmentMiddle: 0x30,
  abandon: 0x02,
  final: 0x01,
} as const;

/** RFC 7016 §2.3.11 User Data option types. */
export const DataOption = {
  userMetadata: 0x00,
  returnAssociation: 0x0a,
} as const;

/** Option types below this are mandatory to understand (RFC 7016 §2.3.11.1.1). */
export const MANDATORY_OPTION_CUTOFF = 0x2000;

/** The 'X' signature of the Flash profile (RFC 7425 §4.3.5: no signature scheme in use). */
export const FLASH_SIGNATURE = Buffer.from([0x58]);

/** RFC 7016 §2.3: every chunk starts with its type (u8) and body length (u16). */
export const CHUNK_HEADER_BYTES = 3;

/** RFC 7016 §2.3.13–14: acknowledgements advertise the receive buffer in blocks of this size. */
export const BUFFER_BLOCK_BYTES = 1024;

/** Chunk writing: type byte, u16 length patched in by `end`. */
export function startChunk(w: Writer, type: number): number {
  w.u8(type).u16(0);
  return w.pos;
}

export function endChunk(w: Writer, bodyStart: number): void {
  w.buf.writeUInt16BE(w.pos - bodyStart, bodyStart - 2);
}

export interface IHello {
  epd: Buffer;
  tag: Buffer;
}

export function readIHello(r: Reader): IHello {
  return { epd: r.field(), tag: r.rest() };
}

export function writeIHello(w: Writer, c: IHello): void {
  const s = startChunk(w, ChunkType.iHello);
  w.field(c.epd).bytes(c.tag);
  endChunk(w, s);
}

export interface RHello {
  tag: Buffer;
  cookie: Buffer;
  certificate: Buffer;
}

export function readRHello(r: Reader): RHello {
  return { tag: r.field(), cookie: r.field(), certificate: r.rest() };
}

export function writeRHello(w: Writer, c: RHello): void {
  const s = startChunk(w, ChunkType.rHello);
  w.field(c.tag).field(c.cookie).bytes(c.certificate);
  endChunk(w, s);
}

export interface Redirect {
  tag: Buffer;
  addresses: OriginAddress[];
}

export function readRedirect(r: Reader): Redirect {
  const tag = r.field();
  const addresses: OriginAddress[] = [];
  while (r.remaining > 0) addresses.push(readAddress(r));
  return { tag, addresses };
}

export function writeRedirect(w: Writer, c: Redirect): void {
  const s = startChunk(w, ChunkType.redirect);
  w.field(c.tag);
  for (const a of c.addresses) writeAddress(w, a, a.origin);
  endChunk(w, s);
}

export interface CookieChange {
  oldCookie: Buffer;
  newCookie: Buffer;
}

export function readCookieChange(r: Reader): CookieChange {
  return { oldCookie: r.field(), newCookie: r.rest() };
}

export function writeCookieChange(w: Writer, c: CookieChange): void {
  const s = startChunk(w, ChunkType.cookieChange);
  w.field(c.oldCookie).bytes(c.newCookie);
  endChunk(w, s);
}

/** RFC 7016 §2.3.7. Session IDs are carried as u32 big-endian (the same 4 bytes everywhere). */
export interface IIKeying {
  initiatorSessionId: number;
  cookie: Buffer;
  certificate: Buffer;
  skic: Buffer;
  signature: Buffer;
}

export function readIIKeying(r: Reader): IIKeying {
  return {
    initiatorSessionId: r.u32(),
    cookie: r.field(),
    certificate: r.field(),
    skic: r.field(),
    signature: r.rest(),
  };
}

export function writeIIKeying(w: Writer, c: IIKeying): void {
  const s = startChunk(w, ChunkType.iiKeying);
  w.u32(c.initiatorSessionId).field(c.cookie).field(c.certificate).field(c.skic).bytes(c.signature);
  endChunk(w, s);
}

export interface RIKeying {
  responderSessionId: number;
  skrc: Buffer;
  signature: Buffer;
}

export function readRIKeying(r: Reader): RIKeying {
  return { responderSessionId: r.u32(), skrc: r.field(), signature: r.rest() };
}

export function writeRIKeying(w: Writer, c: RIKeying): void {
  const s = startChunk(w, ChunkType.riKeying);
  w.u32(c.responderSessionId).field(c.skrc).bytes(c.signature);
  endChunk(w, s);
}

/** RFC 7016 §2.3.3: an IHello relayed to a connected peer for P2P introduction. */
export interface ForwardedIHello {
  epd: Buffer;
  replyAddress: OriginAddress;
  tag: Buffer;
}

export function readForwardedIHello(r: Reader): ForwardedIHello {
  return { epd: r.field(), replyAddress: readAddress(r), tag: r.rest() };
}

export function writeForwardedIHello(w: Writer, c: ForwardedIHello): void {
  const s = startChunk(w, ChunkType.forwardedIHello);
  w.field(c.epd);
  writeAddress(w, c.replyAddress, c.replyAddress.origin);
  w.bytes(c.tag);
  endChunk(w, s);
}

/** RFC 7016 §2.3.11 / §2.3.12. `flowId`, `sequenceNumber`, `fsnOffset` are absent on Next User Data. */
export interface UserData {
  flags: number;
  flowId: number;
  sequenceNumber: number;
  fsnOffset: number;
  options: Option[] | undefined;
  data: Buffer;
}

/** Reads a User Data (0x10) chunk, or a Next User Data (0x11) chunk continuing `previous`. */
export function readUserData(r: Reader, previous?: UserData): UserData {
  const flags = r.u8();
  let flowId: number;
  let sequenceNumber: number;
  let fsnOffset: number;
  if (previous) {
    flowId = previous.flowId;
    sequenceNumber = previous.sequenceNumber + 1;
    fsnOffset = previous.fsnOffset + 1;
  } else {
    flowId = r.vlu();
    sequenceNumber = r.vlu();
    fsnOffset = r.vlu();
  }
  const options = flags & DataFlags.options ? readOptions(r) : undefined;
  return { flags, flowId, sequenceNumber, fsnOffset, options, data: r.rest() };
}

export interface UserDataHeader {
  flags: number;
  flowId: number;
  sequenceNumber: number;
  fsnOffset: number;
}

/** Writes the User Data chunk header; options (if any) go before the marker; data follows. */
export function writeUserData(
  w: Writer,
  h: UserDataHeader,
  options: readonly Option[] | undefined,
  data: Uint8Array,
  next = false,
): void {
  const s = startChunk(w, next ? ChunkType.nextUserData : ChunkType.userData);
  w.u8(options ? h.flags | DataFlags.options : h.flags & ~DataFlags.options);
  if (!next) w.vlu(h.flowId).vlu(h.sequenceNumber).vlu(h.fsnOffset);
  if (options) {
    for (const o of options) writeOption(w, o.type, o.value);
    writeMarker(w);
  }
  w.bytes(data);
  endChunk(w, s);
}

/** Bytes an option list plus its marker takes (for fitting a chunk in a packet). */
export function optionsLength(options: readonly Option[] | undefined): number {
  if (!options) return 0;
  let n = 1;
  for (const o of options) {
    const body = vluLength(o.type) + o.value.length;
    n += vluLength(body) + body;
  }
  return n;
}

/** RFC 7016 §2.3.14: received ranges after the cumulative one, inclusive. */
export interface AckRanges {
  flowId: number;
  bufferBlocks: number;
  cumulativeAck: number;
  ranges: [number, number][];
}

/** Reads 0x51; a truncated range list is tolerated (RFC 7016 §2.3.14). */
export function readAckRanges(r: Reader): AckRanges {
  const flowId = r.vlu();
  const bufferBlocks = r.vlu();
  const cumulativeAck = r.vlu();
  const ranges: [number, number][] = [];
  let prevEnd = cumulativeAck;
  while (r.remaining > 0) {
    const start = r.pos;
    try {
      const from = prevEnd + r.vlu() + 2;
      const to = from + r.vlu();
      ranges.push([from, to]);
      prevEnd = to;
    } catch {
      r.pos = start;
      break;
    }
  }
  return { flowId, bufferBlocks, cumulativeAck, ranges };
}

/** Reads 0x50's header; the bitmap is ignored as rtmfp-cpp does (RTMFP-NOTES §4.2). */
export function readAckBitmap(r: Reader): AckRanges {
  return { flowId: r.vlu(), bufferBlocks: r.vlu(), cumulativeAck: r.vlu(), ranges: [] };
}

export function writeAckRanges(w: Writer, a: AckRanges): void {
  const s = startChunk(w, ChunkType.ackRanges);
  w.vlu(a.flowId).vlu(a.bufferBlocks).vlu(a.cumulativeAck);
  let prevEnd = a.cumulativeAck;
  for (const [from, to] of a.ranges) {
    w.vlu(from - prevEnd - 2).vlu(to - from);
    prevEnd = to;
  }
  endChunk(w, s);
}

export interface FlowException {
  flowId: number;
  code: number;
}

export function readFlowException(r: Reader): FlowException {
  return { flowId: r.vlu(), code: r.vlu() };
}

export function writeFlowException(w: Writer, e: FlowException): void {
  const s = startChunk(w, ChunkType.flowException);
  w.vlu(e.flowId).vlu(e.code);
  endChunk(w, s);
}

export function writeBufferProbe(w: Writer, flowId: number): void {
  const s = startChunk(w, ChunkType.bufferProbe);
  w.vlu(flowId);
  endChunk(w, s);
}

/** Ping, Ping Reply, Close Request, Close Ack: type + opaque body. */
export function writeSimpleChunk(w: Writer, type: number, body?: Uint8Array): void {
  const s = startChunk(w, type);
  if (body) w.bytes(body);
  endChunk(w, s);
}
