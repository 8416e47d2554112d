import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ChunkType, readIHello, writeSimpleChunk } from '../../runtime/rtmfp/chunks.ts';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';
import {
  MAX_PACKET_BODY,
  PacketFlag,
  PacketMode,
  PacketReader,
  PacketWriter,
} from '../../runtime/rtmfp/packet.ts';

const hex = (h: string) => Buffer.from(h.replaceAll(' ', ''), 'hex');
const handshake = JSON.parse(
  readFileSync(new URL('../fixtures/vectors/handshake.json', import.meta.url), 'utf8'),
);

/** Every chunk the reader yields, as [type, body hex]. */
function chunksOf(packet: Buffer): [number, string][] {
  const reader = new PacketReader(packet);
  const out: [number, string][] = [];
  while (reader.nextChunk()) out.push([reader.chunkType, reader.chunk.rest().toString('hex')]);
  return out;
}

function protocolError(reason: string) {
  return (e: unknown) => e instanceof ProtocolError && e.reason === reason;
}

describe('PacketReader header', () => {
  test('reads the rtmfp-cpp IHello packet: startup mode, timestamp, one IHello chunk', () => {
    const v = handshake.datagrams[0];
    const reader = new PacketReader(hex(v.decryptedPacketHex));
    assert.deepEqual(reader.header, {
      flags: 0x0b,
      mode: PacketMode.startup,
      timestamp: 0x00fa,
      timestampEcho: undefined,
    });
    assert.equal(reader.nextChunk(), true);
    assert.equal(reader.chunkType, ChunkType.iHello);
    const ihello = readIHello(reader.chunk);
    const listed = handshake.chunks.find((c: { name: string }) => c.name === 'IHello');
    assert.equal(ihello.tag.toString('hex'), listed.tagHex);
    assert.equal(reader.nextChunk(), false);
  });

  test('reads time-critical flags, timestamp and echo of a responder packet', () => {
    const reader = new PacketReader(hex('ce1234abcd0c0000'));
    assert.deepEqual(reader.header, {
      flags: 0xce,
      mode: PacketMode.responder,
      timestamp: 0x1234,
      timestampEcho: 0xabcd,
    });
    assert.deepEqual(chunksOf(hex('ce1234abcd0c0000')), [[ChunkType.closeRequest, '']]);
  });

  test('an echo without a timestamp is read as the echo', () => {
    const reader = new PacketReader(hex('05beef4c0000'));
    assert.deepEqual(reader.header, {
      flags: 0x05,
      mode: PacketMode.initiator,
      timestamp: undefined,
      timestampEcho: 0xbeef,
    });
  });

  test('a packet with neither timestamp starts its chunks right after the flags', () => {
    assert.deepEqual(chunksOf(hex('0101000100')), [[ChunkType.ping, '00']]);
  });

  test('mode 0 is rejected', () => {
    assert.throws(() => new PacketReader(hex('080001010000')), protocolError('bad-mode'));
  });

  test('a header cut short is truncated', () => {
    assert.throws(() => new PacketReader(Buffer.alloc(0)), protocolError('truncated'));
    assert.throws(() => new PacketReader(hex('0b00')), protocolError('truncated'));
    assert.throws(() => new PacketReader(hex('0d0001ff')), protocolError('truncated'));
  });
});

describe('PacketReader chunk iteration', () => {
  test('yields every chunk in order, including empty ones', () => {
    assert.deepEqual(chunksOf(hex('0b0001 010002abcd 410000 18000103')), [
      [ChunkType.ping, 'abcd'],
      [ChunkType.pingReply, ''],
      [ChunkType.bufferProbe, '03'],
    ]);
  });

  test('stops at 0xFF padding', () => {
    assert.deepEqual(chunksOf(hex('0b0001 010001aa ffffffffffffffff')), [[ChunkType.ping, 'aa']]);
  });

  test('stops at a short tail of fewer than 3 bytes', () => {
    assert.deepEqual(chunksOf(hex('0b0001 010001aa 0100')), [[ChunkType.ping, 'aa']]);
    assert.deepEqual(chunksOf(hex('0b0001 010001aa 01')), [[ChunkType.ping, 'aa']]);
  });

  test('stops at a chunk whose length runs past the packet', () => {
    assert.deepEqual(chunksOf(hex('0b0001 010001aa 410004bbccdd')), [[ChunkType.ping, 'aa']]);
  });

  test('the chunk reader covers exactly the current chunk body', () => {
    const reader = new PacketReader(hex('01 010002abcd 410001ee'));
    assert.equal(reader.nextChunk(), true);
    assert.equal(reader.chunk.remaining, 2);
    assert.throws(() => reader.chunk.bytes(3), protocolError('truncated'));
    assert.equal(reader.nextChunk(), true);
    assert.equal(reader.chunk.rest().toString('hex'), 'ee');
    assert.equal(reader.nextChunk(), false);
  });

  test('moving on without reading a body still lands on the next chunk', () => {
    const reader = new PacketReader(hex('01 010002abcd 410001ee'));
    reader.nextChunk();
    reader.nextChunk();
    assert.equal(reader.chunkType, ChunkType.pingReply);
    assert.equal(reader.chunk.u8(), 0xee);
  });
});

