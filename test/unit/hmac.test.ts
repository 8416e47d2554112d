import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { PrekeyedHmac } from '../../runtime/rtmfp/hmac.ts';

/** Bytes 0, 1, 2, … (mod 256): every byte value, including those above 0x7f, appears. */
function counting(length: number, start = 0): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => (start + i) & 0xff));
}

describe('pre-keyed HMAC-SHA256 (RFC 2104)', () => {
  test('equals createHmac for keys shorter than, equal to and longer than the 64-byte block', () => {
    for (const keyLength of [16, 32, 64, 100]) {
      const key = counting(keyLength, 200);
      const mac = new PrekeyedHmac(key);
      for (const messageLength of [0, 1, 64, 1_264, 3_000]) {
        const message = counting(messageLength, 128);
        assert.deepEqual(
          mac.digest(message),
          createHmac('sha256', key).update(message).digest(),
          `key ${keyLength} B, message ${messageLength} B`,
        );
      }
    }
  });

  test('digestInto writes the first `length` bytes at `offset` and nothing else', () => {
    const key = counting(32, 250);
    const message = counting(1_200, 77);
    const target = Buffer.alloc(40, 0xaa);
    new PrekeyedHmac(key).digestInto(message, target, 4, 20);
    const expected = Buffer.alloc(40, 0xaa);
    createHmac('sha256', key).update(message).digest().copy(expected, 4, 0, 20);
    assert.deepEqual(target, expected);
  });
});
