import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { AmfValue } from '../../runtime/rtmfp/amf-value.ts';
import {
  Amf0Reader,
  Amf0Writer,
  decodeAmf0,
  EcmaArray,
  encodeAmf0,
  TypedObject,
} from '../../runtime/rtmfp/amf0.ts';
import { Writer } from '../../runtime/rtmfp/binary.ts';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';

interface Amf0Vectors {
  vectors: { name: string; hex: string }[];
  longString: { encodedLength: number; prefixHex: string; sha256OfEncoding: string };
  stringBoundary: {
    prefix65535Hex: string;
    length65535: number;
    prefix65536Hex: string;
    length65536: number;
  };
  unsupportedOrQuirks: { name: string; hex: string }[];
}

const fixtures: Amf0Vectors = JSON.parse(
  readFileSync(new URL('../fixtures/vectors/amf0.json', import.meta.url), 'utf8'),
);

const hex = (s: string) => Buffer.from(s, 'hex');

const holes: AmfValue[] = [];
holes[2] = 7;

/** The JS value of each vector, members in the sorted order rtmfp-cpp encodes them. */
const vectorValues: Record<string, AmfValue> = {
  number_0: 0,
  'number_1.5': 1.5,
  'number_-1': -1,
  'number_-0': -0,
  'number_2^53': 2 ** 53,
  true: true,
  false: false,
  null: null,
  undefined: undefined,
  string_hello: 'hello',
  string_empty: '',
  string_utf8: 'hé€',
  object_a1_bx: { a: 1, b: 'x' },
  object_key_order: { a: 2, m: 3, z: 1 },
  object_empty: {},
  ecma_array: new EcmaArray({ a: 1, b: 'x' }),
  strict_array: [1, 'a', null],
  strict_array_hole: holes,
  nested_object: { inner: { list: [true, { deep: null }], n: 2 }, name: 'x' },
  typed_object: new TypedObject('flash.net.Foo', { a: 1 }),
};

function rejects(bytes: Buffer, reason: string): void {
  assert.throws(
    () => decodeAmf0(bytes),
    (e: unknown) => e instanceof ProtocolError && e.reason === reason,
  );
}

describe('AMF0 vectors from rtmfp-cpp', () => {
  it('has a JS value for every vector in amf0.json', () => {
    assert.deepEqual(fixtures.vectors.map((v) => v.name).sort(), Object.keys(vectorValues).sort());
  });

  for (const vector of fixtures.vectors) {
    it(`encodes, decodes and re-encodes ${vector.name} byte-identically`, () => {
      const value = vectorValues[vector.name];
      assert.equal(encodeAmf0(value).toString('hex'), vector.hex);
      const decoded = decodeAmf0(hex(vector.hex));
      assert.equal(decoded.length, 1);
      if (vector.name === 'strict_array_hole') assert.deepEqual(decoded[0], [undefined, undefined, 7]);
      else assert.deepEqual(decoded[0], value);
      assert.equal(encodeAmf0(...decoded).toString('hex'), vector.hex);
    });
  }

  it('writes a 70000-byte string as a 0x0c long string matching the reference hash', () => {
    const s = Array.from({ length: 70000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    const bytes = encodeAmf0(s);
    const { longString } = fixtures;
    assert.equal(bytes.length, longString.encodedLength);
    assert.equal(bytes.subarray(0, longString.prefixHex.length / 2).toString('hex'), longString.prefixHex);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), longString.sha256OfEncoding);
    assert.deepEqual(decodeAmf0(bytes), [s]);
  });

  it('switches to the long-string form at 65536 bytes, not 65535', () => {
    const { stringBoundary: b } = fixtures;
    const at65535 = encodeAmf0('b'.repeat(65535));
    const at65536 = encodeAmf0('b'.repeat(65536));
    assert.equal(at65535.length, b.length65535);
    assert.equal(at65535.subarray(0, 5).toString('hex'), b.prefix65535Hex);
    assert.equal(at65536.length, b.length65536);
    assert.equal(at65536.subarray(0, 7).toString('hex'), b.prefix65536Hex);
    assert.deepEqual(decodeAmf0(Buffer.concat([at65535, at65536])), ['b'.repeat(65535), 'b'.repeat(65536)]);
  });
});

describe('AMF0 inputs rtmfp-cpp does not handle', () => {
  const quirk = (name: string) => hex(fixtures.unsupportedOrQuirks.find((q) => q.name === name)!.hex);

  it('decodes and encodes the hand-built Date vector (ms float64 + int16 time zone 0)', () => {
    const date = new Date(1700000000000);
    assert.deepEqual(decodeAmf0(quirk('date_1700000000000')), [date]);
    assert.equal(encodeAmf0(date).toString('hex'), quirk('date_1700000000000').toString('hex'));
  });

  it('reads 0x11 as a switch to one AMF3 value (the fixture 11 06 is a cut AMF3 string)', () => {
    // amf0.json calls 06 AMF3 "undefined", but 06 is the AMF3 string marker (undefined is 00),
    // so the vector has a string marker without its length.
    rejects(quirk('avmplus_switch_to_amf3'), 'truncated');
    assert.deepEqual(decodeAmf0(hex('1100')), [undefined]);
    assert.deepEqual(decodeAmf0(hex('11060b68656c6c6f')), ['hello']);
  });

  it('refuses a reference when no object precedes it', () => {
    rejects(quirk('reference'), 'bad-amf');
  });

  it('decodes the unsupported marker 0x0d as undefined', () => {
    assert.deepEqual(decodeAmf0(quirk('unsupported_marker')), [undefined]);
  });

  it('decodes an XML document 0x0f to its text', () => {
    assert.deepEqual(decodeAmf0(quirk('xml_document')), ['a']);
  });

  it('ignores the ECMA array count (Adobe writes 0) and re-encodes the real count', () => {
    const countZero = '08' + '00000000' + '0001' + '61' + '000000000000000000' + '000009';
    const decoded = decodeAmf0(hex(countZero));
    assert.deepEqual(decoded, [new EcmaArray({ a: 0 })]);
    assert.equal(encodeAmf0(...decoded).toString('hex'), countZero.replace('00000000', '00000001'));
  });

  it('reports the ecma_array_count_0 fixture as truncated: its end marker lacks a byte', () => {
    // 08 00000000 0001 61 00 <8 bytes> then only 00 09: a member name of 9 bytes, not 00 00 09.
    rejects(quirk('ecma_array_count_0'), 'truncated');
  });

  it('reads any non-zero boolean byte as true', () => {
    assert.deepEqual(decodeAmf0(quirk('boolean_nonzero')), [true]);
  });
});

