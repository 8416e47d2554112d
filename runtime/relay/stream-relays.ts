import type { AmfObject, AmfValue } from '../rtmfp/amf-value.ts';
import type { MediaMessage } from '../rtmfp/media-message.ts';
import type { TCClientConnection } from '../rtmfp/tc-client.ts';
import type { TCClientStream } from '../rtmfp/tc-client-stream.ts';
import { type TCMessage, TCMessageType } from '../rtmfp/tc-message.ts';

/**
 * Where a relayed stream goes on this node: its local live publication (LivePublication),
 * which fans out to this node's players. The relay is its source, as a local publisher would be.
 */
export interface RelaySink {
  readonly publishing: boolean;
  start(info?: AmfObject): void;
  ingest(message: TCMessage, now: number): void;
  stop(): void;
}

/** A link as a relay uses it (runtime/host/relay-links.ts RelayLink). */
export interface RelayLinkView {
  readonly state: string;
  readonly ready: Promise<void>;
  readonly tc: TCClientConnection | undefined;
  /** Returns the function that unsubscribes `listener`. */
  onClosed(listener: (error: Error) => void): () => void;
}

/** Links to other nodes, one per node, leased per relay (runtime/host/relay-links.ts RelayLinks). */
export interface RelayLinkSource {
  /** Throws when `node` cannot be linked to (not serving, this node…). */
  use(node: string): { link: RelayLinkView; release(): void };
}

/** Why a relay ended on its own: the sink's players heard UnpublishNotify if it was live. */
export interface RelayEnd {
  app: string;
  name: string;
  origin: string;
  reason: 'link' | 'refused';
  message: string;
}

export interface StreamRelaysOptions {
  links: RelayLinkSource;
  /** The host's clock (the endpoint's `now`), for the sink's players. */
  now: () => number;
  /** A relay ended without `stop` (its link failed, or the origin refused the play). */
  ended?: (end: RelayEnd) => void;
}

/** What `/status` shows of the relays: streams fetched from other nodes and what came over them. */
export interface StreamRelayStats {
  relays: number;
  /** Media and data messages handed to local publications. */
  messages: number;
  /** Messages not handed on: the local publication was not live ('not-live'), or it refused them. */
  dropped: Record<string, number>;
}

/**
 * The name a relay plays on the origin's relay app: the app, then the stream name. App names
 * hold no "/" (config.ts NAME_RULE), so the first one splits them again (`parseRelayedName`).
 */
export function relayedName(app: string, name: string): string {
  return `${app}/${name}`;
}

/** (app, name) of a relay's play, or undefined when it names no app. */
export function parseRelayedName(played: string): { app: string; name: string } | undefined {
  const at = played.indexOf('/');
  if (at <= 0 || at === played.length - 1) return undefined;
  return { app: played.slice(0, at), name: played.slice(at + 1) };
}

const RELAY_STATUS = {
  publishNotify: 'NetStream.Play.PublishNotify',
  unpublishNotify: 'NetStream.Play.UnpublishNotify',
  failed: 'NetStream.Play.Failed',
  notFound: 'NetStream.Play.StreamNotFound',
} as const;
/** The origin's own `|RtmpSampleAccess` (its play sequence): the sink's players get theirs from this node. */
const SAMPLE_ACCESS = '|RtmpSampleAccess';

/**
 * One stream fetched from its origin node: a NetStream on the link to it plays
 * `relayedName(app, name)` (the play protocol a client uses, runtime/rtmfp/tc-client-stream.ts),
 * and what arrives feeds the sink. The origin's PublishNotify and UnpublishNotify start and
 * stop the sink, so the sink's players hear the publisher come and go as the origin's do.
 */
class StreamRelay {
  readonly app: string;
  readonly name: string;
  readonly origin: string;
  readonly sink: RelaySink;
  private readonly o: StreamRelaysOptions;
  private readonly lease: { link: RelayLinkView; release(): void };
  private readonly stats: { messages: number; dropped: Map<string, number> };
  private readonly done: (relay: StreamRelay) => void;
  private stream: TCClientStream | undefined;
  private ended = false;
  private readonly unlisten: () => void;

  constructor(
    key: { app: string; name: string; origin: string },
    sink: RelaySink,
    o: StreamRelaysOptions,
    stats: { messages: number; dropped: Map<string, number> },
    done: (relay: StreamRelay) => void,
  ) {
    this.app = key.app;
    this.name = key.name;
    this.origin = key.origin;
    this.sink = sink;
    this.o = o;
    this.stats = stats;
    this.done = done;
    this.lease = o.links.use(key.origin);
    const link = this.lease.link;
    this.unlisten = link.onClosed((error) => this.end('link', error.message));
    link.ready.then(
      () => this.play(),
      () => {},
    );
  }

