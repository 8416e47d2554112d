import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { checksum } from '../../runtime/rtmfp/checksum.ts';

interface ChecksumVector {
  description: string;
  inputHex: string;
  checksum: string;
  rfc1071ZeroPadWouldGive?: string;
}

const vectors: { vectors: ChecksumVector[] } = JSON.parse(
  readFileSync(new URL('../fixtures/vectors/checksum.json', import.meta.url), 'utf8'),
);

/** Textbook one's-complement sum, folded at every step, odd byte as the low byte. */
function reference(bytes: Buffer): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += i + 1 < bytes.length ? bytes.readUInt16BE(i) : bytes[i];
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

describe('checksum', () => {
  for (const v of vectors.vectors) {
    test(`matches rtmfp-cpp in_cksum: ${v.description}`, () => {
      const input = Buffer.from(v.inputHex, 'hex');
      assert.equal(checksum(input, 0, input.length), Number.parseInt(v.checksum, 16));
    });
  }

  test('adds an odd trailing byte as the low byte, unlike RFC 1071', () => {
    const odd = vectors.vectors.filter((v) => v.rfc1071ZeroPadWouldGive !== undefined);
    assert.ok(odd.length >= 5);
    for (const v of odd) {
      const input = Buffer.from(v.inputHex, 'hex');
      assert.notEqual(checksum(input, 0, input.length), Number.parseInt(v.rfc1071ZeroPadWouldGive ?? '', 16));
    }
  });

  test('covers only buf[start..end), at odd and even offsets', () => {
    const body = Buffer.from('68656c6c6f20776f726c64', 'hex');
    for (const start of [0, 1, 2, 3]) {
      const buf = Buffer.concat([Buffer.alloc(start, 0xab), body, Buffer.alloc(5, 0xcd)]);
      assert.equal(checksum(buf, start, start + body.length), 0xd1cd);
    }
  });

  test('folds a sum past 2^32 without losing carries', () => {
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 131 + 7) & 0xff;
    big.fill(0xff, 0, 200_000);
    assert.equal(checksum(big, 0, big.length), reference(big));
    assert.equal(checksum(big, 1, big.length), reference(big.subarray(1)));
  });
});
