import {
  type Cipheriv,
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type Decipheriv,
  timingSafeEqual,
} from 'node:crypto';
import { AES_ROUND_KEYS_BYTES, type AesEngine } from './aes-engine.ts';
import { Reader, vluLength } from './binary.ts';
import { checksum } from './checksum.ts';
import { ProtocolError } from './errors.ts';
import { PrekeyedHmac } from './hmac.ts';

/**
 * The Flash-profile packet cipher (RFC 7425 §4.2, §4.6.4, §4.6.5; RFC 7016 §2.2), the
 * per-packet hot path. Datagram = scrambled session ID (4 B) · AES-128-CBC ciphertext with a
 * zero IV for every packet · truncated HMAC-SHA256 of the ciphertext if negotiated. Plaintext =
 * [session sequence VLU] · [checksum u16 unless HMAC] · packet from its flags byte · 0xFF
 * padding to a multiple of 16.
 *
 * Creating a Cipher or Hmac costs more than the whole per-packet budget (PERF-NOTES), so each
 * PacketCipher keeps one CBC cipher and decipher per key and pre-padded HMAC keys, and
 * restores the zero IV by hand (see seal/open). Given an AesEngine, it keeps round keys
 * instead and works in place: no allocation per packet at all.
 */

/** RFC 7425 §4.1: the key of every packet before keying completes. */
export const DEFAULT_KEY = Buffer.from('Adobe Systems 02', 'ascii');

const BLOCK = 16;
const SESSION_ID_LENGTH = 4;
const MIN_DATAGRAM = SESSION_ID_LENGTH + BLOCK;
const CHECKSUM_LENGTH = 2;
/** rtmfp-cpp `MAX_SSEQ_GAP`: sequence numbers this far behind the highest are replays. */
const SSEQ_WINDOW = 32;
const MIN_HMAC_LENGTH = 4;
const MAX_HMAC_LENGTH = 32;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** Where `open` computes the HMAC it checks: one for every session (a check is synchronous). */
const macScratch = Buffer.alloc(MAX_HMAC_LENGTH);

/**
 * RFC 7016 §2.2.4: the session ID is the first word XOR the first two words of the
 * ciphertext. Needed before the session (and so its HMAC length) is known, so this checks
 * only the minimum length; open() checks the block alignment.
 */
export function readSessionId(datagram: Buffer): number {
  if (datagram.length < MIN_DATAGRAM) {
    throw new ProtocolError('bad-length', `datagram of ${datagram.length} bytes is shorter than 20`);
  }
  return (datagram.readUInt32BE(0) ^ datagram.readUInt32BE(4) ^ datagram.readUInt32BE(8)) >>> 0;
}

export interface PacketCipherOptions {
  encryptKey: Buffer;
  decryptKey: Buffer;
  sendHmac?: { key: Buffer; length: number };
  recvHmac?: { key: Buffer; length: number };
  sendSseq: boolean;
  recvSseq: boolean;
  /**
   * Encrypt and decrypt in place with this engine. Then seal() returns a view of a buffer
   * shared by every such cipher, good until the next seal(): whoever keeps a datagram past the
   * call that sent it must copy it. open() decrypts the datagram it is given in place.
   */
  aes?: AesEngine;
}

/**
 * One session's packet cipher. Not safe to share across sessions that use sequence numbers;
 * every call is synchronous, so the CBC chain state it carries between calls stays exact.
 */
export class PacketCipher {
  /** The node:crypto path (no engine): long-lived CBC cipher and decipher. */
  private readonly js: JsCbc | undefined;
  /** The engine path: the engine, and the round keys of both directions. */
  private readonly aes: AesEngine | undefined;
  private readonly encryptKeys: Buffer | undefined;
  private readonly decryptKeys: Buffer | undefined;
  private readonly sendMac: PrekeyedHmac | undefined;
  private readonly sendMacLength: number;
  private readonly recvMac: PrekeyedHmac | undefined;
  private readonly recvMacLength: number;
  private readonly sendSseq: boolean;
  private readonly recvSseq: boolean;
  private nextSseq = 0;
  /** Highest sequence number accepted, and bit i set = (highest − i) accepted. */
  private highestSseq = -1;
  private seenSseq = 0;