  /** Stops playing on the origin and lets the link go (the last relay's release starts its idle time). */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
    const tc = this.lease.link.tc;
    if (this.stream && tc && this.lease.link.state === 'up') tc.deleteStream(this.stream);
    this.stream = undefined;
    this.unlisten();
    this.lease.release();
  }

  private play(): void {
    const tc = this.lease.link.tc;
    if (this.ended || !tc) return;
    tc.createStream(
      {
        status: (info) => this.onStatus(info),
        media: (m) => this.onMedia(m),
        refused: () => this.end('refused', `node ${this.origin} refused a flow of the relayed stream`),
      },
      (stream, info) => {
        if (!stream) {
          this.end('refused', `createStream on node ${this.origin} failed: ${describe(info)}`);
          return;
        }
        if (this.ended) {
          tc.deleteStream(stream);
          return;
        }
        this.stream = stream;
        stream.play(relayedName(this.app, this.name));
      },
    );
  }

  private onStatus(info: AmfValue): void {
    if (this.ended || !isObject(info)) return;
    switch (info.code) {
      case RELAY_STATUS.publishNotify:
        this.sink.start();
        return;
      case RELAY_STATUS.unpublishNotify:
        this.sink.stop();
        return;
      case RELAY_STATUS.failed:
      case RELAY_STATUS.notFound:
        this.end('refused', `node ${this.origin} refused to play ${this.name}: ${describe(info)}`);
        return;
    }
  }

  private onMedia(m: MediaMessage): void {
    if (this.ended) return;
    if (m.type === 'data' && m.values?.[0] === SAMPLE_ACCESS) return;
    if (!this.sink.publishing) {
      this.drop('not-live');
      return;
    }
    try {
      // Data keyframes come as the publisher sent them (`@setDataFrame`, `@clearDataFrame`:
      // LivePublication's relays), so the sink keeps and drops the ones the origin does.
      this.sink.ingest({ type: TYPES[m.type], timestamp: m.timestamp, payload: m.body }, this.o.now());
      this.stats.messages++;
    } catch (e) {
      // The sink refuses what it cannot take (ProtocolError), as from a local publisher.
      this.drop(e instanceof Error && 'reason' in e ? String(e.reason) : 'refused');
    }
  }

  private drop(reason: string): void {
    this.stats.dropped.set(reason, (this.stats.dropped.get(reason) ?? 0) + 1);
  }

  /** Ends on its own: the sink's players hear UnpublishNotify, the owner hears why. */
  private end(reason: RelayEnd['reason'], message: string): void {
    if (this.ended) return;
    this.stop();
    this.sink.stop();
    this.done(this);
    this.o.ended?.({ app: this.app, name: this.name, origin: this.origin, reason, message });
  }
}

/** Message types of what a relay hands on; the origin writes data as AMF0 (LivePublication). */
const TYPES: Record<MediaMessage['type'], number> = {
  audio: TCMessageType.audio,
  video: TCMessageType.video,
  data: TCMessageType.dataAmf0,
};

/**
 * The streams this node fetches from other nodes (issue 10 point 4): exactly one relay per
 * (app, name) however many local players it has, each on the one link to its origin. The stream
 * layer starts a relay when a stream published elsewhere gets its first player here, and stops
 * it when the last one leaves.
 */
export class StreamRelays {
  private readonly o: StreamRelaysOptions;
  private readonly relays = new Map<string, StreamRelay>();
  private readonly counts = { messages: 0, dropped: new Map<string, number>() };

  constructor(o: StreamRelaysOptions) {
    this.o = o;
  }

  /**
   * Feeds `sink` with (app, name) from node `origin` until `stop`. Idempotent for the same
   * origin and sink; another origin or sink replaces the relay (the publisher moved). Throws
   * when the origin cannot be linked to (the sink is untouched then).
   */
  start(app: string, name: string, origin: string, sink: RelaySink): void {
    const key = relayedName(app, name);
    const current = this.relays.get(key);
    if (current && current.origin === origin && current.sink === sink) return;
    if (current) this.stop(app, name);
    const relay = new StreamRelay({ app, name, origin }, sink, this.o, this.counts, (r) => {
      if (this.relays.get(key) === r) this.relays.delete(key);
    });
    this.relays.set(key, relay);
  }

  /** Stops fetching (app, name): the link is released. The sink is the caller's (it keeps its state). */
  stop(app: string, name: string): void {
    const key = relayedName(app, name);
    const relay = this.relays.get(key);
    if (!relay) return;
    this.relays.delete(key);
    relay.stop();
  }

  /** The origin of the relay of (app, name), if one runs. */
  originOf(app: string, name: string): string | undefined {
    return this.relays.get(relayedName(app, name))?.origin;
  }

  /** Stops every relay (node shutdown). */
  stopAll(): void {
    for (const relay of [...this.relays.values()]) this.stop(relay.app, relay.name);
  }

  stats(): StreamRelayStats {
    return {
      relays: this.relays.size,
      messages: this.counts.messages,
      dropped: Object.fromEntries(this.counts.dropped),
    };
  }
}

function isObject(v: AmfValue): v is AmfObject {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function describe(info: AmfValue): string {
  return isObject(info) && typeof info.description === 'string' ? info.description : JSON.stringify(info);
}
