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

/** FLV video tag: codec in the low nibble, AVC packet type next (FLV spec E.4.3). */
const VIDEO_CODEC_MASK = 0x0f;
const VIDEO_CODEC_AVC = 7;
const AVC_PACKET_NALU = 1;
/** Enhanced RTMP: the high bit of the first byte flags an extended header, packet type below. */
const VIDEO_EX_HEADER = 0x80;
const ENHANCED_PACKET_TYPE_MASK = 0x0f;
const VIDEO_CODED_FRAMES = 1;
const VIDEO_CODED_FRAMES_X = 3;
/** Enhanced headers are at least a type byte and a FourCC. */
const ENHANCED_MIN_BYTES = 5;
/** FLV audio tag: sound format in the high nibble (FLV spec E.4.2). */
const AUDIO_FORMAT_MASK = 0xf0;
const AUDIO_FORMAT_AAC = 10 << 4;
const AUDIO_FORMAT_EX_HEADER = 9 << 4;
const AAC_SEQUENCE_HEADER = 0;
/** Enhanced RTMP audio packet types a player cannot do without: sequence start, end, channel config. */
const AUDIO_CONFIG_PACKET_TYPES: ReadonlySet<number> = new Set([0, 2, 4]);

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

/**
 * Whether a player needs this message to decode what follows, so it is never dropped: data
 * messages (metadata), codec configuration (AVC/AAC sequence headers, Enhanced RTMP sequence
 * start/end) and empty bodies ("silence"), as rtmfp-cpp's Message::isVideoSequenceSpecial and
 * isAudioSequenceSpecial judge them (RTMFP-NOTES §8.1).
 */
export function isConfigMedia(m: MediaMessage): boolean {
  const b = m.body;
  if (m.type === 'data' || b.length === 0) return true;
  if (m.type === 'video') {
    if (b.length >= ENHANCED_MIN_BYTES && (b[0] & VIDEO_EX_HEADER) !== 0) {
      const packetType = b[0] & ENHANCED_PACKET_TYPE_MASK;
      return packetType !== VIDEO_CODED_FRAMES && packetType !== VIDEO_CODED_FRAMES_X;
    }
    return b.length >= 2 && (b[0] & VIDEO_CODEC_MASK) === VIDEO_CODEC_AVC && b[1] !== AVC_PACKET_NALU;
  }
  if (b.length >= ENHANCED_MIN_BYTES && (b[0] & AUDIO_FORMAT_MASK) === AUDIO_FORMAT_EX_HEADER)
    return AUDIO_CONFIG_PACKET_TYPES.has(b[0] & ENHANCED_PACKET_TYPE_MASK);
  return b.length >= 2 && (b[0] & AUDIO_FORMAT_MASK) === AUDIO_FORMAT_AAC && b[1] === AAC_SEQUENCE_HEADER;
}
