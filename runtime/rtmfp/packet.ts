import { Reader, Writer } from './binary.ts';
import { CHUNK_HEADER_BYTES, endChunk, startChunk } from './chunks.ts';
import { ProtocolError } from './errors.ts';

/** RFC 7016 §2.2.4 packet header flags. */
export const PacketFlag = {
  timeCritical: 0x80,
  timeCriticalReverse: 0x40,
  timestamp: 0x08,
  timestampEcho: 0x04,
  modeMask: 0x03,
} as const;

/** RFC 7016 §2.2.4 packet modes. */
export const PacketMode = {
  initiator: 1,
  responder: 2,
  startup: 3,
} as const;
export type PacketMode = (typeof PacketMode)[keyof typeof PacketMode];

/** RFC 7016 §2.2.4: timestamps tick at 4 ms, 16 bits. */
export const TIMESTAMP_TICK_MS = 4;

/** The 16-bit packet timestamp of `now` (ms). */
export function timestampOf(now: number): number {
  return Math.floor(now / TIMESTAMP_TICK_MS) & 0xffff;
}

/** rtmfp-cpp's largest startup packet body: an IIKeying with a DH 16 key and certificate fits. */
export const MAX_STARTUP_PACKET = 4256;
/** Room for a startup packet and what sealing adds in front (checksum, padding). */
const STARTUP_WRITER_BYTES = MAX_STARTUP_PACKET + 16;

/**
 * Largest plaintext a session packet may have from its flags byte on. RFC 7016 keeps
 * datagrams under 1280 (IPv6 minimum MTU): rtmfp-cpp encrypts at most 1200 bytes including
 * the sequence number and checksum that the cipher adds in front (≤ 10 bytes here).
 */
export const MAX_PACKET_BODY = 1190;

export interface PacketHeader {
  flags: number;
  mode: number;
  timestamp: number | undefined;
  timestampEcho: number | undefined;
}

/**
 * Decoded plaintext packet: the header, then `nextChunk()` walks the chunks. One Reader per
 * packet is reused for every chunk: `chunk` is positioned over the current chunk's body.
 */
export class PacketReader {
  readonly header: PacketHeader;
  readonly chunk: Reader;
  chunkType = 0;
  private next: number;
  private readonly end: number;

  constructor(packet: Buffer) {
    const r = new Reader(packet);
    const flags = r.u8();
    const mode = flags & PacketFlag.modeMask;
    if (mode === 0) throw new ProtocolError('bad-mode', 'packet mode 0');
    const timestamp = flags & PacketFlag.timestamp ? r.u16() : undefined;
    const timestampEcho = flags & PacketFlag.timestampEcho ? r.u16() : undefined;
    this.header = { flags, mode, timestamp, timestampEcho };
    this.next = r.pos;
    this.end = packet.length;
    this.chunk = new Reader(packet, r.pos, r.pos);
  }

  /**
   * Advances to the next chunk. False at the end: fewer than 3 bytes left, padding (0xFF), or a
   * length running past the packet (RFC 7016 §2.2.3; rtmfp-cpp stops there too).
   */
  nextChunk(): boolean {
    const buf = this.chunk.buf;
    if (this.end - this.next < CHUNK_HEADER_BYTES) return false;
    const type = buf[this.next];
    if (type === 0xff) return false;
    const length = buf.readUInt16BE(this.next + 1);
    const start = this.next + CHUNK_HEADER_BYTES;
    if (start + length > this.end) return false;
    this.chunkType = type;
    this.chunk.pos = start;
    this.chunk.end = start + length;
    this.next = start + length;
    return true;
  }
}

/** Assembles one plaintext packet: header, then chunks while they fit in `limit`. */
export class PacketWriter {
  readonly w: Writer;
  limit = MAX_PACKET_BODY;
  private headerEnd = 0;

  constructor(capacity = 1500) {
    this.w = new Writer(capacity);
  }

  /** A writer big enough for startup packets (`beginStartup`). */
  static forStartup(): PacketWriter {
    return new PacketWriter(STARTUP_WRITER_BYTES);
  }

  /** Begins a startup packet (RFC 7016 §2.2.2: mode 3, sent under the default key). */
  beginStartup(now: number): this {
    return this.begin(PacketMode.startup, timestampOf(now), undefined, MAX_STARTUP_PACKET);
  }

  begin(
    flags: number,
    timestamp: number | undefined,
    timestampEcho: number | undefined,
    limit = MAX_PACKET_BODY,
  ): this {
    const w = this.w.reset();
    let f = flags & ~(PacketFlag.timestamp | PacketFlag.timestampEcho);
    if (timestamp !== undefined) f |= PacketFlag.timestamp;
    if (timestampEcho !== undefined) f |= PacketFlag.timestampEcho;
    w.u8(f);
    if (timestamp !== undefined) w.u16(timestamp & 0xffff);
    if (timestampEcho !== undefined) w.u16(timestampEcho & 0xffff);
    this.headerEnd = w.pos;
    this.limit = limit;
    return this;
  }

  /** Bytes still free for chunks (each needs 3 bytes of header on top of its body). */
  get room(): number {
    return this.limit - this.w.pos;
  }

  get empty(): boolean {
    return this.w.pos === this.headerEnd;
  }

  /** Sets header flag bits after chunks were added (e.g. time critical once data went in). */
  orFlags(bits: number): void {
    this.w.buf[0] |= bits;
  }

  startChunk(type: number): number {
    return startChunk(this.w, type);
  }

  endChunk(bodyStart: number): void {
    endChunk(this.w, bodyStart);
  }

  /** View of the assembled packet; valid until the next `begin`. */
  view(): Buffer {
    return this.w.view();
  }
}
