import {
  type AmfObject,
  type AmfValue,
  badAmf,
  EcmaArray,
  enterContainer,
  ReferenceTable,
  readUtf8,
  setMember,
  TypedObject,
} from './amf-value.ts';
import { Reader } from './binary.ts';

/** AMF3 spec §3.1 type markers. */
export const Amf3Marker = {
  undefined: 0x00,
  null: 0x01,
  false: 0x02,
  true: 0x03,
  integer: 0x04,
  double: 0x05,
  string: 0x06,
  xmlDoc: 0x07,
  date: 0x08,
  array: 0x09,
  object: 0x0a,
  xml: 0x0b,
  byteArray: 0x0c,
  vectorInt: 0x0d,
  dictionary: 0x11,
} as const;
const UNSUPPORTED_NAMES = [
  'Vector.<int>',
  'Vector.<uint>',
  'Vector.<Number>',
  'Vector.<Object>',
  'Dictionary',
];

/** AMF3 spec §1.3.1: the integer type carries 29 signed bits; wider numbers go as doubles. */
export const AMF3_INT_MIN = -(2 ** 28);
export const AMF3_INT_MAX = 2 ** 28 - 1;
/** A U29 length is shifted left by one for the inline/reference bit, leaving 28 bits. */
export const AMF3_MAX_LENGTH = 2 ** 28 - 1;

/** U29O-traits low bits (AMF3 spec §3.12): inline object + inline traits, externalizable, dynamic. */
export const TRAITS_INLINE = 0b0011;
const TRAITS_EXTERNALIZABLE = 0b0100;
export const TRAITS_DYNAMIC = 0b1000;
/** The empty UTF-8-vr, U29 `(0 << 1) | 1`: empty strings are never referenced and end member lists. */
export const EMPTY_STRING = 0x01;

interface Traits {
  className: string;
  members: string[];
  dynamic: boolean;
  /** Characters a traits reference stands for, counted against MAX_REFERENCE_EXPANSION. */
  size: number;
}

/**
 * Decodes AMF3 values. The string, object and traits reference tables (AMF3 spec §2.2) live as
 * long as the reader: one message, also across AMF0 0x11 switches (as MonaServer/librtmfp
 * write them). A reference to a value still being decoded would build a cycle and is refused.
 */
export class Amf3Reader {
  readonly reader: Reader;
  private readonly strings: string[] = [];
  private readonly objects: ReferenceTable;
  private readonly traits: Traits[] = [];

  constructor(input: Buffer | Reader) {
    this.reader = input instanceof Reader ? input : new Reader(input);
    this.objects = new ReferenceTable(this.reader);
  }

  get done(): boolean {
    return this.reader.remaining === 0;
  }

  /** Reads one value; `depth` is its nesting level when it is embedded in AMF0. */
  read(depth = 0): AmfValue {
    const r = this.reader;
    const marker = r.u8();
    switch (marker) {
      case Amf3Marker.undefined:
        return undefined;
      case Amf3Marker.null:
        return null;
      case Amf3Marker.false:
        return false;
      case Amf3Marker.true:
        return true;
      case Amf3Marker.integer:
        return (this.u29() << 3) >> 3; // sign-extend from 29 bits
      case Amf3Marker.double:
        return r.f64();
      case Amf3Marker.string:
        return this.string();
      case Amf3Marker.xmlDoc:
      case Amf3Marker.xml:
        return this.xml();
      case Amf3Marker.date:
        return this.date();
      case Amf3Marker.array:
        return this.array(depth);
      case Amf3Marker.object:
        return this.object(depth);
      case Amf3Marker.byteArray:
        return this.byteArray();
      default:
        if (marker >= Amf3Marker.vectorInt && marker <= Amf3Marker.dictionary) {
          throw badAmf(`AMF3 ${UNSUPPORTED_NAMES[marker - Amf3Marker.vectorInt]} is not supported`);
        }
        throw badAmf(`unknown AMF3 marker 0x${marker.toString(16)}`);
    }
  }

  /** AMF3 spec §1.3.1 U29: 7 bits per byte with a continuation bit, all 8 bits in a 4th byte. */
  private u29(): number {
    const r = this.reader;
    let b = r.u8();
    if (b < 0x80) return b;
    let v = (b & 0x7f) << 7;
    b = r.u8();
    if (b < 0x80) return v | b;
    v = (v | (b & 0x7f)) << 7;
    b = r.u8();
    if (b < 0x80) return v | b;
    return ((v | (b & 0x7f)) << 8) | r.u8();
  }

