import type { AmfObject } from './amf-value.ts';
import { ProtocolError } from './errors.ts';
import { classifyMedia, type DataFrame, type MediaKind, publishedDataValues, readDataFrame } from './flv.ts';
import type { LivePlayer } from './live-player.ts';
import { encodeData, encodeTCMessage, type TCMessage, TCMessageType } from './tc-message.ts';

/**
 * Bytes of the current GOP kept for late joiners. Past it the GOP is not kept (a late joiner
 * then starts at the next keyframe): a publisher with a huge GOP costs the node this much, not more.
 */
export const MAX_GOP_BYTES = 4 * 1024 * 1024;
/** Messages of the current GOP kept (a bound for streams of many tiny frames). */
const MAX_GOP_MESSAGES = 4_096;
/** Data keyframes (`@setDataFrame` handlers) kept per publication. */
const MAX_DATA_KEYFRAMES = 16;
/** Largest data message taken from a publisher: data is decoded, kept and never dropped. */
const MAX_DATA_MESSAGE_BYTES = 64 * 1024;
const TIMESTAMP_MODULO = 2 ** 32;

interface Cached {
  kind: MediaKind;
  message: Buffer;
}

/** A data keyframe, encoded once for players and once for relays. */
interface DataKeyframe {
  /** As players get it: `onMetaData(…)`, the `@setDataFrame` stripped. */
  played: Buffer;
  /** As the publisher sent it, for a relaying node's publication to keep it too. */
  relayed: Buffer;
}

/**
 * A live stream on this node, whatever feeds it: a local publisher's NetStream now, a relay
 * link from the origin node later. The source calls `start()`, `ingest()` per message and
 * `stop()`; players `subscribe()` and `unsubscribe()` and stay subscribed across publishers.
 *
 * Each message is encoded once here and the same bytes are written to every player's flows
 * (PERF-NOTES: no per-player re-encoding). That is why timestamps are rebased per publication,
 * not per subscription as tcserver does: one offset per publisher keeps a stream's time
 * running on across republishes (a new publisher starting at 0 does not send players back in
 * time), while a late joiner sees the stream's clock as it is, which players take as the start
 * of a live stream.
 */
export class LivePublication {
  readonly name: string;
  private live = false;
  private readonly players = new Set<LivePlayer>();
  /** Those of `players` that feed another node's publication (runtime/relay/stream-relays.ts). */
  private readonly relays = new Set<LivePlayer>();
  private readonly dataKeyframes = new Map<string, DataKeyframe>();
  private audioConfig: Buffer | undefined;
  private videoConfig: Buffer | undefined;
  /** From the last keyframe: video and audio, in order (empty when none or too big). */
  private gop: Cached[] = [];
  private gopBytes = 0;
  /**
   * The last keyframe's timestamp: audio comes on a flow of its own, so audio from before the
   * keyframe may arrive after it and is not part of its GOP.
   */
  private gopStart = 0;
  /** Added to a publisher's timestamps (mod 2^32); set by the first message after `start()`. */
  private offset = 0;
  private rebase = true;
  /** The highest timestamp written so far, after rebasing. */
  private last = -1;
  /** Info the players' PublishNotify carries (e.g. `publisher`). */
  private notifyInfo: AmfObject = {};

  constructor(name: string) {
    this.name = name;
  }

  get publishing(): boolean {
    return this.live;
  }

  get playerCount(): number {
    return this.players.size;
  }

  /** A source is live: players hear PublishNotify; caches start empty. */
  start(info: AmfObject = {}): void {
    if (this.live) return;
    this.live = true;
    this.notifyInfo = info;
    this.rebase = true;
    for (const p of this.players) p.publishNotify(info);
  }

  /** The source left: players hear UnpublishNotify and stay; what was cached is gone. */
  stop(): void {
    if (!this.live) return;
    this.live = false;
    this.dataKeyframes.clear();
    this.audioConfig = undefined;
    this.videoConfig = undefined;
    this.dropGop();
    for (const p of this.players) p.unpublishNotify();
  }

