import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  AddressOrigin,
  addressKey,
  formatAddress,
  type OriginAddress,
  parseAddress,
  readAddress,
  sameAddress,
  writeAddress,
} from '../../runtime/rtmfp/address.ts';
import { Reader, Writer } from '../../runtime/rtmfp/binary.ts';
import {
  type AckRanges,
  ChunkType,
  DataFlags,
  DataOption,
  optionsLength,
  readAckBitmap,
  readAckRanges,
  readCookieChange,
  readFlowException,
  readForwardedIHello,
  readIHello,
  readIIKeying,
  readRedirect,
  readRHello,
  readRIKeying,
  readUserData,
  type UserData,
  writeAckRanges,
  writeBufferProbe,
  writeCookieChange,
  writeFlowException,
  writeForwardedIHello,
  writeIHello,
  writeIIKeying,
  writeRedirect,
  writeRHello,
  writeRIKeying,
  writeSimpleChunk,
  writeUserData,
} from '../../runtime/rtmfp/chunks.ts';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';
import { PacketReader } from '../../runtime/rtmfp/packet.ts';

const hex = (h: string) => Buffer.from(h, 'hex');
const load = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/vectors/${name}.json`, import.meta.url), 'utf8'));

interface HandshakeChunk {
  name: string;
  chunkHex: string;
  [field: string]: unknown;
}
interface UserDataVector {
  name: string;
  chunkHex: string;
  parsed: {
    flags: number;
    flowID?: string;
    sequenceNumber?: string;
    fsnOffset?: string;
    options?: { type: string; valueHex: string; associatedFlowID?: string }[];
    fragmentation: 'whole' | 'begin' | 'middle' | 'end';
    abandon: boolean;
    final: boolean;
    userDataHex: string;
  };
}
interface AckVector {
  description: string;
  flowID: string;
  bufferBlocksAdvertised: string;
  cumulativeAck: string;
  receivedRangesInclusive: [string, string][];
  chunkHex: string;
}

const handshake: { chunks: HandshakeChunk[] } = load('handshake');
const flow: {
  userData: UserDataVector[];
  ackRanges: AckVector[];
  otherChunks: { name: string; chunkHex?: string; chunksHex?: string }[];
  tcMessageUsed: { hex: string };
} = load('flow');

const handshakeChunk = (name: string) => handshake.chunks.find((c) => c.name === name)!;
const flowChunk = (name: string) => {
  const c = flow.otherChunks.find((x) => x.name === name)!;
  return (c.chunkHex ?? c.chunksHex)!;
};
const field = (c: HandshakeChunk, key: string) => hex(c[key] as string);

/** Splits one encoded chunk into its type and a reader over the body, checking the length field. */
function openChunk(chunkHex: string): { type: number; body: Reader } {
  const bytes = hex(chunkHex);
  const length = bytes.readUInt16BE(1);
  assert.equal(length, bytes.length - 3, 'chunk length field covers exactly the body');
  return { type: bytes[0], body: new Reader(bytes, 3) };
}

function encode(write: (w: Writer) => void): string {
  const w = new Writer(16);
  write(w);
  return w.toBuffer().toString('hex');
}

describe('handshake chunks from rtmfp-cpp', () => {
  test('IHello: EPD field and tag', () => {
    const v = handshakeChunk('IHello');
    const { type, body } = openChunk(v.chunkHex);
    assert.equal(type, ChunkType.iHello);
    const c = readIHello(body);
    assert.deepEqual(c, { epd: field(v, 'epdHex'), tag: field(v, 'tagHex') });
    assert.equal(
      encode((w) => writeIHello(w, c)),
      v.chunkHex,
    );
  });

  test('RHello: tag echo, cookie and responder certificate', () => {
    const v = handshakeChunk('RHello');
    const { type, body } = openChunk(v.chunkHex);
    assert.equal(type, ChunkType.rHello);
    const c = readRHello(body);
    assert.deepEqual(c, {
      tag: field(v, 'tagHex'),
      cookie: field(v, 'cookieHex'),
      certificate: field(v, 'certificateHex'),
    });
    assert.equal(
      encode((w) => writeRHello(w, c)),
      v.chunkHex,
    );
  });

  test('Redirect: tag echo, then an IPv4 observed and an IPv6 reported address', () => {
    const v = handshakeChunk('Redirect');
    const { type, body } = openChunk(v.chunkHex);
    assert.equal(type, ChunkType.redirect);
    const c = readRedirect(body);
    const listed = v.addresses as { address: string; origin: number; encodedHex: string }[];
    assert.deepEqual(c.tag, field(v, 'tagHex'));
    assert.deepEqual(
      c.addresses.map((a) => [formatAddress(a), a.origin]),
      listed.map((a) => [a.address, a.origin]),
    );
    assert.deepEqual(c.addresses[1], { address: '2001:db8::1', port: 1936, origin: AddressOrigin.reported });
    for (const a of listed) {
      const parsed = parseAddress(a.address)!;
      assert.equal(
        encode((w) => writeAddress(w, parsed, a.origin as OriginAddress['origin'])),
        a.encodedHex,
      );
    }
    assert.equal(
      encode((w) => writeRedirect(w, c)),
      v.chunkHex,
    );
  });

  test('Redirect with no address (use the sender address) round-trips', () => {
    const tag = hex('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf');
    const bytes = encode((w) => writeRedirect(w, { tag, addresses: [] }));
    assert.equal(bytes, `71001110${tag.toString('hex')}`);
    assert.deepEqual(readRedirect(openChunk(bytes).body), { tag, addresses: [] });
  });

  test('IIKeying: session ID, cookie echo, certificate, SKIC and signature', () => {
    const v = handshakeChunk('IIKeying');
    const { type, body } = openChunk(v.chunkHex);
    assert.equal(type, ChunkType.iiKeying);
    const c = readIIKeying(body);
    assert.deepEqual(c, {
      initiatorSessionId: field(v, 'initiatorSessionIdHex').readUInt32BE(0),
      cookie: field(v, 'cookieHex'),
      certificate: field(v, 'certificateHex'),
      skic: field(v, 'skicHex'),
      signature: field(v, 'signatureHex'),
    });
    assert.equal(
      encode((w) => writeIIKeying(w, c)),
      v.chunkHex,
    );
  });

  test('RIKeying: responder session ID, SKRC and signature', () => {
    const v = handshakeChunk('RIKeying');
    const { type, body } = openChunk(v.chunkHex);
    assert.equal(type, ChunkType.riKeying);
    const c = readRIKeying(body);
    assert.deepEqual(c, {
      responderSessionId: 0x2a,
      skrc: field(v, 'skrcHex'),
      signature: field(v, 'signatureHex'),
    });
    assert.equal(
      encode((w) => writeRIKeying(w, c)),
      v.chunkHex,
    );
  });

  test('Cookie Change and Forwarded IHello round-trip', () => {
    const change = { oldCookie: Buffer.alloc(64, 1), newCookie: Buffer.alloc(64, 2) };
    const changeHex = encode((w) => writeCookieChange(w, change));
    assert.equal(changeHex.slice(0, 8), '79008140');
    assert.deepEqual(readCookieChange(openChunk(changeHex).body), change);

    const fihello = {
      epd: hex('210f'.padEnd(68, 'ab')),
      replyAddress: { address: '198.51.100.7', port: 50000, origin: AddressOrigin.observed },
      tag: Buffer.alloc(16, 0xee),
    };
    const fHex = encode((w) => writeForwardedIHello(w, fihello));
    assert.equal(fHex.slice(0, 2), '0f');
    assert.deepEqual(readForwardedIHello(openChunk(fHex).body), fihello);
  });

  test('a truncated handshake chunk body is a protocol error', () => {
    const v = handshakeChunk('RHello');
    const bytes = hex(v.chunkHex);
    assert.throws(
      () => readRHello(new Reader(bytes, 3, 3 + 40)),
      (e: unknown) => e instanceof ProtocolError && e.reason === 'truncated',
    );
  });
});

function expectedUserData(p: UserDataVector['parsed'], previous: UserData | undefined): UserData {
  return {
    flags: p.flags,
    flowId: p.flowID !== undefined ? Number(p.flowID) : previous!.flowId,
    sequenceNumber: p.sequenceNumber !== undefined ? Number(p.sequenceNumber) : previous!.sequenceNumber + 1,
    fsnOffset: p.fsnOffset !== undefined ? Number(p.fsnOffset) : previous!.fsnOffset + 1,
    options: p.options?.map((o) => ({ type: Number(o.type), value: hex(o.valueHex) })),
    data: hex(p.userDataHex),
  };
}

const FRAGMENTATION = {
  whole: DataFlags.fragmentWhole,
  begin: DataFlags.fragmentBegin,
  middle: DataFlags.fragmentMiddle,
  end: DataFlags.fragmentEnd,
};

describe('User Data chunks from rtmfp-cpp', () => {
  let previous: UserData | undefined;
  for (const v of flow.userData) {
    const p = v.parsed;
    const prior = previous;
    const { type, body } = openChunk(v.chunkHex);
    const next = type === ChunkType.nextUserData;
    const chunk = readUserData(body, next ? prior : undefined);
    previous = chunk;

    test(`${v.name}: decodes to the listed fields`, () => {
      assert.equal(type, next ? ChunkType.nextUserData : ChunkType.userData);
      assert.deepEqual(chunk, expectedUserData(p, next ? prior : undefined));
      assert.equal(chunk.flags & DataFlags.fragmentMask, FRAGMENTATION[p.fragmentation]);
      assert.equal((chunk.flags & DataFlags.abandon) !== 0, p.abandon);
      assert.equal((chunk.flags & DataFlags.final) !== 0, p.final);
      for (const o of p.options ?? []) {
        if (o.associatedFlowID === undefined) continue;
        const option = chunk.options!.find((x) => x.type === DataOption.returnAssociation)!;
        assert.equal(new Reader(option.value).vlu(), Number(o.associatedFlowID));
      }
    });

    test(`${v.name}: re-encodes byte-identically`, () => {
      const bytes = encode((w) => writeUserData(w, chunk, chunk.options, chunk.data, next));
      assert.equal(bytes, v.chunkHex);
    });
  }

  test('Next User Data continues the previous chunk: same flow, next sequence number, same FSN', () => {
    const packet = new PacketReader(Buffer.concat([hex('01'), hex(flowChunk('next_user_data_packet'))]));
    const chunks: UserData[] = [];
    let previous: UserData | undefined;
    while (packet.nextChunk()) {
      const isNext = packet.chunkType === ChunkType.nextUserData;
      previous = readUserData(packet.chunk, isNext ? previous : undefined);
      chunks.push(previous);
    }
    assert.equal(chunks.length, 2);
    const [first, second] = chunks;
    assert.deepEqual(
      [first.flowId, first.sequenceNumber, first.fsnOffset, first.flags],
      [3, 2, 2, DataFlags.fragmentBegin],
    );
    assert.deepEqual(
      [second.flowId, second.sequenceNumber, second.fsnOffset, second.flags],
      [3, 3, 3, DataFlags.fragmentEnd],
    );
    assert.equal(first.sequenceNumber - first.fsnOffset, second.sequenceNumber - second.fsnOffset);
    assert.equal(first.data.toString('hex'), flow.tcMessageUsed.hex.slice(0, 20));
    assert.equal(second.data.toString('hex'), '61790000000000000000');

    const again = encode((w) => {
      writeUserData(w, first, undefined, first.data);
      writeUserData(w, second, undefined, second.data, true);
    });
    assert.equal(again, flowChunk('next_user_data_packet'));
  });

  test('an option-less header drops a stale OPT flag when writing', () => {
    const bytes = encode((w) =>
      writeUserData(
        w,
        { flags: DataFlags.options | DataFlags.final, flowId: 1, sequenceNumber: 2, fsnOffset: 1 },
        undefined,
        hex('aa'),
      ),
    );
    assert.equal(bytes, '10000501010201aa');
  });

  test('optionsLength counts every option and the marker', () => {
    const options = [
      { type: DataOption.userMetadata, value: hex('54430401') },
      { type: DataOption.returnAssociation, value: hex('01') },
    ];
    assert.equal(optionsLength(options), hex('050054430401020a0100').length);
    assert.equal(optionsLength([]), 1);
    assert.equal(optionsLength(undefined), 0);
  });
});

describe('Data Ack Ranges chunks from rtmfp-cpp', () => {
  for (const v of flow.ackRanges) {
    const ranges = v.receivedRangesInclusive.map(([a, b]) => [Number(a), Number(b)] as [number, number]);
    const ack: AckRanges = {
      flowId: Number(v.flowID),
      bufferBlocks: Number(v.bufferBlocksAdvertised),
      cumulativeAck: Number(v.cumulativeAck),
      ranges: ranges.slice(1),
    };

    test(`decodes to the listed ranges: ${v.description}`, () => {
      const { type, body } = openChunk(v.chunkHex);
      assert.equal(type, ChunkType.ackRanges);
      const decoded = readAckRanges(body);
      assert.deepEqual(decoded, ack);
      assert.deepEqual([[0, decoded.cumulativeAck], ...decoded.ranges], ranges);
    });

    test(`encodes from the listed ranges byte-identically: ${v.description}`, () => {
      assert.equal(
        encode((w) => writeAckRanges(w, ack)),
        v.chunkHex,
      );
    });
  }

  test('a range list cut off mid-pair keeps the complete ranges before the cut', () => {
    const full = hex(flow.ackRanges.find((a) => a.flowID === '4')!.chunkHex);
    // flow 4 ends in two (holesMinus1, receivedMinus1) pairs: 8146 64 (1200..1300) and 9c72 00 (5000).
    for (const [cut, expected] of [
      [
        0,
        [
          [1200, 1300],
          [5000, 5000],
        ],
      ],
      [1, [[1200, 1300]]],
      [2, [[1200, 1300]]],
      [3, [[1200, 1300]]],
      [4, []],
      [5, []],
      [6, []],
    ] as [number, [number, number][]][]) {
      const body = new Reader(full, 3, full.length - cut);
      const decoded = readAckRanges(body);
      assert.equal(decoded.cumulativeAck, 1000, `cut ${cut}`);
      assert.deepEqual(decoded.ranges, expected, `cut ${cut}`);
    }
  });

  test('an ack without its cumulative ack is a protocol error', () => {
    assert.throws(
      () => readAckRanges(new Reader(hex('0140'))),
      (e: unknown) => e instanceof ProtocolError && e.reason === 'truncated',
    );
  });

  test('Data Ack Bitmap (0x50) yields its header with no ranges', () => {
    assert.deepEqual(readAckBitmap(new Reader(hex('034005ff'))), {
      flowId: 3,
      bufferBlocks: 64,
      cumulativeAck: 5,
      ranges: [],
    });
  });
});

describe('session control chunks from rtmfp-cpp', () => {
  test('Flow Exception Report carries flow ID and code', () => {
    const bytes = flowChunk('flow_exception');
    const { type, body } = openChunk(bytes);
    assert.equal(type, ChunkType.flowException);
    const e = readFlowException(body);
    assert.deepEqual(e, { flowId: 5, code: 0x10 });
    assert.equal(
      encode((w) => writeFlowException(w, e)),
      bytes,
    );
  });

  test('Buffer Probe carries the flow ID', () => {
    const bytes = flowChunk('buffer_probe');
    const { type, body } = openChunk(bytes);
    assert.equal(type, ChunkType.bufferProbe);
    assert.equal(body.vlu(), 3);
    assert.equal(body.remaining, 0);
    assert.equal(
      encode((w) => writeBufferProbe(w, 3)),
      bytes,
    );
  });

  for (const [name, chunkType] of [
    ['ping_keepalive', ChunkType.ping],
    ['ping_with_body', ChunkType.ping],
    ['ping_reply', ChunkType.pingReply],
    ['session_close_request', ChunkType.closeRequest],
    ['session_close_ack', ChunkType.closeAck],
  ] as const) {
    test(`${name} is a bare chunk whose body is opaque`, () => {
      const bytes = flowChunk(name);
      const { type, body } = openChunk(bytes);
      assert.equal(type, chunkType);
      const payload = body.rest();
      assert.equal(
        encode((w) => writeSimpleChunk(w, chunkType, payload.length > 0 ? payload : undefined)),
        bytes,
      );
    });
  }

  test('a ping reply echoes the ping body verbatim', () => {
    const ping = openChunk(flowChunk('ping_with_body')).body.rest();
    const reply = encode((w) => writeSimpleChunk(w, ChunkType.pingReply, ping));
    assert.equal(reply, flowChunk('ping_reply'));
  });
});

describe('addresses', () => {
  test('formats IPv4 as host:port and IPv6 as [v6]:port', () => {
    assert.equal(formatAddress({ address: '192.0.2.10', port: 1935 }), '192.0.2.10:1935');
    assert.equal(formatAddress({ address: '2001:db8::1', port: 1936 }), '[2001:db8::1]:1936');
  });

  test('parses host:port and [v6]:port, and refuses what is neither', () => {
    assert.deepEqual(parseAddress('192.0.2.10:1935'), { address: '192.0.2.10', port: 1935 });
    assert.deepEqual(parseAddress('[2001:db8::1]:1936'), { address: '2001:db8::1', port: 1936 });
    assert.deepEqual(parseAddress('localhost:80'), { address: 'localhost', port: 80 });
    for (const bad of [
      '2001:db8::1',
      '2001:db8::1:80',
      '192.0.2.10',
      '192.0.2.10:0',
      '192.0.2.10:65536',
      '[::1]',
      ':80',
    ]) {
      assert.equal(parseAddress(bad), undefined, bad);
    }
  });

  test('IPv6 is decoded in RFC 5952 form: longest zero run compressed, first on a tie, no lone zero', () => {
    for (const [text, canonical] of [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['fe80::', 'fe80::'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:DB8:AAAA:BBBB:CCCC:DDDD:EEEE:FFFF', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff'],
    ]) {
      const w = new Writer();
      writeAddress(w, { address: text, port: 1 }, AddressOrigin.unknown);
      const decoded = readAddress(new Reader(w.toBuffer()));
      assert.equal(decoded.address, canonical, text);
    }
  });

  test('every origin round-trips for both families', () => {
    for (const origin of Object.values(AddressOrigin)) {
      for (const address of ['203.0.113.1', '2001:db8::a:b']) {
        const w = new Writer();
        writeAddress(w, { address, port: 65535 }, origin);
        assert.deepEqual(readAddress(new Reader(w.toBuffer())), { address, port: 65535, origin });
      }
    }
  });

  test('an IPv4 address with reserved flag bits set is refused', () => {
    assert.throws(
      () => readAddress(new Reader(hex('06c000020a078f'))),
      (e: unknown) => e instanceof ProtocolError && e.reason === 'bad-address',
    );
  });

  test('a truncated address is a protocol error', () => {
    assert.throws(
      () => readAddress(new Reader(hex('8120010db8'))),
      (e: unknown) => e instanceof ProtocolError && e.reason === 'truncated',
    );
  });

  test('a host name cannot be encoded', () => {
    assert.throws(
      () => writeAddress(new Writer(), { address: 'localhost', port: 1 }, AddressOrigin.unknown),
      RangeError,
    );
  });

  test('address identity compares host and port', () => {
    const a = { address: '192.0.2.1', port: 1 };
    assert.equal(sameAddress(a, { address: '192.0.2.1', port: 1 }), true);
    assert.equal(sameAddress(a, { address: '192.0.2.1', port: 2 }), false);
    assert.notEqual(addressKey(a), addressKey({ address: '192.0.2.11', port: 1 }));
  });
});

test('address text is classified as IPv4 or IPv6 exactly as node:net does', async () => {
  const net = await import('node:net');
  const { isIPv4, isIPv6 } = await import('../../runtime/rtmfp/address.ts');
  const cases = [
    '127.0.0.1',
    '0.0.0.0',
    '255.255.255.255',
    '256.1.1.1',
    '1.2.3',
    '01.2.3.4',
    '::',
    '::1',
    '2001:db8::1',
    'fe80::1%eth0',
    '::ffff:192.0.2.1',
    '1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8:9',
    '1::2::3',
    'gggg::',
    'localhost',
    '[::1]',
    ':1',
    '1:',
    '1::',
    '::ffff:1.2.3',
    '',
  ];
  for (const c of cases) {
    assert.equal(isIPv4(c), net.isIPv4(c), `isIPv4(${JSON.stringify(c)})`);
    assert.equal(isIPv6(c), net.isIPv6(c), `isIPv6(${JSON.stringify(c)})`);
  }
});
