import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AmfValue, EcmaArray, TypedObject } from '../../runtime/rtmfp/amf-value.ts';
import { Amf3Reader, decodeAmf3 } from '../../runtime/rtmfp/amf3.ts';
import { Amf3Writer, encodeAmf3 } from '../../runtime/rtmfp/amf3-writer.ts';
import { Writer } from '../../runtime/rtmfp/binary.ts';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';

const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex');

/** Encodes `value`, checks the bytes, decodes them back to `value`. */
function roundTrip(value: AmfValue, expectedHex: string): void {
  assert.equal(encodeAmf3(value).toString('hex'), expectedHex.replace(/ /g, ''));
  assert.deepEqual(decodeAmf3(hex(expectedHex)), value);
}

function rejects(bytes: Buffer, reason: string): void {
  assert.throws(
    () => decodeAmf3(bytes),
    (e: unknown) => e instanceof ProtocolError && e.reason === reason,
  );
}

describe('AMF3 integers (U29, AMF3 spec §1.3.1)', () => {
  // U29: 1-3 bytes of 7 bits with the high bit as "more"; a 4th byte carries 8 bits.
  // Integers are 29-bit two's complement, so -1 is 0x1fffffff and -2^28 is 0x10000000.
  const cases: [number, string][] = [
    [0, '04 00'],
    [127, '04 7f'], // largest 1-byte U29
    [128, '04 81 00'], // 128 = 1·2^7 + 0
    [16383, '04 ff 7f'], // largest 2-byte U29: 127·2^7 + 127
    [16384, '04 81 80 00'], // 1·2^14 + 0·2^7 + 0
    [2097151, '04 ff ff 7f'], // 2^21-1, largest 3-byte U29
    [2097152, '04 80 c0 80 00'], // 2^21: bits 28-22 = 0, 21-15 = 0x40, 14-8 = 0, low byte 0
    [2 ** 28 - 1, '04 bf ff ff ff'], // 0x0fffffff: largest integer
    [-1, '04 ff ff ff ff'], // 0x1fffffff
    [-(2 ** 28), '04 c0 80 80 00'], // 0x10000000: smallest integer
    [-300, '04 ff ff fe d4'], // 2^29-300 = 0x1ffffed4: 7f, 7f, 7e (bits 14-8), d4
  ];
  for (const [value, bytes] of cases) {
    it(`writes ${value} as integer ${bytes}`, () => roundTrip(value, bytes));
  }

  it('writes numbers outside the 29-bit range, fractions and -0 as doubles', () => {
    roundTrip(2 ** 28, '05 41 b0 00 00 00 00 00 00'); // 2^28 = 1.0·2^28: exponent 1023+28 = 0x41b
    roundTrip(-(2 ** 28) - 1, '05 c1 b0 00 00 01 00 00 00');
    roundTrip(1.5, '05 3f f8 00 00 00 00 00 00');
    roundTrip(-0, '05 80 00 00 00 00 00 00 00');
  });
});

describe('AMF3 strings and references (AMF3 spec §1.3.2, §2.2)', () => {
  it('writes a string inline with its byte length shifted left and the low bit set', () => {
    roundTrip('hello', '06 0b 68656c6c6f'); // 0x0b = 5 << 1 | 1
    roundTrip('hé€', '06 0d 68 c3a9 e282ac'); // 6 UTF-8 bytes: 0x0d
  });

  it('writes the empty string as 0x01 and never references it', () => {
    roundTrip(['', ''], '09 05 01 06 01 06 01'); // array of 2 (0x05), no named members (0x01)
  });

  it('writes a repeated string as a reference to its table index', () => {
    // second "a" is string reference 0: 0 << 1 = 0x00
    roundTrip(['a', 'a'], '09 05 01 06 03 61 06 00');
  });

  it('writes a 300000-byte string with a 3-byte U29 length', () => {
    // 300000 << 1 | 1 = 600001 = 36·2^14 + 79·2^7 + 65 → a4 cf 41
    const s = 'x'.repeat(300000);
    const bytes = encodeAmf3(s);
    assert.equal(bytes.subarray(0, 4).toString('hex'), '06a4cf41');
    assert.equal(bytes.length, 4 + 300000);
    assert.equal(decodeAmf3(bytes), s);
  });

  it('writes a 1100000-byte string with a 4-byte U29 length', () => {
    // 1100000 << 1 | 1 = 2200001 = 0x2191c1: bits 28-22 = 0, 21-15 = 67, 14-8 = 17, low 0xc1
    const s = 'y'.repeat(1100000);
    const bytes = encodeAmf3(s);
    assert.equal(bytes.subarray(0, 5).toString('hex'), '0680c391c1');
    assert.equal(decodeAmf3(bytes), s);
  });
});

