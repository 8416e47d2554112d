import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FlvError, type FlvTag, readFlv, writeFlv } from '../../sdk/flv.ts';

const TAGS: FlvTag[] = [
  { type: 18, timestamp: 0, body: Buffer.from('02000a6f6e4d657461446174610500', 'hex') },
  { type: 9, timestamp: 0, body: Buffer.from('1700000000014d401f', 'hex') },
  { type: 8, timestamp: 0, body: Buffer.from('af001210', 'hex') },
  { type: 9, timestamp: 40, body: Buffer.from('2701000000aabbcc', 'hex') },
  // Past 2^24 ms (4 h 39 min): the extension byte carries bits 24-31.
  { type: 8, timestamp: 0x01234567, body: Buffer.from('af01ff', 'hex') },
];

/** The bytes of a one-tag file, as the FLV spec lays them out, to break at known offsets. */
const ONE_TAG = Buffer.from(
  [
    '464c5601 04 00000009', // "FLV", version 1, audio only, header size 9
    '00000000', // previous tag size 0
    '08 000002 000010 00 000000 af01', // audio, 2 bytes, timestamp 16
    '0000000d', // previous tag size 11 + 2
  ]
    .join('')
    .replace(/ /g, ''),
  'hex',
);

function rejects(buf: Buffer, offset: number, message: RegExp): void {
  assert.throws(
    () => readFlv(buf),
    (e: unknown) => e instanceof FlvError && e.offset === offset && message.test(e.message),
  );
}

describe('FLV files', () => {
  test('tags written are read back the same, extended timestamps included', () => {
    const file = writeFlv(TAGS);
    const { header, tags } = readFlv(file);
    assert.deepEqual(header, { version: 1, hasAudio: true, hasVideo: true });
    assert.deepEqual(tags, TAGS);
  });

  test('a file is laid out as the FLV spec says: header, then previous-tag-size and tag in turn', () => {
    assert.deepEqual(writeFlv([{ type: 8, timestamp: 16, body: Buffer.from('af01', 'hex') }]), ONE_TAG);
    assert.deepEqual(readFlv(ONE_TAG).tags, [{ type: 8, timestamp: 16, body: Buffer.from('af01', 'hex') }]);
  });

  test('a file with no tags reads as none; its header says neither audio nor video', () => {
    assert.deepEqual(readFlv(writeFlv([])), {
      header: { version: 1, hasAudio: false, hasVideo: false },
      tags: [],
    });
  });

  test('a bad file fails with the byte offset where reading stopped', () => {
    rejects(Buffer.from('GIF89a...'), 0, /no "FLV" signature at byte offset 0/);
    rejects(ONE_TAG.subarray(0, ONE_TAG.length - 6), 13, /tag of 2 bytes runs past the end of the file/);
    rejects(ONE_TAG.subarray(0, 20), 13, /cut inside a tag header/);
    rejects(ONE_TAG.subarray(0, ONE_TAG.length - 2), 26, /cut inside a previous-tag-size/);
    const badSize = Buffer.from(ONE_TAG);
    badSize.writeUInt32BE(99, 26);
    rejects(badSize, 26, /previous tag size 99, but the tag before it is 13 bytes/);
    const badType = Buffer.from(ONE_TAG);
    badType[13] = 7;
    rejects(badType, 13, /tag type 7 is not audio/);
    const encrypted = Buffer.from(ONE_TAG);
    encrypted[13] |= 0x20;
    rejects(encrypted, 13, /encrypted/);
    const badHeader = Buffer.from(ONE_TAG);
    badHeader.writeUInt32BE(1000, 5);
    rejects(badHeader, 5, /header size 1000 is outside the file/);
  });

  test('writing refuses tags FLV cannot hold', () => {
    const tag = (o: Partial<FlvTag>) => ({ type: 8, timestamp: 0, body: Buffer.alloc(1), ...o }) as FlvTag;
    assert.throws(() => writeFlv([tag({ type: 7 as 8 })]), /tag 0 has type 7/);
    assert.throws(() => writeFlv([tag({}), tag({ timestamp: -1 })]), /tag 1 timestamp -1/);
    assert.throws(() => writeFlv([tag({ body: Buffer.alloc(0x1000000) })]), /over FLV's 2\^24-1/);
  });
});
