import {
  createDiffieHellman,
  createPrivateKey,
  createPublicKey,
  type DiffieHellman,
  type DiffieHellmanGroup,
  diffieHellman,
  getDiffieHellman,
  KeyObject,
  randomBytes,
} from 'node:crypto';
import { ProtocolError } from './errors.ts';

/**
 * Diffie-Hellman for the Flash profile (RFC 7425 §4.6): MODP groups 2 (RFC 2409 §6.2),
 * 14 (RFC 3526 §3) and 16 (RFC 3526 §5), generator 2. Public keys and shared secrets are
 * minimal big-endian byte strings: the key derivation HMACs the secret's bytes, so a
 * left-padded secret would change every session key (RTMFP-NOTES pitfall 5).
 */

/** Groups we compute, in the order an initiator prefers them (strongest first, as rtmfp-cpp). */
export const SUPPORTED_DH_GROUPS: readonly number[] = [16, 14, 2];

export interface DHKeyPair {
  group: number;
  /** Minimal big-endian g^x mod p. */
  publicKey: Buffer;
  /** The exponent x, big-endian. */
  privateKey: Buffer;
}

interface GroupParams {
  prime: Buffer;
  /** DER AlgorithmIdentifier { dhKeyAgreement, DHParameter { p, g } }, reused for every key. */
  algorithm: Buffer;
  /** p − 2^24, minimal big-endian: the largest public key RFC 7425 §4.6.2 accepts. */
  maxPublic: Buffer;
  /**
   * How pairs are computed; both ways cost 0.1–0.15 ms less per handshake than KeyObjects
   * (no PKCS #8 import, SPKI export or peer key import each time).
   * 'named' (14, 16: RFC 3526's modp_2048 and modp_4096, which OpenSSL knows by name): a fresh
   * pair from a DiffieHellmanGroup, with OpenSSL's exponent length (RFC 7919 §5.2: at most 325
   * bits in 4096-bit groups). A chosen exponent (tests, vectors) goes through a PKCS #8
   * KeyObject: a DiffieHellmanGroup takes none, and createDiffieHellman(prime) checks the prime
   * for 0.3 s (14) or 4 s (16).
   * 'shared' (2, which OpenSSL does not name: a DiffieHellmanGroup of it would check the prime
   * every time, 36 ms, and use 1024-bit exponents): one DiffieHellman per thread, its prime
   * checked once, given the exponent before each use.
   */
  engine: 'named' | 'shared';
  /** Exponent length of a 'shared' group: twice its security strength, as rtmfp-cpp (224 bits). */
  exponentBytes: number;
  /** The thread's DiffieHellman of a 'shared' group, made on first use. */
  shared: DiffieHellman | undefined;
}

const NODE_GROUP_NAME: Record<number, string> = { 2: 'modp2', 14: 'modp14', 16: 'modp16' };
const ENGINE: Record<number, { engine: GroupParams['engine']; exponentBytes: number }> = {
  2: { engine: 'shared', exponentBytes: 28 },
  14: { engine: 'named', exponentBytes: 0 },
  16: { engine: 'named', exponentBytes: 0 },
};
const MIN_PUBLIC = 1n << 24n;
/** Bytes of 2^24, the smallest public key RFC 7425 §4.6.2 accepts. */
const MIN_PUBLIC_BYTES = 4;
/** RFC 7425 §4.6.2: a public key needs this many 0 bits and this many 1 bits. */
const MIN_BITS_EACH = 16;
/** PKCS #3 dhKeyAgreement, 1.2.840.113549.1.3.1. */
const DH_OID = Buffer.from('06092a864886f70d010301', 'hex');
const GENERATOR = Buffer.from([2]);

const groups = new Map<number, GroupParams>();

function params(group: number): GroupParams {
  let p = groups.get(group);
  if (p) return p;
  const name = NODE_GROUP_NAME[group];
  if (!name) throw new ProtocolError('bad-dh-group', `DH group ${group} is not supported (have 16, 14, 2)`);
  const prime = getDiffieHellman(name).getPrime();
  p = {
    prime,
    algorithm: der(
      0x30,
      Buffer.concat([DH_OID, der(0x30, Buffer.concat([derUInt(prime), derUInt(GENERATOR)]))]),
    ),
    maxPublic: fromBigInt(toBigInt(prime) - MIN_PUBLIC),
    ...ENGINE[group],
    shared: undefined,
  };
  groups.set(group, p);
  return p;
}

function sharedDH(p: GroupParams): DiffieHellman {
  p.shared ??= createDiffieHellman(p.prime, GENERATOR);
  return p.shared;
}

/**
 * What computed the pairs made here in 'named' groups, by their private key, so computeDHSecret
 * neither re-imports the exponent (an import recomputes the public key: a whole extra modular
 * exponentiation, 1.8 ms in group 16) nor redoes any setup. Keys that arrive from elsewhere
 * (another thread, a test vector) are imported.
 */
const keyHolders = new WeakMap<Buffer, KeyObject | DiffieHellmanGroup>();

/**
 * A key pair in `group`; pass `privateKey` to rebuild a known pair (tests, vectors). How the
 * pair is computed depends on the group (GroupParams.engine).
 */