describe('AMF3 complex values', () => {
  it('writes a dense array with an empty named part', () => {
    roundTrip([1, 'a', null, true, undefined], '09 0b 01 04 01 06 03 61 01 03 00');
  });

  it('writes an array hole as undefined', () => {
    const holes: AmfValue[] = [];
    holes[1] = 2;
    assert.equal(encodeAmf3(holes).toString('hex'), '0905010004' + '02');
    assert.deepEqual(decodeAmf3(hex('09 05 01 00 04 02')), [undefined, 2]);
  });

  it('writes an EcmaArray as named members with dense count 0', () => {
    roundTrip(new EcmaArray({ a: 1, b: 'x' }), '09 01 03 61 04 01 03 62 06 03 78 01');
  });

  it('reads an array with named and dense parts as an EcmaArray keyed "0", "1", …', () => {
    // dense count 2 (0x05), a = 1, end of names, then 7 and 8
    const decoded = decodeAmf3(hex('09 05 03 61 04 01 01 04 07 04 08'));
    assert.deepEqual(decoded, new EcmaArray({ a: 1, 0: 7, 1: 8 }));
  });

  it('writes an anonymous object with inline dynamic traits (0x0b) and no class name', () => {
    // 0x0b = 0b1011: inline object, inline traits, dynamic, 0 sealed members; 01 = class ""
    roundTrip({ a: 1, b: { c: null } }, '0a 0b 01 03 61 04 01 03 62 0a 01 03 63 01 01 01');
  });

  it('writes the second anonymous object with a traits reference (0x01)', () => {
    // second object: traits ref 0 = 0 << 2 | 0b01; member "a" is string ref 0
    roundTrip([{ a: 1 }, { a: 2 }], '09 05 01 0a 0b 01 03 61 04 01 01 0a 01 00 04 02 01');
  });

  it('writes a repeated object as an object reference', () => {
    // object table: 0 = the array, 1 = the object; ref = 1 << 1
    const o = { k: true };
    const bytes = encodeAmf3([o, o]);
    assert.equal(bytes.toString('hex'), '0905010a0b01036b0301' + '0a02');
    const decoded = decodeAmf3(bytes) as AmfValue[];
    assert.deepEqual(decoded, [o, o]);
    assert.equal(decoded[0], decoded[1]);
  });

  it('writes a TypedObject with sealed traits and reuses them by reference', () => {
    // 0x13 = 1 sealed member << 4 | 0b0011; class "Foo" (07 466f6f); member "x" (03 78)
    const a = new TypedObject('Foo', { x: 1 });
    const b = new TypedObject('Foo', { x: 2 });
    roundTrip(a, '0a 13 07 466f6f 03 78 04 01');
    roundTrip([a, b], '09 05 01 0a 13 07 466f6f 03 78 04 01 0a 01 04 02');
  });

  it('reads a typed object with dynamic members into TypedObject fields', () => {
    // 0x1b = 1 sealed << 4 | dynamic | inline: sealed x = 1, dynamic y = 2
    assert.deepEqual(
      decodeAmf3(hex('0a 1b 07 466f6f 03 78 04 01 03 79 04 02 01')),
      new TypedObject('Foo', { x: 1, y: 2 }),
    );
  });

  it('writes dates as milliseconds and repeats them by reference', () => {
    const d = new Date(1700000000000);
    roundTrip(d, '08 01 4278bcfe56800000');
    roundTrip([d, d], '09 05 01 08 01 4278bcfe56800000 08 02');
  });

  it('writes a Buffer as a ByteArray and reads it back as a copy', () => {
    roundTrip(Buffer.from([1, 2, 3]), '0c 07 010203');
    const input = hex('0c 03 aa');
    const decoded = decodeAmf3(input) as Buffer;
    input[2] = 0;
    assert.equal(decoded[0], 0xaa);
  });

  it('reads XML and XMLDocument as strings', () => {
    assert.equal(decodeAmf3(hex('0b 09 3c612f3e')), '<a/>');
    assert.equal(decodeAmf3(hex('07 09 3c612f3e')), '<a/>');
  });

  it('round-trips nested structures', () => {
    const value = {
      name: 'stream',
      list: [1, -5, 2 ** 40, 'two', [new Date(0), { deep: [null, false] }]],
      meta: new EcmaArray({ width: 640, codec: 'avc1' }),
      raw: Buffer.from('abc'),
    };
    assert.deepEqual(decodeAmf3(encodeAmf3(value)), value);
  });

  it('keeps reference tables across values of one reader/writer', () => {
    const w = new Amf3Writer(new Writer());
    w.write('same').write('same');
    assert.equal(w.writer.toBuffer().toString('hex'), '0609' + '73616d65' + '0600');
    const r = new Amf3Reader(w.writer.toBuffer());
    assert.equal(r.read(), 'same');
    assert.equal(r.read(), 'same');
    assert.equal(r.done, true);
  });
});