  private string(): string {
    const header = this.u29();
    if ((header & 1) === 0) {
      const s = this.strings[header >>> 1];
      if (s === undefined) throw badAmf(`AMF3 string reference ${header >>> 1} out of range`);
      this.objects.expand(s.length);
      return s;
    }
    const length = header >>> 1;
    if (length === 0) return '';
    const s = readUtf8(this.reader, length);
    this.strings.push(s);
    return s;
  }

  private xml(): AmfValue {
    const header = this.u29();
    if ((header & 1) === 0) return this.objects.get(header >>> 1, 'AMF3 object');
    const slot = this.objects.reserve();
    return this.objects.set(slot, readUtf8(this.reader, header >>> 1));
  }

  private date(): AmfValue {
    const header = this.u29();
    if ((header & 1) === 0) return this.objects.get(header >>> 1, 'AMF3 object');
    const slot = this.objects.reserve();
    return this.objects.set(slot, new Date(this.reader.f64()));
  }

  private byteArray(): AmfValue {
    const header = this.u29();
    if ((header & 1) === 0) return this.objects.get(header >>> 1, 'AMF3 object');
    const slot = this.objects.reserve();
    // A copy: a view would pin the whole datagram buffer for as long as a handler keeps it.
    return this.objects.set(slot, Buffer.from(this.reader.bytes(header >>> 1)));
  }

  /** AMF3 spec §3.11: dense count, then named members up to an empty name, then dense values. */
  private array(depth: number): AmfValue {
    const header = this.u29();
    if ((header & 1) === 0) return this.objects.get(header >>> 1, 'AMF3 object');
    enterContainer(depth);
    const slot = this.objects.reserve();
    const denseCount = header >>> 1;
    let name = this.string();
    if (name === '') {
      const dense: AmfValue[] = [];
      for (let i = 0; i < denseCount; i++) dense.push(this.read(depth + 1));
      return this.objects.set(slot, dense);
    }
    const entries: AmfObject = {};
    for (; name !== ''; name = this.string()) setMember(entries, name, this.read(depth + 1));
    for (let i = 0; i < denseCount; i++) setMember(entries, String(i), this.read(depth + 1));
    return this.objects.set(slot, new EcmaArray(entries));
  }

  /** AMF3 spec §3.12: traits (inline or referenced), sealed values, then dynamic members. */
  private object(depth: number): AmfValue {
    const header = this.u29();
    if ((header & 1) === 0) return this.objects.get(header >>> 1, 'AMF3 object');
    enterContainer(depth);
    const traits = this.traitsOf(header);
    const slot = this.objects.reserve();
    const fields: AmfObject = {};
    for (const name of traits.members) setMember(fields, name, this.read(depth + 1));
    if (traits.dynamic) {
      for (let name = this.string(); name !== ''; name = this.string()) {
        setMember(fields, name, this.read(depth + 1));
      }
    }
    return this.objects.set(
      slot,
      traits.className === '' ? fields : new TypedObject(traits.className, fields),
    );
  }

  private traitsOf(header: number): Traits {
    if ((header & 0b10) === 0) {
      const traits = this.traits[header >>> 2];
      if (traits === undefined) throw badAmf(`AMF3 traits reference ${header >>> 2} out of range`);
      this.objects.expand(traits.size);
      return traits;
    }
    const className = this.string();
    // The encoding of an externalizable object is private to its class; it cannot be skipped.
    if (header & TRAITS_EXTERNALIZABLE)
      throw badAmf(`AMF3 externalizable class "${className}" is not supported`);
    const members: string[] = [];
    let size = className.length;
    for (let i = header >>> 4; i > 0; i--) {
      const name = this.string();
      members.push(name);
      size += name.length;
    }
    const traits = { className, members, dynamic: (header & TRAITS_DYNAMIC) !== 0, size };
    this.traits.push(traits);
    return traits;
  }
}

/** Decodes exactly one AMF3 value filling `buf`. */
export function decodeAmf3(buf: Buffer): AmfValue {
  const reader = new Amf3Reader(buf);
  const value = reader.read();
  if (!reader.done) throw badAmf(`${reader.reader.remaining} bytes after the AMF3 value`);
  return value;
}