export function generateDHKeyPair(group: number, privateKey?: Buffer): DHKeyPair {
  const p = params(group);
  if (p.engine === 'shared') {
    let x = privateKey;
    if (!x) {
      x = randomBytes(p.exponentBytes);
      x[0] |= 0x80; // full length, like rtmfp-cpp's BN_RAND_TOP_ONE
    }
    const dh = sharedDH(p);
    dh.setPrivateKey(x);
    return { group, publicKey: stripLeadingZeros(dh.generateKeys()), privateKey: x };
  }
  if (!privateKey) {
    const dh = getDiffieHellman(NODE_GROUP_NAME[group]);
    const publicKey = stripLeadingZeros(dh.generateKeys());
    const x = dh.getPrivateKey();
    keyHolders.set(x, dh);
    return { group, publicKey, privateKey: x };
  }
  const key = importPrivateKey(p, privateKey);
  keyHolders.set(privateKey, key);
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return { group, publicKey: publicKeyFromSpki(spki), privateKey };
}

/**
 * The shared secret (peer public key)^x mod p, minimal big-endian. Throws
 * ProtocolError('bad-dh-key') for a public key RFC 7425 §4.6.2 forbids.
 */
export function computeDHSecret(group: number, privateKey: Buffer, peerPublicKey: Buffer): Buffer {
  const p = params(group);
  validatePublicKey(p, peerPublicKey);
  if (p.engine === 'shared') {
    const dh = sharedDH(p);
    dh.setPrivateKey(privateKey);
    return stripLeadingZeros(dh.computeSecret(peerPublicKey));
  }
  const holder = keyHolders.get(privateKey);
  if (holder && !(holder instanceof KeyObject)) return stripLeadingZeros(holder.computeSecret(peerPublicKey));
  const key = holder ?? importPrivateKey(p, privateKey);
  const spki = der(
    0x30,
    Buffer.concat([p.algorithm, der(0x03, Buffer.concat([ZERO, derUInt(peerPublicKey)]))]),
  );
  const peer = createPublicKey(pem('PUBLIC KEY', spki));
  return stripLeadingZeros(diffieHellman({ privateKey: key, publicKey: peer }));
}

/** Imports the exponent x as a PKCS #8 key, which makes OpenSSL compute g^x mod p. */
function importPrivateKey(p: GroupParams, x: Buffer): KeyObject {
  return createPrivateKey(
    pem('PRIVATE KEY', der(0x30, Buffer.concat([DER_VERSION_0, p.algorithm, der(0x04, derUInt(x))]))),
  );
}

/**
 * RFC 7468 text for a DER key. Keys go in as PEM strings: given an object or a Buffer, Node
 * first rules out a KeyObject and a CryptoKey by catching thrown TypeErrors (2–4 per import,
 * 10–30 µs in all), which a string skips; OpenSSL's PEM decoding costs less than that.
 */
function pem(label: string, der: Buffer): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64')}\n-----END ${label}-----\n`;
}

/**
 * RFC 7425 §4.6.2: 2^24 ≤ y ≤ p − 2^24, with at least 16 zero bits and 16 one bits. Bits are
 * counted from the first non-zero byte on, whole bytes, as rtmfp-cpp `validate_public` does.
 */
function validatePublicKey(p: GroupParams, y: Buffer): void {
  // Compared as bytes, not BigInts: parsing a 4096-bit BigInt from hex for every handshake, and
  // optimising the function that does it, cost more than the comparison. Without leading zero
  // bytes, y ≥ 2^24 exactly when it has at least 4 bytes.
  const value = stripLeadingZeros(y);
  const max = p.maxPublic;
  if (
    value.length < MIN_PUBLIC_BYTES ||
    value.length > max.length ||
    (value.length === max.length && value.compare(max) > 0)
  ) {
    throw new ProtocolError('bad-dh-key', 'DH public key outside [2^24, p - 2^24] (RFC 7425 §4.6.2)');
  }
  let ones = 0;
  let counted = 0;
  for (const b of value) {
    counted += 8;
    for (let v = b; v !== 0; v &= v - 1) ones++;
  }
  if (ones < MIN_BITS_EACH || counted - ones < MIN_BITS_EACH) {
    throw new ProtocolError(
      'bad-dh-key',
      'DH public key has fewer than 16 zero or one bits (RFC 7425 §4.6.2)',
    );
  }
}

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return i === 0 ? b : b.subarray(i);
}

function toBigInt(b: Buffer): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${b.toString('hex')}`);
}

function fromBigInt(v: bigint): Buffer {
  const hex = v.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
}

// --- the little DER the key import/export needs (X.690)

const DER_VERSION_0 = Buffer.from([0x02, 0x01, 0x00]);
const ZERO = Buffer.from([0]);

function der(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let head: number[];
  if (n < 0x80) head = [tag, n];
  else if (n < 0x100) head = [tag, 0x81, n];
  else head = [tag, 0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from(head), body]);
}

/** DER INTEGER of an unsigned big-endian number. */
function derUInt(b: Buffer): Buffer {
  const v = stripLeadingZeros(b);
  return der(0x02, v[0] & 0x80 ? Buffer.concat([ZERO, v]) : v);
}

/** Walks SubjectPublicKeyInfo { AlgorithmIdentifier, BIT STRING { INTEGER y } } to y. */
function publicKeyFromSpki(spki: Buffer): Buffer {
  let pos = 0;
  const enter = (tag: number): number => {
    if (spki[pos] !== tag) throw new Error(`unexpected DER tag ${spki[pos]} in exported DH key`);
    let len = spki[pos + 1];
    pos += 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + spki[pos++];
    }
    return len;
  };
  enter(0x30);
  const algorithmLength = enter(0x30);
  pos += algorithmLength;
  enter(0x03);
  pos += 1; // unused-bits count of the BIT STRING
  const len = enter(0x02);
  return stripLeadingZeros(spki.subarray(pos, pos + len));
}
