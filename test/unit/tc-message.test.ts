import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { type AmfValue, EcmaArray, TypedObject } from '../../runtime/rtmfp/amf-value.ts';
import { decodeAmf0, encodeAmf0 } from '../../runtime/rtmfp/amf0.ts';
import { decodeAmf3 } from '../../runtime/rtmfp/amf3.ts';
import { encodeAmf3 } from '../../runtime/rtmfp/amf3-writer.ts';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';
import {
  type Command,
  decodeCommand,
  decodeData,
  decodeTCMessage,
  decodeTCMetadata,
  decodeUserControl,
  encodeCommand,
  encodeData,
  encodeTCMessage,
  encodeTCMetadata,
  encodeUserControl,
  errorInfo,
  isGroupMetadata,
  statusInfo,
  TCMessageType,
  UserControlEvent,
} from '../../runtime/rtmfp/tc-message.ts';

interface MessageVector {
  name: string;
  messageType: number;
  timestamp: number;
  payloadHex: string;
  tcMessageHex: string;
  amfValuesAsJSON?: string[];
}

interface TCVectors {
  messages: MessageVector[];
  flowMetadata: { vectors: { streamID: number; receiveIntent: string; hex: string }[] };
}

const fixtures: TCVectors = JSON.parse(
  readFileSync(new URL('../fixtures/vectors/tcmessage.json', import.meta.url), 'utf8'),
);

const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex');
const isCommand = (type: number) => type === TCMessageType.commandAmf0 || type === TCMessageType.commandAmf3;
const isData = (type: number) => type === TCMessageType.dataAmf0 || type === TCMessageType.dataAmf3;

/** The fixture lists ECMA arrays as JSON objects. */
function asJSON(value: AmfValue): unknown {
  if (value instanceof EcmaArray) return asJSON(value.entries);
  if (Array.isArray(value)) return value.map(asJSON);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, asJSON(v as AmfValue)]));
  }
  return value;
}

function rejects(fn: () => unknown, reason: string): void {
  assert.throws(fn, (e: unknown) => e instanceof ProtocolError && e.reason === reason);
}

describe('TC message vectors from rtmfp-cpp', () => {
  for (const v of fixtures.messages) {
    it(`frames ${v.name} as type · timestamp · payload`, () => {
      const msg = decodeTCMessage(hex(v.tcMessageHex));
      assert.equal(msg.type, v.messageType);
      assert.equal(msg.timestamp, v.timestamp);
      assert.equal(msg.payload.toString('hex'), v.payloadHex);
      assert.equal(
        encodeTCMessage(v.messageType, v.timestamp, hex(v.payloadHex)).toString('hex'),
        v.tcMessageHex,
      );
    });
  }

  for (const v of fixtures.messages.filter((m) => isCommand(m.messageType) && m.amfValuesAsJSON)) {
    it(`decodes command ${v.name} and re-encodes it byte-identically`, () => {
      const expected = v.amfValuesAsJSON!.map((s) => JSON.parse(s));
      const cmd = decodeCommand(hex(v.tcMessageHex));
      assert.deepEqual(asJSON([cmd.name, cmd.transactionId, cmd.commandObject, ...cmd.args]), expected);
      assert.equal(encodeCommand(cmd).toString('hex'), v.tcMessageHex);
      // from the fixture's own (sorted) member order, as a server would build it
      const [name, transactionId, commandObject, ...args] = expected;
      assert.equal(
        encodeCommand({ name, transactionId, commandObject, args }).toString('hex'),
        v.tcMessageHex,
      );
    });
  }

  it('decodes the AMF3-type command (17, format byte 0) and re-encodes it with amf3', () => {
    const v = fixtures.messages.find((m) => m.name === 'command_ex_amf0')!;
    const cmd = decodeCommand(decodeTCMessage(hex(v.tcMessageHex)));
    assert.deepEqual(cmd, { name: 'foo', transactionId: 0, commandObject: null, args: ['bar'] });
    assert.equal(encodeCommand(cmd, { amf3: true }).toString('hex'), v.tcMessageHex);
  });

  it('decodes the @setDataFrame data message with its ECMA array and re-encodes it', () => {
    const v = fixtures.messages.find((m) => isData(m.messageType))!;
    const values = decodeData(hex(v.tcMessageHex));
    assert.deepEqual(values, ['@setDataFrame', 'onMetaData', new EcmaArray({ framerate: 30 })]);
    assert.deepEqual(
      asJSON(values),
      v.amfValuesAsJSON!.map((s) => JSON.parse(s)),
    );
    assert.equal(encodeData(values).toString('hex'), v.tcMessageHex);
  });

  it('decodes and encodes the Stream Begin user control event', () => {
    const v = fixtures.messages.find((m) => m.name === 'user_control_stream_begin')!;
    assert.deepEqual(decodeUserControl(hex(v.tcMessageHex)), {
      event: UserControlEvent.streamBegin,
      data: [1],
    });
    assert.equal(encodeUserControl(UserControlEvent.streamBegin, 1).toString('hex'), v.tcMessageHex);
  });

  for (const v of fixtures.flowMetadata.vectors) {
    it(`encodes and decodes flow metadata for stream ${v.streamID} (${v.receiveIntent} order)`, () => {
      const metadata = { streamId: v.streamID, networkOrder: v.receiveIntent === 'network' };
      assert.equal(encodeTCMetadata(metadata).toString('hex'), v.hex);
      assert.deepEqual(decodeTCMetadata(hex(v.hex)), metadata);
    });
  }
});

