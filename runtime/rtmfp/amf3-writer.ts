import { type AmfObject, type AmfValue, EcmaArray, MAX_AMF_DEPTH, TypedObject } from './amf-value.ts';
import {
  AMF3_INT_MAX,
  AMF3_INT_MIN,
  AMF3_MAX_LENGTH,
  Amf3Marker,
  EMPTY_STRING,
  TRAITS_DYNAMIC,
  TRAITS_INLINE,
} from './amf3.ts';
import { Writer } from './binary.ts';

/** The low bit of U29O/U29A/U29D/U29B headers: the value follows inline (else a reference). */
const INLINE = 1;
/** Traits-table key of anonymous dynamic objects; sealed traits use a JSON key starting with '['. */
const ANONYMOUS_TRAITS = 'dynamic';

/**
 * Encodes AMF3 values. Repeated strings, objects and traits are written as references into
 * tables that live as long as the writer (one message; see Amf3Reader). Objects go out as
 * anonymous dynamic objects, arrays dense, EcmaArray as named members, TypedObject as sealed
 * traits with its class name, Uint8Array as ByteArray.
 */
export class Amf3Writer {
  readonly writer: Writer;
  private readonly strings = new Map<string, number>();
  private readonly objects = new Map<object, number>();
  private readonly traits = new Map<string, number>();
  /** Containers being written: meeting one again means the value is cyclic. */
  private readonly open = new Set<object>();

  constructor(writer: Writer = new Writer()) {
    this.writer = writer;
  }

  /** Writes one value; `depth` is its nesting level when it is embedded in AMF0. */
  write(value: AmfValue, depth = 0): this {
    const w = this.writer;
    switch (typeof value) {
      case 'undefined':
        w.u8(Amf3Marker.undefined);
        return this;
      case 'boolean':
        w.u8(value ? Amf3Marker.true : Amf3Marker.false);
        return this;
      case 'number':
        if (
          Number.isInteger(value) &&
          value >= AMF3_INT_MIN &&
          value <= AMF3_INT_MAX &&
          !Object.is(value, -0)
        ) {
          w.u8(Amf3Marker.integer);
          this.u29(value & 0x1fffffff);
        } else {
          w.u8(Amf3Marker.double).f64(value);
        }
        return this;
      case 'string':
        w.u8(Amf3Marker.string);
        this.string(value);
        return this;
      case 'object':
        break;
      default:
        throw new TypeError(`amf3: cannot encode a ${typeof value}`);
    }
    if (value === null) {
      w.u8(Amf3Marker.null);
      return this;
    }
    if (value instanceof Date) {
      if (this.reference(Amf3Marker.date, value)) return this;
      this.u29(INLINE); // U29D-value: no data besides the inline bit
      w.f64(value.getTime());
    } else if (value instanceof Uint8Array) {
      if (this.reference(Amf3Marker.byteArray, value)) return this;
      if (value.length > AMF3_MAX_LENGTH)
        throw new RangeError(`amf3: ByteArray longer than ${AMF3_MAX_LENGTH}`);
      this.u29((value.length << 1) | INLINE);
      w.bytes(value);
    } else if (Array.isArray(value)) {
      if (this.reference(Amf3Marker.array, value)) return this;
      this.enter(value, depth);
      this.u29((value.length << 1) | INLINE);
      w.u8(EMPTY_STRING); // no named members
      for (let i = 0; i < value.length; i++) this.write(value[i], depth + 1); // holes go as undefined
      this.open.delete(value);
    } else if (value instanceof EcmaArray) {
      if (this.reference(Amf3Marker.array, value)) return this;
      this.enter(value, depth);
      this.u29(INLINE); // dense count 0: every entry is a named member
      this.dynamicMembers(value.entries, depth);
      this.open.delete(value);
    } else if (value instanceof TypedObject) {
      if (this.reference(Amf3Marker.object, value)) return this;
      this.enter(value, depth);
      const names = Object.keys(value.fields);
      if (!this.traitsReference(JSON.stringify([value.className, names]))) {
        this.u29((names.length << 4) | TRAITS_INLINE);
        this.string(value.className);
        for (const name of names) this.string(name);
      }
      for (const name of names) this.write(value.fields[name], depth + 1);
      this.open.delete(value);
    } else {
      if (this.reference(Amf3Marker.object, value)) return this;
      this.enter(value, depth);
      if (!this.traitsReference(ANONYMOUS_TRAITS)) {
        this.u29(TRAITS_DYNAMIC | TRAITS_INLINE);
        w.u8(EMPTY_STRING); // no class name
      }
      this.dynamicMembers(value as AmfObject, depth);
      this.open.delete(value);
    }
    return this;
  }

  /**
   * Writes the marker, then either a reference to an earlier copy of `value` (true) or
   * nothing, after giving `value` the next object-table index as the reader will (false).
   */
  private reference(marker: number, value: object): boolean {
    this.writer.u8(marker);
    const index = this.objects.get(value);
    if (index === undefined) {
      this.objects.set(value, this.objects.size);
      return false;
    }
    if (this.open.has(value)) throw new TypeError('amf3: cannot encode a cyclic value');
    this.u29(index << 1);
    return true;
  }

  private traitsReference(key: string): boolean {
    const index = this.traits.get(key);
    if (index === undefined) {
      this.traits.set(key, this.traits.size);
      return false;
    }
    this.u29((index << 2) | 0b01); // U29O-traits-ref: inline object, referenced traits
    return true;
  }

  private enter(value: object, depth: number): void {
    if (depth >= MAX_AMF_DEPTH) throw new RangeError(`amf3: value nests deeper than ${MAX_AMF_DEPTH}`);
    this.open.add(value);
  }

  private dynamicMembers(members: AmfObject, depth: number): void {
    for (const name of Object.keys(members)) {
      if (name === '')
        throw new RangeError('amf3: a member name must not be empty (it ends the member list)');
      this.string(name);
      this.write(members[name], depth + 1);
    }
    this.writer.u8(EMPTY_STRING);
  }

  /** UTF-8-vr (AMF3 spec §1.3.2): a reference for a repeated non-empty string, else inline. */
  private string(s: string): void {
    if (s === '') {
      this.writer.u8(EMPTY_STRING);
      return;
    }
    const index = this.strings.get(s);
    if (index !== undefined) {
      this.u29(index << 1);
      return;
    }
    this.strings.set(s, this.strings.size);
    const bytes = Buffer.from(s, 'utf8');
    if (bytes.length > AMF3_MAX_LENGTH) {
      throw new RangeError(`amf3: string of ${bytes.length} bytes exceeds ${AMF3_MAX_LENGTH}`);
    }
    this.u29((bytes.length << 1) | INLINE);
    this.writer.bytes(bytes);
  }

  /** AMF3 spec §1.3.1 U29; `v` must be below 2^29. */
  private u29(v: number): void {
    const w = this.writer;
    if (v < 0x80) {
      w.u8(v);
    } else if (v < 0x4000) {
      w.u8((v >> 7) | 0x80).u8(v & 0x7f);
    } else if (v < 0x200000) {
      w.u8((v >> 14) | 0x80)
        .u8(((v >> 7) & 0x7f) | 0x80)
        .u8(v & 0x7f);
    } else {
      w.u8((v >> 22) | 0x80)
        .u8(((v >> 15) & 0x7f) | 0x80)
        .u8(((v >> 8) & 0x7f) | 0x80)
        .u8(v & 0xff);
    }
  }
}

/** Encodes one AMF3 value with fresh reference tables. */
export function encodeAmf3(value: AmfValue): Buffer {
  return new Amf3Writer().write(value).writer.toBuffer();
}
