import { randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';
import { type Address, addressKey } from './address.ts';
import { PrekeyedHmac } from './hmac.ts';

/** librtmfp accepts only 64-byte cookies (RTMFP-NOTES §3.1). */
export const COOKIE_LENGTH = 64;
/** rtmfp-cpp gives up opening a session after 95 s; a cookie lives as long. */
export const COOKIE_LIFETIME_MS = 95_000;

const TIME = 4;
const NONCE = 12;
const STAMP = 16;
// time(4) ‖ nonce(12) ‖ stamp = HMAC(time‖nonce)[0..16] ‖ binding = HMAC(time‖nonce‖address)[0..32]
const BINDING_AT = TIME + NONCE + STAMP;
/** Nonces drawn from the CSPRNG at once: one call per cookie costs more than the rest of make(). */
const NONCES_PER_DRAW = 256;
/** time‖nonce‖"address|port": an IPv6 address with a zone and port stays well under this. */
const BINDING_INPUT_MAX = TIME + NONCE + 128;

export type CookieCheck = 'valid' | 'expired' | 'forged' | 'moved';

/**
 * Stateless RHello cookies (RFC 7016 §3.5.1): everything needed to check one is inside it,
 * MACed with a per-node secret, so an IHello flood allocates no per-source state. The stamp
 * proves we issued the cookie; the binding ties it to the address it was issued to, so a
 * valid cookie from another address is a 'moved' one (answered with RHello Cookie Change).
 */
export class CookieJar {
  private readonly mac: PrekeyedHmac;
  private readonly nonces = Buffer.alloc(NONCE * NONCES_PER_DRAW);
  private noncesUsed = NONCES_PER_DRAW;
  private readonly bindingInput = Buffer.alloc(BINDING_INPUT_MAX);

  constructor(secret: Buffer = randomBytes(32)) {
    this.mac = new PrekeyedHmac(secret);
  }

  make(to: Address, nowMs: number): Buffer {
    const cookie = Buffer.allocUnsafe(COOKIE_LENGTH);
    cookie.writeUInt32BE(Math.floor(nowMs / 1000) >>> 0, 0);
    if (this.noncesUsed === NONCES_PER_DRAW) {
      randomFillSync(this.nonces);
      this.noncesUsed = 0;
    }
    const at = NONCE * this.noncesUsed++;
    this.nonces.copy(cookie, TIME, at, at + NONCE);
    this.stamp(cookie).copy(cookie, TIME + NONCE);
    this.binding(cookie, to).copy(cookie, BINDING_AT);
    return cookie;
  }

  check(cookie: Buffer, from: Address, nowMs: number): CookieCheck {
    if (cookie.length !== COOKIE_LENGTH) return 'forged';
    if (!timingSafeEqual(this.stamp(cookie), cookie.subarray(TIME + NONCE, BINDING_AT))) return 'forged';
    // The issue time is kept in whole seconds: counting from the start of that second keeps a
    // cookie from outliving COOKIE_LIFETIME_MS (it may expire up to 1 s early, never late).
    const age = nowMs - cookie.readUInt32BE(0) * 1000;
    if (age < -1000 || age > COOKIE_LIFETIME_MS) return 'expired';
    if (!timingSafeEqual(this.binding(cookie, from), cookie.subarray(BINDING_AT))) return 'moved';
    return 'valid';
  }

  private stamp(cookie: Buffer): Buffer {
    return this.mac.digest(cookie.subarray(0, TIME + NONCE)).subarray(0, STAMP);
  }

  /** HMAC(secret, time‖nonce‖"address|port"), with the pre-keyed hash the stamp uses. */
  private binding(cookie: Buffer, address: Address): Buffer {
    const input = this.bindingInput;
    cookie.copy(input, 0, 0, TIME + NONCE);
    const end = TIME + NONCE + input.write(addressKey(address), TIME + NONCE);
    // A full buffer may mean a cut-off address: refuse rather than bind the cookie to a prefix.
    if (end === input.length)
      throw new RangeError(`cookie: address "${addressKey(address)}" is longer than any IP address`);
    return this.mac.digest(input.subarray(0, end));
  }
}
