import type { Reader } from './binary.ts';
import { ProtocolError } from './errors.ts';

/**
 * The JavaScript side of AMF0 and AMF3. Plain JS values cover most types; the classes below
 * carry what JS cannot tell apart from a plain object or array.
 */
export type AmfValue =
  | number
  | boolean
  | string
  | null
  | undefined
  | Date
  | Uint8Array
  | AmfValue[]
  | EcmaArray
  | TypedObject
  | AmfObject;

/** An anonymous object (AMF0 0x03, AMF3 dynamic object without a class name). */
export interface AmfObject {
  [member: string]: AmfValue;
}

/**
 * An associative array (AMF0 ECMA array 0x08, AMF3 array with named members), e.g. the
 * `onMetaData` argument of `@setDataFrame`. Kept apart from AmfObject so it re-encodes as one.
 * Entry order is insertion order, except that JS lists integer-like keys first.
 */
export class EcmaArray {
  readonly entries: AmfObject;

  constructor(entries: AmfObject = {}) {
    this.entries = entries;
  }
}

/** An object of a registered ActionScript class (AMF0 0x10, AMF3 sealed traits with a class name). */
export class TypedObject {
  readonly className: string;
  readonly fields: AmfObject;

  constructor(className: string, fields: AmfObject = {}) {
    this.className = className;
    this.fields = fields;
  }
}

/** Deepest nesting of objects/arrays a decoder accepts and an encoder produces. */
export const MAX_AMF_DEPTH = 64;

/**
 * References (AMF0 0x07, AMF3 object/string/traits references) let a few bytes stand for a
 * large value, and a handler that echoes the value would write it out in full. Each decoder
 * stops once its references stand for more than this many bytes: the largest TC message
 * rtmfp-cpp accepts (`RTMFPTCConnection::acceptFlow` sizes flow buffers to 16 MiB).
 */
export const MAX_REFERENCE_EXPANSION = 1 << 24;

/**
 * Sets a decoded member without letting the peer pick the object's prototype: a plain
 * assignment to `__proto__` would replace it instead of adding a member.
 */
export function setMember(target: AmfObject, name: string, value: AmfValue): void {
  if (name === '__proto__') {
    Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[name] = value;
  }
}

/** Reads `length` bytes of UTF-8 as a string without making an intermediate view. */
export function readUtf8(r: Reader, length: number): string {
  if (length > r.remaining) {
    throw new ProtocolError('truncated', `string of ${length} bytes, ${r.remaining} left`);
  }
  const s = r.buf.toString('utf8', r.pos, r.pos + length);
  r.pos += length;
  return s;
}

/**
 * A decoder's table of complex values for references (AMF0 spec §2.9, AMF3 spec §2.2), which
 * also keeps the count of bytes that references stand for (see MAX_REFERENCE_EXPANSION).
 */
export class ReferenceTable {
  private readonly reader: Reader;
  private readonly values: AmfValue[] = [];
  /** Decoded size of each entry; -1 while it is being decoded, so a reference to it is a cycle. */
  private readonly sizes: number[] = [];
  /** Input position plus expansion when each entry started; the growth by its end is its size. */
  private readonly marks: number[] = [];
  private expanded = 0;

  constructor(reader: Reader) {
    this.reader = reader;
  }

  /** Takes the next index when a value starts, before its members are read. */
  reserve(): number {
    this.values.push(undefined);
    this.sizes.push(-1);
    this.marks.push(this.reader.pos + this.expanded);
    return this.values.length - 1;
  }

  /** Fills a reserved index once its value is complete. */
  set<T extends AmfValue>(index: number, value: T): T {
    this.values[index] = value;
    this.sizes[index] = this.reader.pos + this.expanded - this.marks[index] + 1;
    return value;
  }

  get(index: number, format: string): AmfValue {
    const size = this.sizes[index];
    if (size === undefined) throw badAmf(`${format} reference ${index} out of range`);
    if (size < 0) throw badAmf(`${format} reference ${index} points into itself (a cycle)`);
    this.expand(size);
    return this.values[index];
  }

  /** Counts `size` bytes that a reference stands for. */
  expand(size: number): void {
    this.expanded += size;
    if (this.expanded > MAX_REFERENCE_EXPANSION) {
      throw badAmf(`references stand for more than ${MAX_REFERENCE_EXPANSION} bytes`);
    }
  }
}

/** Called by decoders on entering an object or array at nesting level `depth`. */
export function enterContainer(depth: number): void {
  if (depth >= MAX_AMF_DEPTH) throw badAmf(`AMF nesting deeper than ${MAX_AMF_DEPTH}`);
}

export function badAmf(message: string): ProtocolError {
  return new ProtocolError('bad-amf', message);
}
