import type { AmfValue } from './amf-value.ts';
import { ProtocolError } from './errors.ts';
import { decodeData, encodeData, TCMessageType } from './tc-message.ts';

/**
 * What a live media message is to the fan-out (RTMFP-NOTES §8.1-8.2): codec configurations and
 * metadata are cached for late joiners and never dropped; an end of sequence is never dropped
 * either (RTMFP-NOTES §8.1, rtmfp-cpp's "sequence special"); a keyframe starts a GOP; an
 * ordinary frame may be dropped for a slow player.
 */
export type MediaKind =
  | 'audio-config'
  | 'video-config'
  | 'video-end'
  | 'keyframe'
  | 'frame'
  | 'audio'
  | 'data';

/** FLV video tag: frame type in the high nibble, 1 = keyframe (FLV spec, VIDEODATA). */
const VIDEO_KEYFRAME = 1;
/** FLV video codec IDs whose first body byte is a packet type: AVC (7), HEVC (12, the common extension). */
const CODEC_AVC = 7;
const CODEC_HEVC = 12;
/** AVCPacketType 0: AVCDecoderConfigurationRecord (the sequence header); 2: end of sequence. */
const AVC_SEQUENCE_HEADER = 0;
const AVC_END_OF_SEQUENCE = 2;
/** Enhanced RTMP: bit 7 of the first video byte marks an extended header; its low nibble is the packet type. */
const VIDEO_EX_HEADER = 0x80;
/** Enhanced RTMP PacketTypeSequenceStart (the codec configuration record) and SequenceEnd. */
const EX_SEQUENCE_START = 0;
const EX_SEQUENCE_END = 2;
/** FLV sound format 10 = AAC; its first body byte is AACPacketType, 0 = AudioSpecificConfig. */
const SOUND_AAC = 10;
const AAC_SEQUENCE_HEADER = 0;
/** FLV sound format 9: Enhanced RTMP extended audio header; the low nibble is the packet type. */
const SOUND_EX_HEADER = 9;

/** The FLV class of an audio (type 8) or video (type 9) message body. */
export function classifyMedia(type: number, body: Buffer): MediaKind {
  if (type === TCMessageType.video) {
    if (body.length === 0) return 'frame';
    const first = body[0];
    if (first & VIDEO_EX_HEADER) {
      if ((first & 0x0f) === EX_SEQUENCE_START) return 'video-config';
      if ((first & 0x0f) === EX_SEQUENCE_END) return 'video-end';
      return ((first >> 4) & 0x07) === VIDEO_KEYFRAME ? 'keyframe' : 'frame';
    }
    const codec = first & 0x0f;
    if ((codec === CODEC_AVC || codec === CODEC_HEVC) && body.length > 1) {
      if (body[1] === AVC_SEQUENCE_HEADER) return 'video-config';
      // Flagged as a keyframe, but it ends the stream rather than starting a GOP.
      if (body[1] === AVC_END_OF_SEQUENCE) return 'video-end';
    }
    return first >> 4 === VIDEO_KEYFRAME ? 'keyframe' : 'frame';
  }
  if (type === TCMessageType.audio) {
    if (body.length === 0) return 'audio';
    const format = body[0] >> 4;
    if (format === SOUND_AAC && body.length > 1 && body[1] === AAC_SEQUENCE_HEADER) return 'audio-config';
    if (format === SOUND_EX_HEADER && (body[0] & 0x0f) === EX_SEQUENCE_START) return 'audio-config';
    return 'audio';
  }
  return 'data';
}

/**
 * Whether a message of this kind is never dropped or abandoned: metadata and other data, codec
 * configuration and an end of sequence (RTMFP-NOTES §8.1; tcpublish's "sequence special"). The
 * node, the client's publisher and its player buffer all keep these.
 */
export function isNeverDropped(kind: MediaKind): boolean {
  return kind === 'data' || kind === 'audio-config' || kind === 'video-config' || kind === 'video-end';
}

/** A data message as the fan-out keeps it: its handler name and the message players get. */
export interface DataFrame {
  /** The handler the player calls (`onMetaData`, `onCuePoint`, …); '' when it names none. */
  handler: string;
  /**
   * `set`: a data keyframe (`@setDataFrame`), cached and sent to every late joiner; `clear`:
   * `@clearDataFrame` drops that cached keyframe; `send`: an ordinary data message.
   */
  action: 'set' | 'clear' | 'send';
  values: AmfValue[];
}

/** The data message publishers send to set a data keyframe (tcpublish, OBS, ffmpeg). */
const SET_DATA_FRAME = '@setDataFrame';
/** The data message publishers send to clear one. */
const CLEAR_DATA_FRAME = '@clearDataFrame';

/**
 * Decodes a published data message (type 18 or 15). `@setDataFrame(name, …)` becomes the
 * data keyframe `name(…)` that players receive (RTMP servers strip the prefix; players know
 * `onMetaData`, not `@setDataFrame`). Throws ProtocolError when it is not AMF.
 */
export function readDataFrame(message: { type: number; timestamp: number; payload: Buffer }): DataFrame {
  const values = decodeData(message);
  const first = values[0];
  if (first === SET_DATA_FRAME || first === CLEAR_DATA_FRAME) {
    const handler = values[1];
    if (typeof handler !== 'string' || handler.length === 0)
      throw new ProtocolError('bad-data-frame', `${first} without a handler name`);
    return { handler, action: first === SET_DATA_FRAME ? 'set' : 'clear', values: values.slice(1) };
  }
  return { handler: typeof first === 'string' ? first : '', action: 'send', values };
}

/**
 * The values of `frame` as a publisher sends them (readDataFrame's inverse): a data keyframe's
 * handler behind `@setDataFrame` or `@clearDataFrame` again, so whoever takes it as a publisher's
 * (a relaying node's publication) keeps or drops it as the origin does.
 */
export function publishedDataValues(frame: DataFrame): AmfValue[] {
  if (frame.action === 'send') return frame.values;
  return [frame.action === 'set' ? SET_DATA_FRAME : CLEAR_DATA_FRAME, ...frame.values];
}

/** `|RtmpSampleAccess`(true, true): lets the player's code read the decoded audio and video (tcserver, CU). */
export function sampleAccessMessage(): Buffer {
  return encodeData(['|RtmpSampleAccess', true, true]);
}
