import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  packKeyingJob,
  packKeyingResult,
  unpackKeyingJob,
  unpackKeyingResult,
} from '../../runtime/host/keying-message.ts';
import type { KeyingResult } from '../../runtime/rtmfp/handshake.ts';

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

function result(o: Partial<KeyingResult> = {}): KeyingResult {
  return {
    skrc: bytes(530, 0x5c),
    encryptKey: bytes(16, 1),
    decryptKey: bytes(16, 2),
    sendHmac: { key: bytes(32, 3), length: 16 },
    recvHmac: { key: bytes(32, 4), length: 10 },
    sendSseq: true,
    recvSseq: false,
    peerId: 'ab'.repeat(32),
    nearNonce: bytes(32, 5),
    farNonce: bytes(32, 6),
    ...o,
  };
}

describe('crypto worker messages', () => {
  test('a keying job round-trips, in a buffer of its own that can be transferred', () => {
    const datagram = Buffer.alloc(2000, 0xee);
    const job = {
      certificate: datagram.subarray(10, 110),
      skic: datagram.subarray(200, 800),
      groups: [16, 14, 2],
    };
    const packed = packKeyingJob(job);
    assert.equal(packed.byteOffset, 0);
    assert.equal(packed.buffer.byteLength, packed.length);
    const back = unpackKeyingJob(packed);
    assert.deepEqual(back.groups, [16, 14, 2]);
    assert.deepEqual(back.certificate, job.certificate);
    assert.deepEqual(back.skic, job.skic);
  });

  test('a keying result round-trips with both HMAC keys, with one, and with none', () => {
    for (const r of [
      result(),
      result({ recvHmac: undefined, sendSseq: false, recvSseq: true }),
      result({ sendHmac: undefined, recvHmac: undefined }),
    ]) {
      const packed = packKeyingResult(r);
      assert.equal(packed.buffer.byteLength, packed.length);
      assert.deepEqual(unpackKeyingResult(packed), r);
    }
  });

  test('a failed handshake comes back as an Error with its message', () => {
    const back = unpackKeyingResult(packKeyingResult(new Error('DH group 5 not offered — ✗')));
    assert.ok(back instanceof Error);
    assert.equal(back.message, 'DH group 5 not offered — ✗');
  });

  test('refuses keys of the wrong size and a peer ID that is not a SHA-256 in hex', () => {
    assert.throws(() => packKeyingResult(result({ encryptKey: bytes(32, 1) })), RangeError);
    assert.throws(() => packKeyingResult(result({ peerId: 'zz'.repeat(32) })), RangeError);
    assert.throws(() => packKeyingResult(result({ peerId: 'ab' })), RangeError);
  });
});