describe('AMF3 input the decoder refuses', () => {
  it('refuses externalizable objects, vectors and dictionaries as bad-amf', () => {
    rejects(hex('0a 07 07 466f6f'), 'bad-amf'); // 0b0111: externalizable class Foo
    for (const marker of ['0d', '0e', '0f', '10', '11', '12']) rejects(hex(`${marker} 01`), 'bad-amf');
  });

  it('refuses string, object and traits references out of range', () => {
    rejects(hex('06 00'), 'bad-amf');
    rejects(hex('09 02'), 'bad-amf');
    rejects(hex('0a 01'), 'bad-amf');
  });

  it('refuses an array that references itself', () => {
    rejects(hex('09 03 01 09 00'), 'bad-amf');
  });

  it('refuses references that together stand for more than 16 MiB', () => {
    // a 1000-byte string, then 20000 references to it
    const w = new Writer().u8(0x09).u8(0x82).u8(0xb8).u8(0x41).u8(0x01); // 20000 << 1 | 1 = 40001
    w.u8(0x06).u8(0x8f).u8(0x51).fill(0x7a, 1000); // 1000 << 1 | 1 = 2001
    for (let i = 1; i < 20000; i++) w.u8(0x06).u8(0x00);
    rejects(w.toBuffer(), 'bad-amf');
  });

  it('accepts 64 nested arrays and refuses 65', () => {
    const nested = (n: number) => hex(`${'0903 01'.repeat(n)}01`);
    assert.doesNotThrow(() => decodeAmf3(nested(64)));
    rejects(nested(65), 'bad-amf');
  });

  it('refuses bytes after the value and cut values', () => {
    rejects(hex('01 01'), 'bad-amf');
    rejects(hex('04 ff ff'), 'truncated');
    rejects(hex('06 0b 6865'), 'truncated');
  });

  it('keeps a "__proto__" member as data instead of replacing the prototype', () => {
    const obj = decodeAmf3(hex(`0a 0b 01 13 ${Buffer.from('__proto__').toString('hex')} 03 01`));
    assert.equal(Object.getPrototypeOf(obj), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(obj, '__proto__')?.value, true);
  });

  it('refuses to encode a cyclic value or an empty member name', () => {
    const cyclic: AmfValue[] = [];
    cyclic.push(cyclic);
    assert.throws(() => encodeAmf3(cyclic), TypeError);
    assert.throws(() => encodeAmf3({ '': 1 }), RangeError);
  });
});