  /**
   * One audio (8), video (9) or data (18, 15) message of the source. Encodes it once, caches
   * what late joiners need and writes it to every player. Throws ProtocolError for a message
   * that is not media or data, a data message over MAX_DATA_MESSAGE_BYTES or not AMF, or any
   * message while not live; nothing is sent then.
   */
  ingest(message: TCMessage, now: number): void {
    if (!this.live)
      throw new ProtocolError('media-not-publishing', `media on ${this.name} while not published`);
    const { type, payload } = message;
    let kind: MediaKind;
    let encoded: Buffer;
    let timestamp = 0;
    if (type === TCMessageType.audio || type === TCMessageType.video) {
      kind = classifyMedia(type, payload);
      timestamp = this.timestamp(message.timestamp);
      encoded = encodeTCMessage(type, timestamp, payload);
    } else if (type === TCMessageType.dataAmf0 || type === TCMessageType.dataAmf3) {
      if (payload.length > MAX_DATA_MESSAGE_BYTES)
        throw new ProtocolError('data-too-large', `data message of ${payload.length} bytes`);
      kind = 'data';
      const frame = readDataFrame(message);
      timestamp = this.timestamp(message.timestamp);
      encoded = encodeData(frame.values, { timestamp });
      if (frame.action !== 'send') {
        this.dataKeyframe(frame, encoded, timestamp, now);
        return;
      }
    } else {
      throw new ProtocolError('not-media', `message type ${type} is not audio, video or data`);
    }
    this.cache(kind, encoded, timestamp);
    for (const p of this.players) p.deliver(kind, encoded, now);
  }

  /**
   * Adds a player: the play sequence, then, if a source is live, PublishNotify, the data
   * keyframes, the codec configurations and the current GOP, so it starts on a keyframe. A
   * `relay` (another node's copy of the stream) gets data keyframes as the publisher sent them,
   * so that node keeps the same ones for its own late joiners.
   */
  subscribe(player: LivePlayer, now: number, o: { relay?: boolean } = {}): void {
    if (this.players.has(player)) return;
    this.players.add(player);
    if (o.relay) this.relays.add(player);
    player.begin();
    if (!this.live) return;
    player.publishNotify(this.notifyInfo);
    for (const k of this.dataKeyframes.values()) player.deliver('data', o.relay ? k.relayed : k.played, now);
    if (this.audioConfig) player.deliver('audio-config', this.audioConfig, now);
    if (this.videoConfig) player.deliver('video-config', this.videoConfig, now);
    for (const c of this.gop) player.deliver(c.kind, c.message, now);
  }

  /** Removes a player; true if it was one. */
  unsubscribe(player: LivePlayer): boolean {
    this.relays.delete(player);
    return this.players.delete(player);
  }

  private timestamp(ts: number): number {
    if (this.rebase) {
      this.rebase = false;
      this.offset = (this.last + 1 - ts + TIMESTAMP_MODULO) % TIMESTAMP_MODULO;
    }
    const out = (ts + this.offset) % TIMESTAMP_MODULO;
    if (out > this.last) this.last = out;
    return out;
  }

  /**
   * `@setDataFrame` keeps a data keyframe for late joiners and sends it on; `@clearDataFrame`
   * drops it and goes only to relays, which drop it on their node too.
   */
  private dataKeyframe(frame: DataFrame, played: Buffer, timestamp: number, now: number): void {
    const relayed = encodeData(publishedDataValues(frame), { timestamp });
    this.dataKeyframes.delete(frame.handler);
    if (frame.action === 'clear') {
      for (const r of this.relays) r.deliver('data', relayed, now);
      return;
    }
    if (this.dataKeyframes.size >= MAX_DATA_KEYFRAMES) {
      this.dataKeyframes.delete(this.dataKeyframes.keys().next().value!);
    }
    this.dataKeyframes.set(frame.handler, { played, relayed });
    for (const p of this.players) p.deliver('data', this.relays.has(p) ? relayed : played, now);
  }

  private cache(kind: MediaKind, message: Buffer, timestamp: number): void {
    switch (kind) {
      case 'audio-config':
        this.audioConfig = message;
        return;
      case 'video-config':
        this.videoConfig = message;
        return;
      case 'keyframe':
        this.dropGop();
        this.gopStart = timestamp;
        this.keepInGop(kind, message);
        return;
      case 'frame':
        if (this.gop.length > 0) this.keepInGop(kind, message);
        return;
      case 'audio':
        if (this.gop.length > 0 && timestamp >= this.gopStart) this.keepInGop(kind, message);
        return;
      case 'video-end':
      case 'data':
        return;
    }
  }

  private keepInGop(kind: MediaKind, message: Buffer): void {
    if (this.gopBytes + message.length > MAX_GOP_BYTES || this.gop.length >= MAX_GOP_MESSAGES) {
      this.dropGop();
      return;
    }
    this.gop.push({ kind, message });
    this.gopBytes += message.length;
  }

  private dropGop(): void {
    this.gop = [];
    this.gopBytes = 0;
  }
}
