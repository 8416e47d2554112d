/** FLV tag types (FLV spec E.4.1): audio, video, script data (AMF0). */
export const FlvTagType = { audio: 8, video: 9, data: 18 } as const;

/** One FLV tag: its type, timestamp (ms) and body, which is what a NetStream message carries. */
export interface FlvTag {
  type: 8 | 9 | 18;
  timestamp: number;
  body: Buffer;
}

/** The FLV file header (FLV spec E.2). */
export interface FlvHeader {
  version: number;
  hasAudio: boolean;
  hasVideo: boolean;
}

/** A file that is not FLV, or is cut or damaged; `offset` is where reading stopped. */
export class FlvError extends Error {
  readonly offset: number;

  constructor(offset: number, message: string) {
    super(`FLV: ${message} at byte offset ${offset}`);
    this.name = 'FlvError';
    this.offset = offset;
  }
}

const SIGNATURE = 'FLV';
const HEADER_BYTES = 9;
const FLAG_AUDIO = 0x04;
const FLAG_VIDEO = 0x01;
const PREVIOUS_TAG_SIZE_BYTES = 4;
const TAG_HEADER_BYTES = 11;
/** The tag's filter bit (encrypted content, FLV 10.1): we neither read nor write such files. */
const TAG_FILTER = 0x20;
const TAG_TYPE_MASK = 0x1f;
const MAX_DATA_SIZE = 0xffffff;

/**
 * Reads a whole FLV file: its header and every tag in order. Throws FlvError naming the byte
 * offset for a bad signature, a cut tag, a tag type other than 8/9/18, an encrypted tag, or a
 * previous-tag-size that does not match the tag before it.
 */
export function readFlv(buf: Buffer): { header: FlvHeader; tags: FlvTag[] } {
  if (buf.length < HEADER_BYTES || buf.toString('latin1', 0, 3) !== SIGNATURE)
    throw new FlvError(0, 'no "FLV" signature');
  const flags = buf[4];
  const header = {
    version: buf[3],
    hasAudio: (flags & FLAG_AUDIO) !== 0,
    hasVideo: (flags & FLAG_VIDEO) !== 0,
  };
  const dataOffset = buf.readUInt32BE(5);
  if (dataOffset < HEADER_BYTES || dataOffset > buf.length)
    throw new FlvError(5, `header size ${dataOffset} is outside the file (${buf.length} bytes)`);
  const tags: FlvTag[] = [];
  let at = dataOffset;
  let previousSize = 0;
  for (;;) {
    if (buf.length - at < PREVIOUS_TAG_SIZE_BYTES)
      throw new FlvError(at, 'file cut inside a previous-tag-size');
    const recorded = buf.readUInt32BE(at);
    if (recorded !== previousSize)
      throw new FlvError(at, `previous tag size ${recorded}, but the tag before it is ${previousSize} bytes`);
    at += PREVIOUS_TAG_SIZE_BYTES;
    if (at === buf.length) return { header, tags };
    if (buf.length - at < TAG_HEADER_BYTES) throw new FlvError(at, 'file cut inside a tag header');
    if (buf[at] & TAG_FILTER) throw new FlvError(at, 'encrypted (filtered) tags are not supported');
    const type = buf[at] & TAG_TYPE_MASK;
    if (type !== FlvTagType.audio && type !== FlvTagType.video && type !== FlvTagType.data)
      throw new FlvError(at, `tag type ${type} is not audio (8), video (9) or data (18)`);
    const size = buf.readUIntBE(at + 1, 3);
    // Timestamp: 24 bits, then the extension byte as bits 24-31 (FLV spec E.4.1).
    const timestamp = (buf[at + 7] * 0x1000000 + buf.readUIntBE(at + 4, 3)) >>> 0;
    const bodyAt = at + TAG_HEADER_BYTES;
    if (buf.length - bodyAt < size)
      throw new FlvError(
        at,
        `tag of ${size} bytes runs past the end of the file (${buf.length - bodyAt} left)`,
      );
    tags.push({ type, timestamp, body: buf.subarray(bodyAt, bodyAt + size) });
    previousSize = TAG_HEADER_BYTES + size;
    at = bodyAt + size;
  }
}

/** Writes an FLV file (version 1, audio/video flags from the tags present) holding `tags` in order. */
export function writeFlv(tags: readonly FlvTag[]): Buffer {
  let length = HEADER_BYTES + PREVIOUS_TAG_SIZE_BYTES;
  for (const [i, tag] of tags.entries()) {
    if (tag.type !== FlvTagType.audio && tag.type !== FlvTagType.video && tag.type !== FlvTagType.data)
      throw new RangeError(`writeFlv: tag ${i} has type ${String(tag.type)}, not 8, 9 or 18`);
    if (tag.body.length > MAX_DATA_SIZE)
      throw new RangeError(`writeFlv: tag ${i} body is ${tag.body.length} bytes, over FLV's 2^24-1`);
    if (!Number.isInteger(tag.timestamp) || tag.timestamp < 0 || tag.timestamp > 0xffffffff)
      throw new RangeError(`writeFlv: tag ${i} timestamp ${tag.timestamp} is not 0 … 2^32-1 ms`);
    length += TAG_HEADER_BYTES + tag.body.length + PREVIOUS_TAG_SIZE_BYTES;
  }
  const out = Buffer.alloc(length);
  out.write(SIGNATURE, 0, 'latin1');
  out[3] = 1;
  out[4] =
    (tags.some((t) => t.type === FlvTagType.audio) ? FLAG_AUDIO : 0) |
    (tags.some((t) => t.type === FlvTagType.video) ? FLAG_VIDEO : 0);
  out.writeUInt32BE(HEADER_BYTES, 5);
  let at = HEADER_BYTES + PREVIOUS_TAG_SIZE_BYTES;
  for (const tag of tags) {
    out[at] = tag.type;
    out.writeUIntBE(tag.body.length, at + 1, 3);
    out.writeUIntBE(tag.timestamp & MAX_DATA_SIZE, at + 4, 3);
    out[at + 7] = tag.timestamp >>> 24;
    tag.body.copy(out, at + TAG_HEADER_BYTES);
    at += TAG_HEADER_BYTES + tag.body.length;
    out.writeUInt32BE(TAG_HEADER_BYTES + tag.body.length, at);
    at += PREVIOUS_TAG_SIZE_BYTES;
  }
  return out;
}