  constructor(o: PacketCipherOptions) {
    if (o.aes) {
      this.aes = o.aes;
      const keys = Buffer.allocUnsafeSlow(2 * AES_ROUND_KEYS_BYTES);
      this.encryptKeys = keys.subarray(0, AES_ROUND_KEYS_BYTES);
      this.decryptKeys = keys.subarray(AES_ROUND_KEYS_BYTES);
      o.aes.expandKey(checkKey(o.encryptKey), this.encryptKeys);
      o.aes.expandKey(checkKey(o.decryptKey), this.decryptKeys);
    } else {
      this.js = new JsCbc(o.encryptKey, o.decryptKey);
    }
    this.sendMac = o.sendHmac && new PrekeyedHmac(o.sendHmac.key);
    this.sendMacLength = o.sendHmac ? checkHmacLength(o.sendHmac.length) : 0;
    this.recvMac = o.recvHmac && new PrekeyedHmac(o.recvHmac.key);
    this.recvMacLength = o.recvHmac ? checkHmacLength(o.recvHmac.length) : 0;
    this.sendSseq = o.sendSseq;
    this.recvSseq = o.recvSseq;
  }

  private static shared: PacketCipher | undefined;

  /**
   * Startup packets (IHello … RIKeying): the default key both ways, checksum, no HMAC or
   * sequence numbers (RFC 7425 §4.1). Shared: besides the CBC chain, which every call leaves
   * consistent, it keeps no state.
   */
  static startup(): PacketCipher {
    PacketCipher.shared ??= new PacketCipher({
      encryptKey: DEFAULT_KEY,
      decryptKey: DEFAULT_KEY,
      sendSseq: false,
      recvSseq: false,
    });
    return PacketCipher.shared;
  }

  /**
   * Encrypts `packet` (from its flags byte; not kept) into a whole datagram for `sessionId`:
   * a buffer of its own, or with an engine a view of the shared one (see PacketCipherOptions.aes).
   */
  seal(packet: Buffer, sessionId: number): Buffer {
    const macLength = this.sendMacLength;
    if (this.aes && this.encryptKeys) {
      // In place: [session ID][plaintext → ciphertext][HMAC], the datagram as it goes out.
      const plainEnd = SESSION_ID_LENGTH + this.paddedLength(packet);
      const out = engineScratchOf(plainEnd + macLength);
      this.layOut(packet, out, SESSION_ID_LENGTH, plainEnd);
      this.aes.encryptCbc(this.encryptKeys, out, SESSION_ID_LENGTH, plainEnd);
      return this.finish(out, SESSION_ID_LENGTH, plainEnd, sessionId);
    }
    const js = this.js as JsCbc;
    // Zero IV on a long-lived CBC cipher: the input starts with a lead block equal to the
    // cipher's chain state C, which encrypts to AES(C ⊕ C) = AES(0) = leadBlock; XORing
    // leadBlock into the first plaintext block then makes the rest equal a fresh zero-IV
    // encryption. The lead block's output is where the session ID goes, and extra blocks after
    // the ciphertext make room for the HMAC, so update()'s own output is the datagram: no copy.
    const plainEnd = BLOCK + this.paddedLength(packet);
    const inputLength = plainEnd + Math.ceil(macLength / BLOCK) * BLOCK;
    const input = scratchOf(inputLength);
    js.encryptChain.copy(input, 0);
    this.layOut(packet, input, BLOCK, plainEnd);
    xorBlock(input, BLOCK, js.leadBlock);
    input.fill(0, plainEnd, inputLength);
    const out = js.encryptor.update(input.subarray(0, inputLength));
    out.copy(js.encryptChain, 0, inputLength - BLOCK, inputLength);
    return this.finish(out, BLOCK, plainEnd, sessionId);
  }

  /** Bytes of plaintext a packet takes once numbered, checksummed and padded. */
  private paddedLength(packet: Buffer): number {
    const plainLength =
      (this.sendSseq ? vluLength(this.nextSseq) : 0) + (this.sendMac ? 0 : CHECKSUM_LENGTH) + packet.length;
    return Math.max(BLOCK, Math.ceil(plainLength / BLOCK) * BLOCK);
  }

