/**
 * AES-128-CBC with a zero IV, in place: the Flash-profile packet cipher (RFC 7425 §4.6.5)
 * without Node's Cipher objects, each of whose update() calls allocates its output. The host
 * supplies one (runtime/host/native-packet.ts); with none, PacketCipher uses node:crypto.
 */
export interface AesEngine {
  /** Expands a 16-byte key into `out` (AES_ROUND_KEYS_BYTES): what encryptCbc/decryptCbc take. */
  expandKey(key: Buffer, out: Buffer): void;
  /** Encrypts buf[start, end) in place, CBC from a zero IV; end − start a multiple of 16. */
  encryptCbc(roundKeys: Buffer, buf: Buffer, start: number, end: number): void;
  /** Decrypts buf[start, end) in place, CBC from a zero IV; end − start a multiple of 16. */
  decryptCbc(roundKeys: Buffer, buf: Buffer, start: number, end: number): void;
}

/** AES-128's 11 encryption round keys, then the 11 of the equivalent inverse cipher. */
export const AES_ROUND_KEYS_BYTES = 2 * 11 * 16;