describe('AMF0 references and limits', () => {
  it('resolves a reference to an earlier object to the same object', () => {
    // strict array of 2: {a: 1}, then reference 0x07 index 1 (index 0 is the array itself)
    const [array] = decodeAmf0(
      hex(['0a00000002', '03', '0001', '61', '003ff0000000000000', '000009', '07', '0001'].join('')),
    );
    assert.ok(Array.isArray(array));
    assert.deepEqual(array[0], { a: 1 });
    assert.equal(array[1], array[0]);
  });

  it('refuses a reference to an object that is still being decoded', () => {
    // {a: <reference 0>}: the object would contain itself
    rejects(hex('030001610700000000' + '09'), 'bad-amf');
  });

  it('refuses references that together stand for more than 16 MiB', () => {
    // a 60000-byte string in an object, then 300 references to it: 18 MB if written out
    const w = new Writer().u8(0x0a).u32(301).u8(0x03).u16(1).u8(0x73).u8(0x02).u16(60000).fill(0x78, 60000);
    w.u16(0).u8(0x09);
    for (let i = 0; i < 300; i++) w.u8(0x07).u16(1);
    rejects(w.toBuffer(), 'bad-amf');
  });

  it('accepts 64 nested arrays and refuses 65', () => {
    const nested = (n: number) => hex(`${'0a00000001'.repeat(n)}05`);
    assert.doesNotThrow(() => decodeAmf0(nested(64)));
    rejects(nested(65), 'bad-amf');
  });

  it('refuses an empty member name that is not followed by object-end', () => {
    rejects(hex('030000050009'), 'bad-amf');
  });

  it('refuses object-end, movie clip and record set markers as values', () => {
    for (const marker of ['09', '04', '0e', '12']) rejects(hex(marker), 'bad-amf');
  });

  it('reports a cut value as truncated', () => {
    rejects(hex('003ff0'), 'truncated');
    rejects(hex('020005616263'), 'truncated');
  });

  it('keeps a "__proto__" member as data instead of replacing the prototype', () => {
    const [obj] = decodeAmf0(hex(`030009${Buffer.from('__proto__').toString('hex')}0101000009`));
    assert.equal(Object.getPrototypeOf(obj), Object.prototype);
    assert.deepEqual(Object.keys(obj as object), ['__proto__']);
    assert.equal(Object.getOwnPropertyDescriptor(obj, '__proto__')?.value, true);
  });

  it('refuses to encode a cyclic value, a function or an empty member name', () => {
    const cyclic: Record<string, AmfValue> = {};
    cyclic.self = cyclic;
    assert.throws(() => encodeAmf0(cyclic), RangeError);
    assert.throws(() => encodeAmf0((() => 1) as unknown as AmfValue), TypeError);
    assert.throws(() => encodeAmf0({ '': 1 }), RangeError);
  });
});

describe('AMF0 with AMF3 objects', () => {
  it('writes objects behind 0x11 when told to, keeping numbers and strings AMF0', () => {
    const w = new Amf0Writer(new Writer(), { amf3Objects: true });
    w.write('x').write(1).write({ a: 1 });
    // 02 0001 78 = "x"; 00 3ff0.. = 1; then 11 (switch) 0a (object) 0b (inline dynamic traits,
    // no sealed members) 01 (class name "") 03 61 ("a") 04 01 (integer 1) 01 (end of members)
    assert.equal(
      w.writer.toBuffer().toString('hex'),
      '0200017800' + '3ff0000000000000' + '110a0b0103610401' + '01',
    );
  });

  it('shares AMF3 reference tables across the 0x11 switches of one message', () => {
    const w = new Amf0Writer(new Writer(), { amf3Objects: true });
    w.write({ a: 1 }).write({ a: 2 });
    // the second object references traits 0 (0x01) and string 0 "a" (0x00)
    const bytes = w.writer.toBuffer();
    assert.equal(bytes.toString('hex'), '110a0b01036104010111' + '0a01000402' + '01');
    assert.deepEqual(decodeAmf0(bytes), [{ a: 1 }, { a: 2 }]);
  });

  it('writes byte arrays as AMF3 ByteArray, AMF0 having no such type', () => {
    assert.equal(encodeAmf0(Buffer.from([1, 2, 3])).toString('hex'), '110c07010203');
    assert.deepEqual(decodeAmf0(hex('110c07010203')), [Buffer.from([1, 2, 3])]);
  });

  it('reads values one by one with Amf0Reader and reports done at the end', () => {
    const reader = new Amf0Reader(encodeAmf0('a', 2));
    assert.equal(reader.read(), 'a');
    assert.equal(reader.done, false);
    assert.equal(reader.read(), 2);
    assert.equal(reader.done, true);
    assert.deepEqual(reader.readAll(), []);
  });
});