  /**
   * Writes the plaintext in buf[at, plainEnd) (plainEnd = at + paddedLength): [session sequence
   * number] · [checksum] · packet · 0xFF padding (RFC 7425 §4.6.4, §4.6.5).
   */
  private layOut(packet: Buffer, buf: Buffer, at: number, plainEnd: number): void {
    let pos = at;
    if (this.sendSseq) pos = writeVlu(buf, pos, this.nextSseq++);
    const checksumAt = pos;
    if (!this.sendMac) pos += CHECKSUM_LENGTH;
    pos += packet.copy(buf, pos);
    buf.fill(0xff, pos, plainEnd);
    if (!this.sendMac) buf.writeUInt16BE(checksum(buf, checksumAt + CHECKSUM_LENGTH, plainEnd), checksumAt);
  }

  /** Scrambles the session ID in before the ciphertext at `at`, appends the HMAC; the datagram. */
  private finish(out: Buffer, at: number, plainEnd: number, sessionId: number): Buffer {
    const macLength = this.sendMacLength;
    const scrambled = sessionId ^ out.readUInt32BE(at) ^ out.readUInt32BE(at + 4);
    out.writeUInt32BE(scrambled >>> 0, at - SESSION_ID_LENGTH);
    if (this.sendMac) this.sendMac.digestInto(out.subarray(at, plainEnd), out, plainEnd, macLength);
    return out.subarray(at - SESSION_ID_LENGTH, plainEnd + macLength);
  }

  /**
   * Decrypts and verifies a datagram; returns the packet from its flags byte on, padding
   * included (a view). Throws ProtocolError 'bad-length', 'bad-hmac', 'replayed' or
   * 'bad-checksum'. The HMAC is checked before decrypting, so forged datagrams cost no AES.
   */
  open(datagram: Buffer): Buffer {
    const macLength = this.recvMacLength;
    const cipherEnd = datagram.length - macLength;
    const cipherLength = cipherEnd - SESSION_ID_LENGTH;
    if (cipherLength < BLOCK || cipherLength % BLOCK !== 0) {
      throw new ProtocolError(
        'bad-length',
        `datagram of ${datagram.length} bytes is not 4 + 16n + ${macLength}`,
      );
    }
    const ciphertext = datagram.subarray(SESSION_ID_LENGTH, cipherEnd);
    if (this.recvMac) {
      this.recvMac.digestInto(ciphertext, macScratch, 0, macLength);
      if (!timingSafeEqual(macScratch.subarray(0, macLength), datagram.subarray(cipherEnd))) {
        throw new ProtocolError('bad-hmac', 'packet HMAC does not match');
      }
    }

    let plain: Buffer;
    if (this.aes && this.decryptKeys) {
      this.aes.decryptCbc(this.decryptKeys, datagram, SESSION_ID_LENGTH, cipherEnd);
      plain = ciphertext;
    } else {
      // The long-lived decipher XORs its chain state into the first block instead of the zero
      // IV; XOR it back out, then remember this packet's last block as the new state.
      const js = this.js as JsCbc;
      plain = js.decryptor.update(ciphertext);
      xorBlock(plain, 0, js.decryptChain);
      ciphertext.copy(js.decryptChain, 0, cipherLength - BLOCK, cipherLength);
    }

    let pos = 0;
    let sseq = 0;
    if (this.recvSseq) {
      const r = new Reader(plain);
      sseq = r.vlu();
      pos = r.pos;
      if (this.isReplay(sseq))
        throw new ProtocolError('replayed', `session sequence number ${sseq} replayed`);
    }
    if (!this.recvMac) {
      if (plain.length - pos < CHECKSUM_LENGTH)
        throw new ProtocolError('bad-length', 'no room for the checksum');
      const expected = plain.readUInt16BE(pos);
      pos += CHECKSUM_LENGTH;
      if (checksum(plain, pos, plain.length) !== expected) {
        throw new ProtocolError('bad-checksum', 'packet checksum does not match');
      }
    }
    if (this.recvSseq) this.acceptSseq(sseq);
    return plain.subarray(pos);
  }

