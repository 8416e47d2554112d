import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { MAX_VLU, Reader, vluLength, Writer } from '../../runtime/rtmfp/binary.ts';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';
import { parseOptions, readOptions, writeMarker, writeOption } from '../../runtime/rtmfp/option.ts';

interface VluVectors {
  encodings: { name: string; value: string; hex: string }[];
  decoding: { hex: string; consumed: number; value?: string; note: string }[];
  options: { description: string; hex: string; type?: string; valueHex?: string; isMarker?: boolean }[];
  field: { payloadHex: string; hex: string };
}

const vectors: VluVectors = JSON.parse(
  readFileSync(new URL('../fixtures/vectors/vlu.json', import.meta.url), 'utf8'),
);
const hex = (h: string) => Buffer.from(h, 'hex');

function protocolError(reason: string) {
  return (e: unknown) => e instanceof ProtocolError && e.reason === reason;
}

function encodeVlu(value: number): string {
  return new Writer(1).vlu(value).toBuffer().toString('hex');
}

describe('VLU encodings from rtmfp-cpp', () => {
  for (const v of vectors.encodings) {
    const big = BigInt(v.value);
    if (big <= BigInt(MAX_VLU)) {
      test(`${v.name} encodes to ${v.hex} and decodes back`, () => {
        const value = Number(big);
        assert.equal(encodeVlu(value), v.hex);
        assert.equal(vluLength(value), v.hex.length / 2);
        const r = new Reader(hex(v.hex));
        assert.equal(r.vlu(), value);
        assert.equal(r.remaining, 0);
      });
    } else {
      test(`${v.name} (above 2^53-1) is rejected with vlu-overflow`, () => {
        assert.throws(() => new Reader(hex(v.hex)).vlu(), protocolError('vlu-overflow'));
      });
    }
  }

  test('the writer refuses values it cannot carry exactly', () => {
    assert.throws(() => new Writer().vlu(MAX_VLU + 1), RangeError);
    assert.throws(() => new Writer().vlu(-1), RangeError);
    assert.throws(() => new Writer().vlu(1.5), RangeError);
  });

  test('consecutive VLUs are read back in order from one buffer', () => {
    const values = [0, 127, 128, 300, 16383, 16384, 2 ** 32 - 1, MAX_VLU];
    const w = new Writer(2);
    for (const v of values) w.vlu(v);
    const r = new Reader(w.toBuffer());
    assert.deepEqual(
      values.map(() => r.vlu()),
      values,
    );
    assert.equal(r.remaining, 0);
  });
});

describe('VLU decoding from rtmfp-cpp', () => {
  for (const d of vectors.decoding) {
    const r = new Reader(hex(d.hex));
    if (d.consumed === 0) {
      test(`${d.hex} is truncated: ${d.note}`, () => {
        assert.throws(() => r.vlu(), protocolError('truncated'));
      });
    } else if (BigInt(d.value ?? '0') > BigInt(MAX_VLU)) {
      test(`${d.hex} overflows 2^53-1 and is rejected instead of saturating`, () => {
        assert.throws(() => r.vlu(), protocolError('vlu-overflow'));
      });
    } else {
      test(`${d.hex} reads as ${d.value} using ${d.consumed} bytes: ${d.note}`, () => {
        assert.equal(r.vlu(), Number(d.value));
        assert.equal(r.pos, d.consumed);
      });
    }
  }

  test('an empty buffer is truncated', () => {
    assert.throws(() => new Reader(Buffer.alloc(0)).vlu(), protocolError('truncated'));
  });

  test('a VLU stops at the reader end even when the buffer goes on', () => {
    assert.throws(() => new Reader(hex('818000'), 0, 2).vlu(), protocolError('truncated'));
  });
});

describe('options and the option list marker from rtmfp-cpp', () => {
  for (const o of vectors.options) {
    if (o.isMarker) {
      test('the marker is a single zero byte and ends an option list', () => {
        assert.equal(writeMarker(new Writer()).toBuffer().toString('hex'), o.hex);
        const r = new Reader(hex(`${o.hex}aa`));
        assert.deepEqual(readOptions(r), []);
        assert.equal(r.pos, 1);
      });
      continue;
    }
    test(`encodes and parses: ${o.description}`, () => {
      const type = Number(o.type);
      const value = hex(o.valueHex ?? '');
      assert.equal(writeOption(new Writer(), type, value).toBuffer().toString('hex'), o.hex);
      assert.deepEqual(parseOptions(hex(o.hex)), [{ type, value }]);
    });
  }

  test('an option list is read up to its marker; what follows is left for the caller', () => {
    const list = vectors.options.filter((o) => !o.isMarker);
    const bytes = hex(`${list.map((o) => o.hex).join('')}00cafe`);
    const r = new Reader(bytes);
    const options = readOptions(r);
    assert.deepEqual(
      options.map((o) => [o.type, o.value.toString('hex')]),
      list.map((o) => [Number(o.type), o.valueHex]),
    );
    assert.equal(r.rest().toString('hex'), 'cafe');
  });

  test('an option whose length runs past its container is truncated', () => {
    assert.throws(() => parseOptions(hex('050a6162')), protocolError('truncated'));
  });

  test('an option whose type VLU runs past the option is truncated', () => {
    assert.throws(() => parseOptions(hex('0181')), protocolError('truncated'));
  });
});

describe('length-prefixed field', () => {
  test('encodes as VLU length then bytes and reads back as a view', () => {
    const payload = hex(vectors.field.payloadHex);
    assert.equal(new Writer().field(payload).toBuffer().toString('hex'), vectors.field.hex);
    const bytes = hex(vectors.field.hex);
    const r = new Reader(bytes);
    const field = r.field();
    assert.deepEqual(field, payload);
    assert.equal(field.buffer, bytes.buffer);
    assert.equal(r.remaining, 0);
  });

  test('a field of 200 bytes takes a two-byte length', () => {
    const payload = Buffer.alloc(200, 0x5a);
    const bytes = new Writer(4).field(payload).toBuffer();
    assert.equal(bytes.subarray(0, 2).toString('hex'), '8148');
    assert.deepEqual(new Reader(bytes).field(), payload);
  });

  test('a field longer than what is left is truncated', () => {
    assert.throws(() => new Reader(hex('04616263')).field(), protocolError('truncated'));
  });
});
