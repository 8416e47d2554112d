import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { COOKIE_LENGTH, COOKIE_LIFETIME_MS, CookieJar } from '../../runtime/rtmfp/cookie.ts';

const client = { address: '192.0.2.99', port: 50000 };
const secret = Buffer.alloc(32, 7);
const T0 = 1_700_000_000_123;

describe('RHello cookies', () => {
  test('are 64 bytes long', () => {
    const cookie = new CookieJar(secret).make(client, T0);
    assert.equal(COOKIE_LENGTH, 64);
    assert.equal(cookie.length, 64);
  });

  test('two cookies for the same address and time differ', () => {
    const jar = new CookieJar(secret);
    assert.notDeepEqual(jar.make(client, T0), jar.make(client, T0));
  });

  test('a cookie echoed from the address it was issued to is valid', () => {
    const jar = new CookieJar(secret);
    const cookie = jar.make(client, T0);
    assert.equal(jar.check(cookie, client, T0), 'valid');
    assert.equal(jar.check(cookie, { ...client }, T0 + 30_000), 'valid');
  });

  test('a cookie is valid on another node that shares the secret', () => {
    const cookie = new CookieJar(secret).make(client, T0);
    assert.equal(new CookieJar(Buffer.from(secret)).check(cookie, client, T0 + 1), 'valid');
  });

  test('a cookie echoed from another port or host has moved', () => {
    const jar = new CookieJar(secret);
    const cookie = jar.make(client, T0);
    assert.equal(jar.check(cookie, { address: client.address, port: 50001 }, T0 + 10), 'moved');
    assert.equal(jar.check(cookie, { address: '192.0.2.98', port: client.port }, T0 + 10), 'moved');
    assert.equal(jar.check(cookie, { address: '2001:db8::63', port: client.port }, T0 + 10), 'moved');
  });

  test('a cookie is valid up to 95 s after it was issued', () => {
    const jar = new CookieJar(secret);
    for (const issued of [T0 - 123, T0, T0 + 500, T0 + 877]) {
      const cookie = jar.make(client, issued);
      assert.equal(
        jar.check(cookie, client, issued + COOKIE_LIFETIME_MS - 1000),
        'valid',
        `issued ${issued}`,
      );
    }
  });

  test('a cookie older than 95 s has expired, whatever millisecond it was issued at', () => {
    const jar = new CookieJar(secret);
    for (const issued of [T0 - 123, T0, T0 + 500, T0 + 877]) {
      const cookie = jar.make(client, issued);
      for (const age of [
        COOKIE_LIFETIME_MS + 1,
        COOKIE_LIFETIME_MS + 400,
        COOKIE_LIFETIME_MS + 1000,
        3_600_000,
      ]) {
        assert.equal(jar.check(cookie, client, issued + age), 'expired', `issued ${issued}, age ${age}`);
      }
    }
  });

  test('a cookie from the future (beyond clock jitter) has expired', () => {
    const jar = new CookieJar(secret);
    const cookie = jar.make(client, T0 + 10_000);
    assert.equal(jar.check(cookie, client, T0), 'expired');
  });

  test('flipping any bit of the time, nonce or stamp makes it forged', () => {
    const jar = new CookieJar(secret);
    const cookie = jar.make(client, T0);
    for (let byte = 0; byte < 32; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = Buffer.from(cookie);
        bad[byte] ^= 1 << bit;
        assert.equal(jar.check(bad, client, T0), 'forged', `byte ${byte} bit ${bit}`);
      }
    }
  });

  test('flipping a bit of the address binding reads as a move, never as valid', () => {
    // The binding can only be checked against the sender's address, so a damaged binding is
    // indistinguishable from a cookie replayed from elsewhere: it earns a Cookie Change, no session.
    const jar = new CookieJar(secret);
    const cookie = jar.make(client, T0);
    for (let byte = 32; byte < 64; byte++) {
      const bad = Buffer.from(cookie);
      bad[byte] ^= 0x10;
      assert.equal(jar.check(bad, client, T0), 'moved', `byte ${byte}`);
    }
  });

  test('a cookie of the wrong length is forged', () => {
    const jar = new CookieJar(secret);
    const cookie = jar.make(client, T0);
    assert.equal(jar.check(cookie.subarray(0, 63), client, T0), 'forged');
    assert.equal(jar.check(Buffer.concat([cookie, Buffer.alloc(1)]), client, T0), 'forged');
    assert.equal(jar.check(Buffer.alloc(0), client, T0), 'forged');
  });

  test('the layout is time, nonce, HMAC stamp, HMAC of time‖nonce‖"address|port" (nodes of any version agree)', () => {
    const mac = (m: Buffer) => createHmac('sha256', secret).update(m).digest();
    const jar = new CookieJar(secret);
    for (const to of [client, { address: 'fe80::1:2:3:4%eth0', port: 65535 }]) {
      const cookie = jar.make(to, T0);
      assert.equal(cookie.readUInt32BE(0), Math.floor(T0 / 1000));
      const timeAndNonce = cookie.subarray(0, 16);
      assert.deepEqual(cookie.subarray(16, 32), mac(timeAndNonce).subarray(0, 16));
      assert.deepEqual(
        cookie.subarray(32),
        mac(Buffer.concat([timeAndNonce, Buffer.from(`${to.address}|${to.port}`)])),
      );
    }
  });

  test('nonces differ across many cookies', () => {
    const jar = new CookieJar(secret);
    const nonces = new Set<string>();
    for (let i = 0; i < 1000; i++) nonces.add(jar.make(client, T0).subarray(4, 16).toString('hex'));
    assert.equal(nonces.size, 1000);
  });

  test('a cookie made with another secret is forged', () => {
    const cookie = new CookieJar(Buffer.alloc(32, 8)).make(client, T0);
    assert.equal(new CookieJar(secret).check(cookie, client, T0), 'forged');
  });
});
