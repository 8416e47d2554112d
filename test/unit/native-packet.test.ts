import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { loadNativePacket, socketDescriptor } from '../../runtime/host/native-packet.ts';
import { AES_ROUND_KEYS_BYTES } from '../../runtime/rtmfp/aes-engine.ts';

const { native, reason } = loadNativePacket();
const hex = (s: string) => Buffer.from(s, 'hex');

/** Where `npm install` can build it: an x86-64 machine with a C compiler. There it must be built. */
function buildable(): boolean {
  if (process.arch !== 'x64') return false;
  try {
    execFileSync(process.env.CC || 'cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('the native packet path is built wherever npm install can build it', () => {
  if (buildable()) assert.ok(native, `not loaded: ${reason}`);
  else assert.ok(reason, 'says why it is absent');
});

describe('native packet path', { skip: native ? false : `not built: ${reason}` }, () => {
  const aes = native as NonNullable<typeof native>;
  const expand = (key: Buffer) => {
    const keys = Buffer.alloc(AES_ROUND_KEYS_BYTES);
    aes.expandKey(key, keys);
    return keys;
  };

  test('encrypts and decrypts the FIPS-197 appendix C.1 block', () => {
    const keys = expand(hex('000102030405060708090a0b0c0d0e0f'));
    const block = hex('00112233445566778899aabbccddeeff');
    aes.encryptCbc(keys, block, 0, 16);
    assert.equal(block.toString('hex'), '69c4e0d86a7b0430d8cdb78070b4c55a');
    aes.decryptCbc(keys, block, 0, 16);
    assert.equal(block.toString('hex'), '00112233445566778899aabbccddeeff');
  });

  test('chains blocks as SP 800-38A F.2.1 CBC-AES128 (its IV XORed into the first block)', () => {
    const keys = expand(hex('2b7e151628aed2a6abf7158809cf4f3c'));
    const iv = hex('000102030405060708090a0b0c0d0e0f');
    const plain = hex(
      '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710',
    );
    const buf = Buffer.from(plain);
    for (let i = 0; i < 16; i++) buf[i] ^= iv[i];
    aes.encryptCbc(keys, buf, 0, buf.length);
    assert.equal(
      buf.toString('hex'),
      '7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7',
    );
    aes.decryptCbc(keys, buf, 0, buf.length);
    for (let i = 0; i < 16; i++) buf[i] ^= iv[i];
    assert.deepEqual(buf, plain);
  });

  test('matches node:crypto zero-IV AES-128-CBC on random keys, lengths and offsets, in place', () => {
    for (let i = 0; i < 200; i++) {
      const key = randomBytes(16);
      const keys = expand(key);
      const blocks = 1 + (i % 90);
      const at = i % 7;
      const buf = randomBytes(at + blocks * 16 + 5);
      const plain = Buffer.from(buf.subarray(at, at + blocks * 16));
      const reference = createCipheriv('aes-128-cbc', key, Buffer.alloc(16))
        .setAutoPadding(false)
        .update(plain);
      aes.encryptCbc(keys, buf, at, at + blocks * 16);
      assert.deepEqual(buf.subarray(at, at + blocks * 16), reference);
      const back = createDecipheriv('aes-128-cbc', key, Buffer.alloc(16))
        .setAutoPadding(false)
        .update(reference);
      aes.decryptCbc(keys, buf, at, at + blocks * 16);
      assert.deepEqual(buf.subarray(at, at + blocks * 16), back);
    }
  });

  test('refuses a range that is not whole blocks inside the buffer, and short keys, before touching memory', () => {
    const keys = expand(randomBytes(16));
    const buf = Buffer.alloc(64);
    for (const [start, end] of [
      [0, 15],
      [-16, 16],
      [16, 0],
      [0, 80],
      [8, 72],
    ])
      assert.throws(() => aes.encryptCbc(keys, buf, start, end), RangeError, `${start}..${end}`);
    assert.throws(() => aes.decryptCbc(keys.subarray(0, 100), buf, 0, 16), RangeError);
    assert.throws(() => aes.expandKey(Buffer.alloc(24), Buffer.alloc(AES_ROUND_KEYS_BYTES)), RangeError);
    assert.throws(() => aes.expandKey(Buffer.alloc(16), Buffer.alloc(100)), RangeError);
  });

  test('sends a datagram from a dgram socket to another over 127.0.0.1', async () => {
    const receiver = dgram.createSocket('udp4');
    const sender = dgram.createSocket('udp4');
    try {
      receiver.bind(0, '127.0.0.1');
      sender.bind(0, '127.0.0.1');
      await Promise.all([once(receiver, 'listening'), once(sender, 'listening')]);
      const fd = socketDescriptor(sender);
      assert.ok(fd !== undefined, 'the bound socket has a descriptor');
      const got = once(receiver, 'message');
      const payload = Buffer.from('..hello..');
      assert.equal(aes.sendTo(fd, payload, 2, 7, '127.0.0.1', receiver.address().port), 0);
      const [msg, rinfo] = (await got) as [Buffer, dgram.RemoteInfo];
      assert.equal(msg.toString(), 'hello');
      assert.equal(rinfo.port, sender.address().port, 'from the socket that owns the descriptor');
    } finally {
      receiver.close();
      sender.close();
    }
  });

  test('returns the errno of a send that cannot go out, and throws for what is not an IP address', () => {
    const EBADF = 9;
    assert.equal(aes.sendTo(1_000_000, Buffer.alloc(4), 0, 4, '127.0.0.1', 9), EBADF);
    assert.throws(() => aes.sendTo(1_000_000, Buffer.alloc(4), 0, 4, 'localhost', 9), RangeError);
    // Too long to be an address: refused whole, never cut down to a prefix that parses.
    assert.throws(
      () => aes.sendTo(1_000_000, Buffer.alloc(4), 0, 4, `${'1:'.repeat(20)}1${'0'.repeat(40)}`, 9),
      RangeError,
    );
    assert.throws(() => aes.sendTo(2 ** 40, Buffer.alloc(4), 0, 4, '127.0.0.1', 9), RangeError);
    assert.throws(() => aes.sendTo(1_000_000, Buffer.alloc(4), 0, 8, '127.0.0.1', 9), RangeError);
    assert.throws(() => aes.sendTo(1_000_000, Buffer.alloc(4), 0, 4, '127.0.0.1', 0), RangeError);
  });
});
