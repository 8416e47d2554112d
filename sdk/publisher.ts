import type { AmfValue } from '../runtime/rtmfp/amf-value.ts';
import { encodeAmf0 } from '../runtime/rtmfp/amf0.ts';
import { type FlvTag, FlvTagType } from './flv.ts';
import { NetStream, STREAM_START_TIMEOUT_MS, type StreamHost } from './net-stream.ts';

/** An FLV script tag holding the stream's metadata starts with this AMF0 string. */
const ON_METADATA = encodeAmf0('onMetaData');
/** What tells a server to keep a data message as the stream's metadata for later players. */
const SET_DATA_FRAME = encodeAmf0('@setDataFrame');

export interface PublishOptions {
  /** The publish type sent with the name (default "live"). */
  type?: 'live' | 'record' | 'append';
  /** Give up waiting for NetStream.Publish.Start after this long (ms). Default 10 s. */
  timeoutMs?: number;
  /**
   * Send every message reliably, e.g. to publish a file faster than real time. By default audio
   * and video have tcpublish's lifetimes (2.2 s, 2 s; codec configuration is always reliable)
   * and a keyframe abandons what is still unsent of the previous GOP.
   */
  reliable?: boolean;
}

/**
 * A NetStream publishing under a name (`nc.publish(name)`), as tcpublish does: createStream,
 * `publish`, and media only once the server answered NetStream.Publish.Start. Audio, video and
 * data each go on their own flow. Events: `status` (info object: e.g. NetStream.Publish.BadName
 * when a higher-priority publisher took the name), `close`.
 */
export class Publisher extends NetStream {
  private readonly lifetimes: boolean;

  private constructor(host: StreamHost, name: string, o: PublishOptions) {
    super(host, name);
    this.lifetimes = !o.reliable;
  }

  /** createStream + publish; resolves on NetStream.Publish.Start, rejects with a StatusError. */
  static async start(host: StreamHost, name: string, o: PublishOptions = {}): Promise<Publisher> {
    const publisher = new Publisher(host, name, o);
    await publisher.start(
      (stream) => stream.publish(name, o.type ?? 'live'),
      'NetStream.Publish.Start',
      o.timeoutMs ?? STREAM_START_TIMEOUT_MS,
    );
    return publisher;
  }

  /** An audio message: an FLV audio tag body at `timestamp` ms. */
  audio(timestamp: number, body: Uint8Array): void {
    this.open().audio(timestamp, asBuffer(body), this.lifetimes);
  }

  /** A video message: an FLV video tag body at `timestamp` ms. */
  video(timestamp: number, body: Uint8Array): void {
    this.open().video(timestamp, asBuffer(body), this.lifetimes);
  }

  /** A data message in AMF0 (type 18), e.g. `data(0, '@setDataFrame', 'onMetaData', {…})`. */
  data(timestamp: number, name: string, ...args: AmfValue[]): void {
    this.open().data(timestamp, [name, ...args]);
  }

  /**
   * An FLV tag, by its type. A data tag's AMF0 values are sent as they are, but `onMetaData`
   * goes as `@setDataFrame('onMetaData', …)` so the server keeps it for later players, as
   * tcpublish sends it (rtmfp-cpp test/tcpublish.cpp onDataTag).
   */
  write(tag: FlvTag): void {
    const stream = this.open();
    if (tag.type === FlvTagType.audio) stream.audio(tag.timestamp, tag.body, this.lifetimes);
    else if (tag.type === FlvTagType.video) stream.video(tag.timestamp, tag.body, this.lifetimes);
    else if (tag.type === FlvTagType.data && startsWith(tag.body, ON_METADATA))
      stream.rawData(tag.timestamp, Buffer.concat([SET_DATA_FRAME, tag.body]));
    else if (tag.type === FlvTagType.data) stream.rawData(tag.timestamp, tag.body);
    else
      throw new TypeError(
        `${this.what}: FLV tag type ${String((tag as FlvTag).type)} is not audio (8), video (9) or data (18)`,
      );
  }

  protected get what(): string {
    return `publish ${JSON.stringify(this.name)}`;
  }

  private open() {
    if (this.closed || !this.stream)
      throw new Error(`${this.what} is closed: start a new publish to send media`);
    return this.stream;
  }
}

function startsWith(body: Buffer, prefix: Buffer): boolean {
  return body.length >= prefix.length && body.subarray(0, prefix.length).equals(prefix);
}

function asBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
