import { ProtocolError } from './errors.ts';

/** Largest integer a VLU may carry here: flow IDs, sequence numbers and lengths fit in 2^53. */
export const MAX_VLU = Number.MAX_SAFE_INTEGER;

/**
 * Cursor over received bytes. Every read checks bounds and throws ProtocolError('truncated')
 * instead of reading past `end`, so decoders need no length checks of their own.
 */
export class Reader {
  readonly buf: Buffer;
  pos: number;
  end: number;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): void {
    if (this.pos + n > this.end)
      throw new ProtocolError('truncated', `needs ${n} bytes, ${this.remaining} left`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A view (not a copy) of the next `n` bytes. */
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A view of everything up to `end`. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return v;
  }

  /** RFC 7016 §2.1.2 variable length unsigned integer. */
  vlu(): number {
    let value = 0;
    for (;;) {
      this.need(1);
      const b = this.buf[this.pos++];
      value = value * 128 + (b & 0x7f);
      if (value > MAX_VLU) throw new ProtocolError('vlu-overflow', 'VLU larger than 2^53-1');
      if ((b & 0x80) === 0) return value;
    }
  }

  /** RFC 7016 §2.1.2: a VLU length followed by that many bytes (a view). */
  field(): Buffer {
    return this.bytes(this.vlu());
  }
}

/** Number of bytes the VLU encoding of `value` takes. */
export function vluLength(value: number): number {
  let n = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

/**
 * Growable byte writer. `reset()` reuses the same backing buffer, so a long-lived writer
 * assembles packets without allocating; `toBuffer()` copies the written bytes out.
 */
export class Writer {
  buf: Buffer;
  pos = 0;

  constructor(capacity = 256) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  get length(): number {
    return this.pos;
  }

  reset(): this {
    this.pos = 0;
    return this;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this {
    this.room(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    this.room(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  u32(v: number): this {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  f64(v: number): this {
    this.room(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  fill(value: number, n: number): this {
    this.room(n);
    this.buf.fill(value, this.pos, this.pos + n);
    this.pos += n;
    return this;
  }

  /** RFC 7016 §2.1.2 variable length unsigned integer. */
  vlu(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new RangeError(`VLU must be a safe non-negative integer, got ${value}`);
    const n = vluLength(value);
    this.room(n);
    for (let i = n - 1; i >= 0; i--) {
      this.buf[this.pos + i] = (value % 128) | (i === n - 1 ? 0 : 0x80);
      value = Math.floor(value / 128);
    }
    this.pos += n;
    return this;
  }

  /** RFC 7016 §2.1.2: VLU length then the bytes. */
  field(b: Uint8Array): this {
    return this.vlu(b.length).bytes(b);
  }

  /** Copy of the written bytes. */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  /** View of the written bytes; valid until the next write or reset. */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/**
 * A copy in memory of its own, for bytes kept as long as a flow or a session lives. A view into
 * a received datagram would keep the whole datagram, and Buffer.from copies small buffers into
 * a slab shared with every short-lived one (Buffer.poolSize, 64 KiB in Node 24) that then stays
 * alive as long as the copy: a few such copies per player pinned slabs worth ~5 kB per player.
 */
export function ownedCopy(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(bytes.length);
  out.set(bytes);
  return out;
}