describe('TC commands', () => {
  it('reads a publish name that librtmfp sends as AMF3 behind a 0x11 marker', () => {
    // 02 0007 "publish", 00 <0.0>, 05 null, 11 (to AMF3) 06 (string) 11 (8 << 1 | 1) "mystream"
    const bytes = hex(
      `14 00000000 02 0007 ${Buffer.from('publish').toString('hex')} 00 0000000000000000 05` +
        `11 06 11 ${Buffer.from('mystream').toString('hex')}`,
    );
    assert.deepEqual(decodeCommand(bytes), {
      name: 'publish',
      transactionId: 0,
      commandObject: null,
      args: ['mystream'],
    });
  });

  it('encodes an amf3 command as type 17, format 0, objects behind 0x11', () => {
    const cmd: Command = {
      name: '_result',
      transactionId: 1,
      commandObject: null,
      args: [{ level: 'status' }],
    };
    const bytes = encodeCommand(cmd, { amf3: true });
    // 11 00000000 type + timestamp, 00 format, then AMF0 name, 1, null, then 11 0a 0b 01
    // (anonymous dynamic object) 0b "level" 06 0d "status" 01 (end)
    const expected =
      `11 00000000 00 02 0007 ${Buffer.from('_result').toString('hex')} 00 3ff0000000000000 05` +
      `11 0a 0b 01 0b ${Buffer.from('level').toString('hex')} 06 0d ${Buffer.from('status').toString('hex')} 01`;
    assert.equal(bytes.toString('hex'), expected.replace(/ /g, ''));
    assert.deepEqual(decodeCommand(bytes), cmd);
  });

  it('reads a command without a command object as having null', () => {
    const cmd = decodeCommand(encodeTCMessage(TCMessageType.commandAmf0, 0, encodeAmf0('ping', 0)));
    assert.deepEqual(cmd, { name: 'ping', transactionId: 0, commandObject: null, args: [] });
  });

  it('refuses an AMF3-type command whose format byte is not 0', () => {
    rejects(() => decodeCommand(hex('11 00000000 01 020001 61 00 0000000000000000')), 'bad-tc-message');
  });

  it('refuses messages of other types, and commands without a name or transaction ID', () => {
    rejects(() => decodeCommand(hex('08 00000000 af01')), 'bad-tc-message');
    rejects(() => decodeData(hex('14 00000000 05')), 'bad-tc-message');
    rejects(() => decodeCommand(encodeTCMessage(20, 0, encodeAmf0(1, 2))), 'bad-command');
    rejects(() => decodeCommand(encodeTCMessage(20, 0, encodeAmf0('x'))), 'bad-command');
    rejects(() => decodeTCMessage(hex('14 0000')), 'truncated');
  });

  it('carries the timestamp and AMF3 format of data messages', () => {
    const bytes = encodeData(['onCuePoint', { t: 1 }], { amf3: true, timestamp: 5000 });
    assert.equal(bytes.subarray(0, 6).toString('hex'), '0f0000138800');
    assert.deepEqual(decodeData(decodeTCMessage(bytes)), ['onCuePoint', { t: 1 }]);
  });

  it('encodes Set Keepalive as two u32 words and refuses data that is not whole words', () => {
    const bytes = encodeUserControl(UserControlEvent.setKeepalive, 15000, 10000);
    assert.equal(bytes.toString('hex'), '0400000000' + '0029' + '00003a98' + '00002710');
    assert.deepEqual(decodeUserControl(bytes), { event: 41, data: [15000, 10000] });
    rejects(() => decodeUserControl(hex('04 00000000 0000 000001')), 'bad-user-control');
  });

  it('builds status and error info objects with level first', () => {
    assert.deepEqual(Object.entries(statusInfo('NetStream.Play.Start', 'Subscribe', { detail: 'live' })), [
      ['level', 'status'],
      ['code', 'NetStream.Play.Start'],
      ['description', 'Subscribe'],
      ['detail', 'live'],
    ]);
    assert.deepEqual(errorInfo('NetConnection.Call.Failed', 'no such method'), {
      level: 'error',
      code: 'NetConnection.Call.Failed',
      description: 'no such method',
    });
  });
});

