import assert from 'node:assert/strict';
import { createHash, getDiffieHellman } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseCertificate } from '../../runtime/rtmfp/certificate.ts';
import { computeDHSecret, generateDHKeyPair, SUPPORTED_DH_GROUPS } from '../../runtime/rtmfp/dh.ts';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';
import { parseKeyingComponent } from '../../runtime/rtmfp/keying.ts';

interface Derivation {
  name: string;
  dhGroup: number;
  initiatorDHPrivateExponentHex: string;
  responderDHPrivateExponentHex: string;
  skicHex: string;
  skrcHex: string;
  sharedSecretHex: string;
}

const load = (name: string) =>
  readFileSync(new URL(`../fixtures/vectors/${name}.json`, import.meta.url), 'utf8');
const cryptoVectors: { derivations: Derivation[] } = JSON.parse(load('crypto'));
const certVectors: {
  staticDHClientCertificate: { dhPrivateExponentHex: string; dhPublicKeyHex: string };
  tcconnClientCertificate: { hex: string; dhPrivateExponentsHex: { group: number; hex: string }[] };
} = JSON.parse(load('certificate'));
const hex = (s: string) => Buffer.from(s, 'hex');

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}
const big = (b: Buffer) => BigInt(`0x${b.toString('hex')}`);

function assertBadKey(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof ProtocolError && e.reason === 'bad-dh-key');
}

