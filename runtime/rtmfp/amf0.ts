import {
  type AmfObject,
  type AmfValue,
  badAmf,
  EcmaArray,
  enterContainer,
  MAX_AMF_DEPTH,
  ReferenceTable,
  readUtf8,
  setMember,
  TypedObject,
} from './amf-value.ts';
import { Amf3Reader } from './amf3.ts';
import { Amf3Writer } from './amf3-writer.ts';
import { Reader, Writer } from './binary.ts';

export { type AmfObject, type AmfValue, EcmaArray, TypedObject } from './amf-value.ts';

/** AMF0 spec §2.1 type markers. */
export const Amf0Marker = {
  number: 0x00,
  boolean: 0x01,
  string: 0x02,
  object: 0x03,
  movieClip: 0x04,
  null: 0x05,
  undefined: 0x06,
  reference: 0x07,
  ecmaArray: 0x08,
  objectEnd: 0x09,
  strictArray: 0x0a,
  date: 0x0b,
  longString: 0x0c,
  unsupported: 0x0d,
  recordSet: 0x0e,
  xmlDocument: 0x0f,
  typedObject: 0x10,
  /** AMF0 spec §3.1: the next value is AMF3 (avmplus-object-marker). */
  avmPlus: 0x11,
} as const;

/** Longest string the 0x02 form (u16 length) holds; longer ones use 0x0c (u32 length). */
const MAX_SHORT_STRING = 0xffff;

/**
 * Decodes AMF0 values, switching to AMF3 for one value after each 0x11 marker. All switches
 * in one reader share one set of AMF3 reference tables (MonaServer/librtmfp write them so).
 * A reference (0x07) to an object still being decoded would build a cycle and is refused.
 */
export class Amf0Reader {
  readonly reader: Reader;
  /** AMF0 spec §2.9: anonymous/typed objects, ECMA and strict arrays, in order of their start. */
  private readonly objects: ReferenceTable;
  private amf3?: Amf3Reader;

  constructor(input: Buffer | Reader) {
    this.reader = input instanceof Reader ? input : new Reader(input);
    this.objects = new ReferenceTable(this.reader);
  }

  get done(): boolean {
    return this.reader.remaining === 0;
  }

  read(): AmfValue {
    return this.value(0);
  }

  /** Reads values until the input ends. */
  readAll(): AmfValue[] {
    const values: AmfValue[] = [];
    while (!this.done) values.push(this.value(0));
    return values;
  }

  private value(depth: number): AmfValue {
    const r = this.reader;
    const marker = r.u8();
    switch (marker) {
      case Amf0Marker.number:
        return r.f64();
      case Amf0Marker.boolean:
        return r.u8() !== 0;
      case Amf0Marker.string:
        return readUtf8(r, r.u16());
      case Amf0Marker.longString:
      case Amf0Marker.xmlDocument:
        return readUtf8(r, r.u32());
      case Amf0Marker.null:
        return null;
      case Amf0Marker.undefined:
      case Amf0Marker.unsupported: // §2.15: "an unsupported type", nothing follows
        return undefined;
      case Amf0Marker.date: {
        const date = new Date(r.f64());
        r.u16(); // §2.13 time-zone: reserved, "should be set to 0x0000"; the ms are UTC
        return date;
      }
      case Amf0Marker.reference:
        return this.objects.get(r.u16(), 'AMF0');
      case Amf0Marker.object: {
        const slot = this.enter(depth);
        const members: AmfObject = {};
        this.members(members, depth);
        return this.objects.set(slot, members);
      }
      case Amf0Marker.typedObject: {
        const slot = this.enter(depth);
        const typed = new TypedObject(readUtf8(r, r.u16()));
        this.members(typed.fields, depth);
        return this.objects.set(slot, typed);
      }
      case Amf0Marker.ecmaArray: {
        const slot = this.enter(depth);
        r.u32(); // the count is a hint: Adobe writes 0 there (vector ecma_array_count_0)
        const array = new EcmaArray();
        this.members(array.entries, depth);
        return this.objects.set(slot, array);
      }
      case Amf0Marker.strictArray: {
        const slot = this.enter(depth);
        const values: AmfValue[] = [];
        for (let n = r.u32(); n > 0; n--) values.push(this.value(depth + 1));
        return this.objects.set(slot, values);
      }
      case Amf0Marker.avmPlus:
        this.amf3 ??= new Amf3Reader(r);
        return this.amf3.read(depth);
      case Amf0Marker.objectEnd:
        throw badAmf('AMF0 object-end marker 0x09 outside an object');
      case Amf0Marker.movieClip:
      case Amf0Marker.recordSet:
        throw badAmf(`AMF0 marker 0x${marker.toString(16)} is reserved and not supported`);
      default:
        throw badAmf(`unknown AMF0 marker 0x${marker.toString(16)}`);
    }
  }