  /** rtmfp-cpp: a number already seen, or ≤ highest − 32, is a replay (RFC 7425 §4.6.5). */
  private isReplay(sseq: number): boolean {
    if (sseq > this.highestSseq) return false;
    const back = this.highestSseq - sseq;
    return back >= SSEQ_WINDOW || (this.seenSseq & (1 << back)) !== 0;
  }

  private acceptSseq(sseq: number): void {
    if (sseq > this.highestSseq) {
      const shift = sseq - this.highestSseq;
      this.seenSseq = shift >= SSEQ_WINDOW ? 1 : (this.seenSseq << shift) | 1;
      this.highestSseq = sseq;
    } else {
      this.seenSseq |= 1 << (this.highestSseq - sseq);
    }
  }
}

/** One session direction's node:crypto CBC state (see PacketCipher.seal and open). */
class JsCbc {
  readonly encryptor: Cipheriv;
  readonly decryptor: Decipheriv;
  /** The CBC state the long-lived cipher/decipher continue from: their last ciphertext block. */
  readonly encryptChain: Buffer;
  readonly decryptChain = Buffer.alloc(BLOCK);
  /** AES_K(0^16): the ciphertext of the lead block seal() feeds in. */
  readonly leadBlock: Buffer;

  constructor(encryptKey: Buffer, decryptKey: Buffer) {
    // Keys go in as KeyObjects: given a Buffer, createCipheriv first rules out a KeyObject and a
    // CryptoKey by catching two thrown TypeErrors, 10–30 µs per call (one session setup paid ~70 µs).
    this.encryptor = createCipheriv('aes-128-cbc', createSecretKey(encryptKey), ZERO_BLOCK).setAutoPadding(
      false,
    );
    this.decryptor = createDecipheriv('aes-128-cbc', createSecretKey(decryptKey), ZERO_BLOCK).setAutoPadding(
      false,
    );
    // The fresh cipher's first block is AES(0 ⊕ IV 0) = AES(0), which is also its chain state.
    this.leadBlock = this.encryptor.update(ZERO_BLOCK);
    this.encryptChain = Buffer.from(this.leadBlock);
  }
}

/**
 * Where seal() lays out its input: one buffer for every cipher, since a packet is sealed within
 * one synchronous call (update() returns a buffer of its own). A buffer per cipher would pin
 * 2 kB per session.
 */
let scratch = Buffer.allocUnsafeSlow(2048);

function scratchOf(length: number): Buffer {
  if (scratch.length < length) scratch = Buffer.allocUnsafeSlow(Math.max(length, scratch.length * 2));
  return scratch;
}

/** Where an engine seal() builds the datagram it returns: shared, so good until the next seal(). */
let engineScratch = Buffer.allocUnsafeSlow(2048);

function engineScratchOf(length: number): Buffer {
  if (engineScratch.length < length)
    engineScratch = Buffer.allocUnsafeSlow(Math.max(length, engineScratch.length * 2));
  return engineScratch;
}

function checkKey(key: Buffer): Buffer {
  if (key.length !== BLOCK) throw new RangeError(`an AES-128 key is 16 bytes, got ${key.length}`);
  return key;
}

function checkHmacLength(length: number): number {
  if (!Number.isInteger(length) || length < MIN_HMAC_LENGTH || length > MAX_HMAC_LENGTH) {
    throw new RangeError(`HMAC length must be an integer in 4..32 (RFC 7425 §4.6.4), got ${length}`);
  }
  return length;
}

function xorBlock(buf: Buffer, at: number, mask: Buffer): void {
  for (let i = 0; i < BLOCK; i++) buf[at + i] ^= mask[i];
}

/** RFC 7016 §2.1.2 VLU written in place; returns the offset after it. */
function writeVlu(buf: Buffer, pos: number, value: number): number {
  const n = vluLength(value);
  for (let i = n - 1; i >= 0; i--) {
    buf[pos + i] = (value % 128) | (i === n - 1 ? 0 : 0x80);
    value = Math.floor(value / 128);
  }
  return pos + n;
}