describe('dh', () => {
  test('prefers groups 16, 14, 2 in that order', () => {
    assert.deepEqual(SUPPORTED_DH_GROUPS, [16, 14, 2]);
  });

  test('rebuilds the Flash-like client public key from its private exponent', () => {
    const v = certVectors.staticDHClientCertificate;
    const pair = generateDHKeyPair(2, hex(v.dhPrivateExponentHex));
    assert.equal(pair.publicKey.toString('hex'), v.dhPublicKeyHex);
    assert.equal(pair.group, 2);
  });

  test("rebuilds tcconn's group 16, 14 and 2 public keys", () => {
    const v = certVectors.tcconnClientCertificate;
    const keys = parseCertificate(hex(v.hex)).staticKeys;
    for (const { group, hex: exponent } of v.dhPrivateExponentsHex) {
      assert.deepEqual(generateDHKeyPair(group, hex(exponent)).publicKey, keys.get(group));
    }
  });

  for (const d of cryptoVectors.derivations) {
    test(`computes the ${d.name} shared secret on both sides`, () => {
      const skic = parseKeyingComponent(hex(d.skicHex));
      const skrc = parseKeyingComponent(hex(d.skrcHex));
      const initiator = generateDHKeyPair(d.dhGroup, hex(d.initiatorDHPrivateExponentHex));
      const responder = generateDHKeyPair(d.dhGroup, hex(d.responderDHPrivateExponentHex));
      assert.deepEqual(responder.publicKey, skrc.ephemeralKey?.publicKey);
      if (skic.ephemeralKey) assert.deepEqual(initiator.publicKey, skic.ephemeralKey.publicKey);
      const secret = hex(d.sharedSecretHex);
      assert.deepEqual(computeDHSecret(d.dhGroup, initiator.privateKey, responder.publicKey), secret);
      assert.deepEqual(computeDHSecret(d.dhGroup, responder.privateKey, initiator.publicKey), secret);
    });
  }

  for (const group of [2, 14, 16]) {
    test(`agrees on a secret between two fresh group ${group} pairs`, () => {
      const a = generateDHKeyPair(group);
      const b = generateDHKeyPair(group);
      assert.notDeepEqual(a.privateKey, b.privateKey);
      assert.ok(a.publicKey[0] !== 0 && b.publicKey[0] !== 0, 'public keys are minimal');
      const secret = computeDHSecret(group, a.privateKey, b.publicKey);
      assert.deepEqual(computeDHSecret(group, b.privateKey, a.publicKey), secret);
      const p = big(getDiffieHellman(`modp${group}`).getPrime());
      assert.equal(big(secret), modPow(big(b.publicKey), big(a.privateKey), p));
      assert.equal(big(a.publicKey), modPow(2n, big(a.privateKey), p));
      // Short exponents (RFC 3526 §8, RFC 7919 §5.2): a 4096-bit one would cost 12× the time.
      assert.ok(a.privateKey.length <= 41, `${a.privateKey.length}-byte exponent`);
    });
  }

  test('also computes from a private key it did not generate (imported)', () => {
    const a = generateDHKeyPair(14);
    const b = generateDHKeyPair(14);
    const copied = Buffer.from(a.privateKey);
    assert.deepEqual(
      computeDHSecret(14, copied, b.publicKey),
      computeDHSecret(14, a.privateKey, b.publicKey),
    );
  });

  test('strips a leading zero byte from the shared secret (Node pads it to 128 bytes)', () => {
    const p = big(getDiffieHellman('modp2').getPrime());
    const peer = generateDHKeyPair(2, createHash('sha256').update('peer').digest().subarray(0, 28));
    let found = false;
    for (let i = 0; i < 2000 && !found; i++) {
      const x = createHash('sha256').update(`private ${i}`).digest().subarray(0, 28);
      x[0] |= 0x80;
      const expected = modPow(big(peer.publicKey), big(x), p);
      if (expected >= 1n << 1016n) continue; // its 128-byte form does not start with 00
      found = true;
      const secret = computeDHSecret(2, x, peer.publicKey);
      assert.ok(secret.length < 128, `secret is ${secret.length} bytes`);
      assert.notEqual(secret[0], 0);
      assert.equal(big(secret), expected);
      assert.deepEqual(computeDHSecret(2, peer.privateKey, generateDHKeyPair(2, x).publicKey), secret);
    }
    assert.ok(found, 'a private key giving a secret with a leading zero byte');
  });

  test('rejects public keys outside [2^24, p - 2^24] (RFC 7425 §4.6.2)', () => {
    const me = generateDHKeyPair(2);
    const p = big(getDiffieHellman('modp2').getPrime());
    const toBuf = (n: bigint) => hex(n.toString(16).padStart(256, '0'));
    assertBadKey(() => computeDHSecret(2, me.privateKey, toBuf((1n << 24n) - 1n)));
    assertBadKey(() => computeDHSecret(2, me.privateKey, toBuf(p - (1n << 24n) + 1n)));
    assertBadKey(() => computeDHSecret(2, me.privateKey, toBuf(p - 1n)));
    assertBadKey(() => computeDHSecret(2, me.privateKey, Buffer.alloc(0)));
    assertBadKey(() => computeDHSecret(2, me.privateKey, Buffer.concat([Buffer.from([1]), toBuf(p)])));
    // p - 2^24 itself has enough 0 and 1 bits and is the largest key allowed, padded or not
    assert.equal(computeDHSecret(2, me.privateKey, toBuf(p - (1n << 24n))).length > 0, true);
    const padded = Buffer.concat([Buffer.alloc(3), toBuf(p - (1n << 24n))]);
    assert.deepEqual(
      computeDHSecret(2, me.privateKey, padded),
      computeDHSecret(2, me.privateKey, toBuf(p - (1n << 24n))),
    );
    // 0x01007fff: four bytes, so ≥ 2^24, with 16 one bits and 16 zero bits
    assert.ok(computeDHSecret(2, me.privateKey, hex('0001007fff')).length > 0);
  });

  test('rejects public keys with fewer than 16 one bits or 16 zero bits (RFC 7425 §4.6.2)', () => {
    const me = generateDHKeyPair(2);
    const fewOnes = Buffer.alloc(100);
    fewOnes[0] = 0x01;
    fewOnes[50] = 0xff; // 9 one bits
    assertBadKey(() => computeDHSecret(2, me.privateKey, fewOnes));
    const fewZeros = Buffer.alloc(100, 0xff);
    fewZeros[0] = 0x7f;
    fewZeros[10] = 0x00; // 9 zero bits
    assertBadKey(() => computeDHSecret(2, me.privateKey, fewZeros));
    fewZeros[11] = 0x00; // 17 zero bits: allowed
    assert.ok(computeDHSecret(2, me.privateKey, fewZeros).length > 0);
  });

  test('rejects a group it does not implement', () => {
    assert.throws(
      () => generateDHKeyPair(5),
      (e: unknown) => e instanceof ProtocolError && e.reason === 'bad-dh-group',
    );
  });
});
