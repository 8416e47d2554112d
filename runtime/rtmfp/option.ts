import { Reader, vluLength, type Writer } from './binary.ts';
import { ProtocolError } from './errors.ts';

/** RFC 7016 §2.1.3 option: VLU length (of type + value), VLU type, value. */
export interface Option {
  type: number;
  value: Buffer;
}

/**
 * Parses an option list up to its marker (a zero-length option) or the end of the reader.
 * Returns the options; `reader.pos` is left just after the marker when there was one.
 */
export function readOptions(reader: Reader): Option[] {
  const options: Option[] = [];
  while (reader.remaining > 0) {
    const length = reader.vlu();
    if (length === 0) break;
    const body = new Reader(reader.buf, reader.pos, reader.pos + length);
    if (reader.pos + length > reader.end)
      throw new ProtocolError('truncated', 'option runs past its container');
    reader.pos += length;
    const type = body.vlu();
    options.push({ type, value: body.rest() });
  }
  return options;
}

/** Parses a whole buffer as an option list (no marker needed). */
export function parseOptions(bytes: Buffer): Option[] {
  return readOptions(new Reader(bytes));
}

export function writeOption(w: Writer, type: number, value: Uint8Array = EMPTY): Writer {
  return w
    .vlu(vluLength(type) + value.length)
    .vlu(type)
    .bytes(value);
}

/** The marker that ends an option list (RFC 7016 §2.1.3). */
export function writeMarker(w: Writer): Writer {
  return w.u8(0);
}

const EMPTY = Buffer.alloc(0);