describe('PacketWriter', () => {
  test('room is the limit less the header, and each chunk takes 3 bytes plus its body', () => {
    const pw = new PacketWriter().begin(PacketMode.responder, 1, 2);
    assert.equal(pw.room, MAX_PACKET_BODY - 5);
    assert.equal(pw.empty, true);
    writeSimpleChunk(pw.w, ChunkType.ping, Buffer.alloc(10));
    assert.equal(pw.room, MAX_PACKET_BODY - 5 - 13);
    assert.equal(pw.empty, false);
    const s = pw.startChunk(ChunkType.closeRequest);
    pw.endChunk(s);
    assert.equal(pw.room, MAX_PACKET_BODY - 5 - 13 - 3);
  });

  test('a header without timestamps takes one byte, and a custom limit is honoured', () => {
    const pw = new PacketWriter().begin(PacketMode.startup, undefined, undefined, 4000);
    assert.equal(pw.room, 3999);
  });

  test('a chunk that exactly fills the room fits', () => {
    const pw = new PacketWriter().begin(PacketMode.initiator, 0, undefined, 64);
    writeSimpleChunk(pw.w, ChunkType.ping, Buffer.alloc(pw.room - 3));
    assert.equal(pw.room, 0);
    assert.equal(pw.view().length, 64);
  });

  test('sets the timestamp flags from what is present, whatever the flags argument says', () => {
    const pw = new PacketWriter();
    const all = PacketFlag.timestamp | PacketFlag.timestampEcho;
    assert.equal(
      pw
        .begin(PacketMode.responder | all, undefined, undefined)
        .view()
        .toString('hex'),
      '02',
    );
    assert.equal(pw.begin(PacketMode.responder, 0x1234, undefined).view().toString('hex'), '0a1234');
    assert.equal(pw.begin(PacketMode.responder, undefined, 0x5678).view().toString('hex'), '065678');
  });

  test('timestamps are written modulo 2^16', () => {
    const pw = new PacketWriter().begin(PacketMode.initiator, 0x12345, 0x1ffff);
    assert.equal(pw.view().toString('hex'), '0d2345ffff');
  });

  test('orFlags adds header bits after chunks went in', () => {
    const pw = new PacketWriter().begin(PacketMode.responder, 7, undefined);
    writeSimpleChunk(pw.w, ChunkType.ping);
    pw.orFlags(PacketFlag.timeCritical);
    assert.equal(new PacketReader(pw.view()).header.flags, 0x8a);
  });

  test('round-trips header and chunks through PacketReader', () => {
    const pw = new PacketWriter(8).begin(PacketFlag.timeCriticalReverse | PacketMode.responder, 1000, 999);
    writeSimpleChunk(pw.w, ChunkType.ping, hex('0102'));
    const s = pw.startChunk(ChunkType.bufferProbe);
    pw.w.vlu(300);
    pw.endChunk(s);
    writeSimpleChunk(pw.w, ChunkType.closeAck);
    const reader = new PacketReader(Buffer.from(pw.view()));
    assert.deepEqual(reader.header, {
      flags: 0x4e,
      mode: PacketMode.responder,
      timestamp: 1000,
      timestampEcho: 999,
    });
    assert.deepEqual(chunksOf(Buffer.from(pw.view())), [
      [ChunkType.ping, '0102'],
      [ChunkType.bufferProbe, '822c'],
      [ChunkType.closeAck, ''],
    ]);
  });

  test('begin starts a fresh packet in the same writer', () => {
    const pw = new PacketWriter();
    pw.begin(PacketMode.responder, 1, 1);
    writeSimpleChunk(pw.w, ChunkType.ping, Buffer.alloc(100));
    pw.begin(PacketMode.responder, undefined, undefined);
    assert.equal(pw.empty, true);
    assert.equal(pw.room, MAX_PACKET_BODY - 1);
    assert.equal(pw.view().toString('hex'), '02');
  });
});