  private enter(depth: number): number {
    enterContainer(depth);
    return this.objects.reserve();
  }

  /** AMF0 spec §2.5: (UTF-8 name, value)* ended by an empty name and object-end 0x09. */
  private members(target: AmfObject, depth: number): void {
    const r = this.reader;
    for (;;) {
      const length = r.u16();
      if (length === 0) {
        if (r.u8() !== Amf0Marker.objectEnd) throw badAmf('AMF0 empty member name not followed by 0x09');
        return;
      }
      setMember(target, readUtf8(r, length), this.value(depth + 1));
    }
  }
}

export interface Amf0WriterOptions {
  /**
   * Write objects and arrays as AMF3 behind 0x11 markers, for clients that connected with
   * objectEncoding 3; numbers, strings and dates stay AMF0. Byte arrays always go as AMF3:
   * AMF0 has no type for them.
   */
  amf3Objects?: boolean;
}

/**
 * Encodes AMF0 values. Writes no references (0x07): rtmfp-cpp cannot decode them, so shared
 * values are written out each time. Object members go in insertion order.
 */
export class Amf0Writer {
  readonly writer: Writer;
  private readonly amf3Objects: boolean;
  private amf3?: Amf3Writer;

  constructor(writer: Writer = new Writer(), options: Amf0WriterOptions = {}) {
    this.writer = writer;
    this.amf3Objects = options.amf3Objects === true;
  }

  write(value: AmfValue): this {
    this.value(value, 0);
    return this;
  }

  private value(value: AmfValue, depth: number): void {
    const w = this.writer;
    switch (typeof value) {
      case 'number':
        w.u8(Amf0Marker.number).f64(value);
        return;
      case 'boolean':
        w.u8(Amf0Marker.boolean).u8(value ? 1 : 0);
        return;
      case 'string': {
        const bytes = Buffer.from(value, 'utf8');
        if (bytes.length > MAX_SHORT_STRING) w.u8(Amf0Marker.longString).u32(bytes.length);
        else w.u8(Amf0Marker.string).u16(bytes.length);
        w.bytes(bytes);
        return;
      }
      case 'undefined':
        w.u8(Amf0Marker.undefined);
        return;
      case 'object':
        break;
      default:
        throw new TypeError(`amf0: cannot encode a ${typeof value}`);
    }
    if (value === null) {
      w.u8(Amf0Marker.null);
    } else if (value instanceof Date) {
      w.u8(Amf0Marker.date).f64(value.getTime()).u16(0);
    } else if (this.amf3Objects || value instanceof Uint8Array) {
      this.amf3 ??= new Amf3Writer(w);
      w.u8(Amf0Marker.avmPlus);
      this.amf3.write(value, depth);
    } else {
      if (depth >= MAX_AMF_DEPTH)
        throw new RangeError(`amf0: value nests deeper than ${MAX_AMF_DEPTH} (cyclic?)`);
      if (Array.isArray(value)) {
        w.u8(Amf0Marker.strictArray).u32(value.length);
        for (let i = 0; i < value.length; i++) this.value(value[i], depth + 1); // holes go as undefined
      } else if (value instanceof EcmaArray) {
        // The real count, as rtmfp-cpp writes it (Adobe writes 0; readers ignore it).
        w.u8(Amf0Marker.ecmaArray).u32(Object.keys(value.entries).length);
        this.members(value.entries, depth);
      } else if (value instanceof TypedObject) {
        w.u8(Amf0Marker.typedObject);
        this.name(value.className);
        this.members(value.fields, depth);
      } else {
        w.u8(Amf0Marker.object);
        this.members(value as AmfObject, depth);
      }
    }
  }

  private members(members: AmfObject, depth: number): void {
    for (const name of Object.keys(members)) {
      if (name === '') throw new RangeError('amf0: a member name must not be empty (it ends the object)');
      this.name(name);
      this.value(members[name], depth + 1);
    }
    this.writer.u16(0).u8(Amf0Marker.objectEnd);
  }

  /** A marker-less UTF-8 string with a u16 length (member and class names). */
  private name(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    if (bytes.length > MAX_SHORT_STRING)
      throw new RangeError(`amf0: name of ${bytes.length} bytes exceeds 65535`);
    this.writer.u16(bytes.length).bytes(bytes);
  }
}

/** Encodes values one after another in AMF0. */
export function encodeAmf0(...values: AmfValue[]): Buffer {
  const writer = new Amf0Writer();
  for (const value of values) writer.write(value);
  return writer.writer.toBuffer();
}

/** Decodes every AMF0 value in `buf`. */
export function decodeAmf0(buf: Buffer): AmfValue[] {
  return new Amf0Reader(buf).readAll();
}
