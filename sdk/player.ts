import { classifyMedia, isNeverDropped } from '../runtime/rtmfp/flv.ts';
import type { MediaMessage } from '../runtime/rtmfp/media-message.ts';
import { TCMessageType } from '../runtime/rtmfp/tc-message.ts';
import type { NetConnection } from './client.ts';
import { NetStream, STREAM_START_TIMEOUT_MS, type StreamHost } from './net-stream.ts';
import { isRecord } from './status.ts';

/** Messages a player holds for a slow consumer by default. */
export const PLAYER_BUFFER_MESSAGES = 1024;
/** Statuses after which the server sends nothing more on this play. */
const PLAY_ENDED = new Set(['NetStream.Play.Stop', 'NetStream.Play.Complete']);
/** The TC message type of each kind of media message, to classify it as the node does. */
const MESSAGE_TYPE = {
  audio: TCMessageType.audio,
  video: TCMessageType.video,
  data: TCMessageType.dataAmf0,
} as const;

export interface PlayOptions {
  /**
   * When the server answers NetStream.Play.Failed with a redirect (`info.ex.redirect`, or an
   * rtmfp:// URL in its description, as Cumulus apps do), connect there with the same app and
   * connect arguments and play there; `play.connection` is that connection.
   */
  followRedirect?: boolean;
  /** Give up waiting for NetStream.Play.Start after this long (ms). Default 10 s. */
  timeoutMs?: number;
  /**
   * Messages held for a consumer that reads slower than they arrive (default 1024): past it
   * the oldest audio/video that is not codec configuration is dropped and counted in `dropped`.
   */
  maxBuffered?: number;
}

/**
 * A NetStream playing a name (`nc.play(name)`): createStream, `play`, then the stream's media,
 * read with `for await (const m of player)` until the player or its connection closes or the
 * server stops the play (NetStream.Play.Stop). Events: `status` (info object:
 * NetStream.Play.PublishNotify, UnpublishNotify, …), `close`.
 */
export class Player extends NetStream implements AsyncIterable<MediaMessage> {
  /** The connection this play ended on: the one it was started on, or where a redirect led. */
  connection: NetConnection;
  /** Media dropped because the consumer fell more than `maxBuffered` messages behind. */
  dropped = 0;
  private readonly maxBuffered: number;
  private readonly buffer: MediaMessage[] = [];
  /** Readers waiting for the next message, in the order they asked. */
  private readonly waiting: ((r: IteratorResult<MediaMessage>) => void)[] = [];
  /** A connection a redirect opened for this play: it closes with the play. */
  private owned: NetConnection | undefined;

  private constructor(host: StreamHost, connection: NetConnection, name: string, o: PlayOptions) {
    super(host, name);
    this.connection = connection;
    const max = o.maxBuffered ?? PLAYER_BUFFER_MESSAGES;
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`play: maxBuffered must be a positive integer, got ${String(max)}`);
    this.maxBuffered = max;
    this.on('status', (info) => {
      if (isRecord(info) && typeof info.code === 'string' && PLAY_ENDED.has(info.code)) this.end();
    });
  }

  /**
   * createStream + play on `connection`; resolves on NetStream.Play.Start, rejects with a
   * StatusError (Play.Failed, …). With `owned`, the connection closes with the player or its failure.
   */
  static async start(
    host: StreamHost,
    connection: NetConnection,
    name: string,
    o: PlayOptions = {},
    owned = false,
  ): Promise<Player> {
    const player = new Player(host, connection, name, o);
    if (owned) player.owned = connection;
    try {
      await player.start(
        (stream) => stream.play(name),
        'NetStream.Play.Start',
        o.timeoutMs ?? STREAM_START_TIMEOUT_MS,
      );
    } catch (e) {
      await player.owned?.close();
      throw e;
    }
    return player;
  }

  /** Asks the server to send audio (default) or not (`receiveAudio`). */
  receiveAudio(on: boolean): void {
    if (!this.closed) this.stream?.receiveAudio(on);
  }

  /** Asks the server to send video (default) or not (`receiveVideo`). */
  receiveVideo(on: boolean): void {
    if (!this.closed) this.stream?.receiveVideo(on);
  }

  /** Media received and not yet read. */
  get buffered(): number {
    return this.buffer.length;
  }

  override async close(): Promise<void> {
    await super.close();
    await this.owned?.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<MediaMessage> {
    return {
      next: () => {
        const m = this.buffer.shift();
        if (m) return Promise.resolve({ value: m, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.waiting.push(resolve));
      },
      // A `break` out of the loop stops the play.
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  protected get what(): string {
    return `play ${JSON.stringify(this.name)}`;
  }

  protected override onMedia(m: MediaMessage): void {
    if (this.closed) return;
    const waiting = this.waiting.shift();
    if (waiting) {
      waiting({ value: m, done: false });
      return;
    }
    if (this.buffer.length >= this.maxBuffered) this.dropOldest();
    this.buffer.push(m);
  }

  protected override end(): void {
    super.end();
    for (const waiting of this.waiting.splice(0)) waiting({ value: undefined, done: true });
  }

  /** Frees one place: the oldest media a decoder can do without, else (all configuration) the oldest. */
  private dropOldest(): void {
    const at = this.buffer.findIndex((m) => !isNeverDropped(classifyMedia(MESSAGE_TYPE[m.type], m.body)));
    this.buffer.splice(at === -1 ? 0 : at, 1);
    this.dropped++;
  }
}