describe('TC flow metadata', () => {
  it('treats anything rtmfp-cpp would not parse as not a TC flow', () => {
    assert.equal(decodeTCMetadata(hex('4743')), undefined); // a NetGroup flow
    assert.equal(decodeTCMetadata(hex('54430001')), undefined); // no stream-ID flag
    assert.equal(decodeTCMetadata(hex('54430481')), undefined); // cut VLU
    assert.equal(decodeTCMetadata(hex('5443049080808000')), undefined); // 2^32: no RTMP stream ID
    assert.deepEqual(decodeTCMetadata(hex('5443048fffffff7f')), {
      streamId: 0xffffffff,
      networkOrder: false,
    });
  });

  it('recognises NetGroup "GC" metadata', () => {
    assert.equal(isGroupMetadata(hex('4743010203')), true);
    assert.equal(isGroupMetadata(hex('54430400')), false);
    assert.equal(isGroupMetadata(hex('47')), false);
  });
});

describe('decoders on hostile input', () => {
  /** xorshift32: the same buffers every run. */
  function rng(seed: number): () => number {
    let s = seed;
    return () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return (s >>> 0) / 2 ** 32;
    };
  }

  const seeds = [
    ...fixtures.messages.filter((m) => isCommand(m.messageType)).map((m) => hex(m.tcMessageHex)),
    encodeCommand(
      {
        name: 'call',
        transactionId: 7,
        commandObject: null,
        args: [[{ a: 1 }, { a: 2 }], new EcmaArray({ x: 'y' }), new TypedObject('T', { n: new Date(0) })],
      },
      { amf3: true },
    ),
  ];
  const amf3Seeds = [
    encodeAmf3([{ a: 1, s: 'str' }, { a: 2, s: 'str' }, new TypedObject('C', { v: [1.5, -3] })]),
    encodeAmf3(new EcmaArray({ k: Buffer.from([1, 2]), d: new Date(5) })),
  ];

  function mutate(random: () => number, base: Buffer): Buffer {
    const int = (n: number) => Math.floor(random() * n);
    if (random() < 0.1) return Buffer.from(Array.from({ length: int(64) }, () => int(256)));
    let out = Buffer.from(base);
    for (let edits = 1 + int(4); edits > 0; edits--) {
      const at = int(out.length + 1);
      switch (int(4)) {
        case 0:
          if (at < out.length) out[at] = int(256);
          break;
        case 1:
          if (at < out.length) out[at] ^= 1 << int(8);
          break;
        case 2:
          out = out.subarray(0, at);
          break;
        default:
          out = Buffer.concat([out.subarray(0, at), Buffer.from([int(256), int(256)]), out.subarray(at)]);
      }
    }
    return out;
  }

  it('throw only ProtocolError for 20000 mutated messages and values', () => {
    const random = rng(0x7c0ffee);
    const decoders: ((b: Buffer) => unknown)[] = [
      (b) => decodeCommand(b),
      (b) => decodeAmf0(b.subarray(5)),
      (b) => decodeAmf3(b),
    ];
    const outcomes = { decoded: 0, refused: 0 };
    for (let i = 0; i < 20000; i++) {
      const useAmf3 = i % 3 === 2;
      const pool = useAmf3 ? amf3Seeds : seeds;
      const input = mutate(random, pool[i % pool.length]);
      try {
        decoders[i % 3](input);
        outcomes.decoded++;
      } catch (e) {
        if (!(e instanceof ProtocolError)) {
          assert.fail(`decoder ${i % 3} threw ${String(e)} for ${input.toString('hex')}`);
        }
        outcomes.refused++;
      }
    }
    // both paths were exercised, so the loop tested something
    assert.ok(outcomes.decoded > 1000 && outcomes.refused > 1000, JSON.stringify(outcomes));
  });
});
