import { hash } from 'node:crypto';

const SHA256_BLOCK = 64;
const SHA256_LENGTH = 32;
const IPAD = 0x36;
const OPAD = 0x5c;

/**
 * Where PrekeyedHmac builds K⊕ipad ‖ m: one buffer for every key, since a digest is computed
 * within one synchronous call. A buffer per key would pin 2 kB per session.
 */
let innerScratch = Buffer.allocUnsafeSlow(2048);

/**
 * HMAC-SHA256 (RFC 2104) = SHA256(K⊕opad ‖ SHA256(K⊕ipad ‖ m)) with the padded keys written
 * once: per message, K⊕ipad and m go into a scratch buffer and two one-shot hashes run.
 * Measured 2.8 µs for 1,200 B, against 3.5 µs copying pre-keyed Hash objects and 16 µs for
 * createHmac.
 *
 * The hashes come back as latin1 ('binary') strings, written into place: a Buffer result is a
 * native allocation (malloc, a backing store, a weak handle for the GC to finalise) and cost
 * 4.2 µs a hash against 1.9 µs for the string, two hashes per packet each way (Node 24.21).
 */
export class PrekeyedHmac {
  private readonly ipad = Buffer.alloc(SHA256_BLOCK);
  /** K⊕opad, then room for the inner digest. */
  private readonly outer = Buffer.alloc(SHA256_BLOCK + SHA256_LENGTH);

  constructor(key: Buffer) {
    const k = Buffer.alloc(SHA256_BLOCK);
    (key.length > SHA256_BLOCK ? hash('sha256', key, 'buffer') : key).copy(k);
    for (let i = 0; i < SHA256_BLOCK; i++) {
      this.ipad[i] = k[i] ^ IPAD;
      this.outer[i] = k[i] ^ OPAD;
    }
  }

  digest(message: Buffer): Buffer {
    const out = Buffer.allocUnsafe(SHA256_LENGTH);
    this.digestInto(message, out, 0, SHA256_LENGTH);
    return out;
  }

  /** Writes the first `length` bytes (≤ 32) of the HMAC of `message` into `target` at `offset`. */
  digestInto(message: Buffer, target: Buffer, offset: number, length: number): void {
    const inputLength = SHA256_BLOCK + message.length;
    if (innerScratch.length < inputLength)
      innerScratch = Buffer.allocUnsafeSlow(Math.max(inputLength, innerScratch.length * 2));
    const inner = innerScratch;
    this.ipad.copy(inner, 0);
    message.copy(inner, SHA256_BLOCK);
    this.outer.write(hash('sha256', inner.subarray(0, inputLength), 'binary'), SHA256_BLOCK, 'binary');
    target.write(hash('sha256', this.outer, 'binary'), offset, length, 'binary');
  }
}

/**
 * One-shot HMAC-SHA256 (RFC 2104) over the concatenation of `parts`, from two one-shot
 * hashes. createHmac costs ~15 µs per call here, most of it checking the key's type.
 */
export function hmacSha256(key: Buffer, ...parts: Buffer[]): Buffer {
  const k = hmacKey(key);
  const inner = Buffer.allocUnsafe(SHA256_BLOCK + parts.reduce((n, p) => n + p.length, 0));
  const outer = Buffer.allocUnsafe(SHA256_BLOCK + SHA256_LENGTH);
  for (let i = 0; i < SHA256_BLOCK; i++) {
    const b = i < k.length ? k[i] : 0;
    inner[i] = b ^ IPAD;
    outer[i] = b ^ OPAD;
  }
  let at = SHA256_BLOCK;
  for (const p of parts) at += p.copy(inner, at);
  hash('sha256', inner, 'buffer').copy(outer, SHA256_BLOCK);
  return hash('sha256', outer, 'buffer');
}

/**
 * RFC 2104 §2: a key longer than the hash's block is used as its hash. Reduce a long key once
 * with this when it keys several HMACs; the HMACs come out the same.
 */
export function hmacKey(key: Buffer): Buffer {
  return key.length > SHA256_BLOCK ? hash('sha256', key, 'buffer') : key;
}
