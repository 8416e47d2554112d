import {
  type Cipheriv,
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type Decipheriv,
  timingSafeEqual,
} from 'node:crypto';
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
 * restores the zero IV by hand (see seal/open).
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
}

/**
 * One session's packet cipher. Not safe to share across sessions that use sequence numbers;
 * every call is synchronous, so the CBC chain state it carries between calls stays exact.
 */
export class PacketCipher {
  private readonly encryptor: Cipheriv;
  private readonly decryptor: Decipheriv;
  /** The CBC state the long-lived cipher/decipher continue from: their last ciphertext block. */
  private readonly encryptChain: Buffer;
  private readonly decryptChain = Buffer.alloc(BLOCK);
  /** AES_K(0^16): the ciphertext of the lead block seal() feeds in, see there. */
  private readonly leadBlock: Buffer;
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
    // Keys go in as KeyObjects: given a Buffer, createCipheriv first rules out a KeyObject and a
    // CryptoKey by catching two thrown TypeErrors, 10–30 µs per call (one session setup paid ~70 µs).
    this.encryptor = createCipheriv('aes-128-cbc', createSecretKey(o.encryptKey), ZERO_BLOCK).setAutoPadding(
      false,
    );
    this.decryptor = createDecipheriv(
      'aes-128-cbc',
      createSecretKey(o.decryptKey),
      ZERO_BLOCK,
    ).setAutoPadding(false);
    // The fresh cipher's first block is AES(0 ⊕ IV 0) = AES(0), which is also its chain state.
    this.leadBlock = this.encryptor.update(ZERO_BLOCK);
    this.encryptChain = Buffer.from(this.leadBlock);
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
   * Encrypts `packet` (from its flags byte; not kept) into a whole datagram for `sessionId`.
   *
   * Zero IV on a long-lived CBC cipher: the input starts with a lead block equal to the
   * cipher's chain state C, which encrypts to AES(C ⊕ C) = AES(0) = leadBlock; XORing
   * leadBlock into the first plaintext block then makes the rest equal a fresh zero-IV
   * encryption. The lead block's output is where the session ID goes, and extra blocks after
   * the ciphertext make room for the HMAC, so update()'s own output is the datagram: no copy.
   */
  seal(packet: Buffer, sessionId: number): Buffer {
    const sseqLength = this.sendSseq ? vluLength(this.nextSseq) : 0;
    const checksumLength = this.sendMac ? 0 : CHECKSUM_LENGTH;
    const plainLength = sseqLength + checksumLength + packet.length;
    const padded = Math.max(BLOCK, Math.ceil(plainLength / BLOCK) * BLOCK);
    const macLength = this.sendMacLength;
    const inputLength = BLOCK + padded + Math.ceil(macLength / BLOCK) * BLOCK;
    const input = scratchOf(inputLength);

    this.encryptChain.copy(input, 0);
    let pos = BLOCK;
    if (this.sendSseq) pos = writeVlu(input, pos, this.nextSseq++);
    const checksumAt = pos;
    pos += checksumLength;
    pos += packet.copy(input, pos);
    const plainEnd = BLOCK + padded;
    input.fill(0xff, pos, plainEnd);
    if (checksumLength)
      input.writeUInt16BE(checksum(input, checksumAt + CHECKSUM_LENGTH, plainEnd), checksumAt);
    xorBlock(input, BLOCK, this.leadBlock);
    input.fill(0, plainEnd, inputLength);

    const out = this.encryptor.update(input.subarray(0, inputLength));
    out.copy(this.encryptChain, 0, inputLength - BLOCK, inputLength);
    const scrambled = sessionId ^ out.readUInt32BE(BLOCK) ^ out.readUInt32BE(BLOCK + 4);
    out.writeUInt32BE(scrambled >>> 0, BLOCK - SESSION_ID_LENGTH);
    if (this.sendMac) this.sendMac.digestInto(out.subarray(BLOCK, plainEnd), out, plainEnd, macLength);
    return out.subarray(BLOCK - SESSION_ID_LENGTH, plainEnd + macLength);
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

    // The long-lived decipher XORs its chain state into the first block instead of the zero
    // IV; XOR it back out, then remember this packet's last block as the new state.
    const plain = this.decryptor.update(ciphertext);
    xorBlock(plain, 0, this.decryptChain);
    ciphertext.copy(this.decryptChain, 0, cipherLength - BLOCK, cipherLength);

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
