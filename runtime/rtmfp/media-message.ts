import type { AmfValue } from './amf-value.ts';
import { decodeData, decodeTCMessage, type TCMessage, TCMessageType } from './tc-message.ts';

/** What a NetStream carries to a player: an FLV tag body, or a data message's values. */
export interface MediaMessage {
  type: 'audio' | 'video' | 'data';
  /** Media time, ms. */
  timestamp: number;
  /** The FLV tag body (audio, video) or the AMF payload (data). */
  body: Buffer;
  /** A data message's values, e.g. `['onMetaData', {…}]`. */
  values?: AmfValue[];
}

/**
 * A media message from a NetStream flow: audio (8), video (9), or data (18, or 15 with its
 * format byte); undefined for the others (User Control such as Flow Sync, RFC 7425 §5.2).
 * Throws ProtocolError for a message that does not decode.
 */
export function decodeMediaMessage(msg: Buffer | TCMessage): MediaMessage | undefined {
  const message = Buffer.isBuffer(msg) ? decodeTCMessage(msg) : msg;
  const { type, timestamp, payload } = message;
  if (type === TCMessageType.audio) return { type: 'audio', timestamp, body: payload };
  if (type === TCMessageType.video) return { type: 'video', timestamp, body: payload };
  if (type === TCMessageType.dataAmf0 || type === TCMessageType.dataAmf3)
    return { type: 'data', timestamp, body: payload, values: decodeData(message) };
  return undefined;
}
