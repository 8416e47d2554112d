import type { Logger } from 'pino';
import type { PublicationStore } from '../cluster/publications.ts';
import { errorText } from '../error-text.ts';
import type { AmfObject } from '../rtmfp/amf-value.ts';
import { ProtocolError } from '../rtmfp/errors.ts';
import { readDataFrame } from '../rtmfp/flv.ts';
import type { LivePlayer, PlayerDrop } from '../rtmfp/live-player.ts';
import { LivePublication } from '../rtmfp/live-publication.ts';
import type { TCMessage } from '../rtmfp/tc-message.ts';
import { TCMessageType } from '../rtmfp/tc-message.ts';
import { redirectInfo } from '../rtmfp/tc-server.ts';
import type { NetStream, PlayRequest, PublishRequest, StreamEvents } from '../rtmfp/tc-stream.ts';
import type { DispatchKind, Outcome, StreamInfo } from '../sandbox/sandbox.ts';
import { DropCounter } from './drops.ts';
import { toPlain } from './handler-values.ts';
import type { OriginPublications } from './link-acceptor.ts';
import type { StreamFeed } from './relay-follower.ts';

const PLAYER_DROPS: readonly PlayerDrop[] = ['slow-audio', 'slow-video'];
/** How long player counts wait to be written to the store, so a burst of plays is one write per stream. */
const SUBSCRIBER_FLUSH_MS = 250;
/** onData calls one publication may cause per second; past it data still flows, unseen by the app. */
const DATA_EVENTS_PER_SECOND = 50;

/** What the streams need of the apps (AppHost): whose client a stream is, and its handlers. */
export interface StreamApps {
  /** The app and connect URL of a client onConnection let in; undefined otherwise. */
  client(peerId: string): { app: string; tcUrl: string } | undefined;
  /** Whether `app`'s running version has the handler of `kind`. */
  handles(app: string, kind: DispatchKind): boolean;
  /** Runs `kind`'s handler for the client; undefined when it is gone. Never rejects. */
  clientEvent(peerId: string, kind: DispatchKind, args: unknown[]): Promise<Outcome | undefined>;
}

export interface NodeStreamsOptions {
  /** The cluster's publication registry (`state.publications`). */
  publications: PublicationStore;
  /** This node's ID, as the registry records origins and player counts. */
  node: () => string;
  apps: StreamApps;
  logger: Logger;
  /** Streams published on other nodes, relayed here for this node's players; absent: standalone. */
  relays?: StreamFeed;
}

/** A publication here and what the store knows of it. */
interface Local {
  app: string;
  name: string;
  pub: LivePublication;
  /** The NetStream publishing it here, if any. */
  publisher: NetStream | undefined;
  /** Other nodes' relays among its players: not counted as players of this node. */
  relayed: number;
  dataWindow: number;
  dataEvents: number;
}

/**
 * The live streams of one node (issue 10): NetStream publish and play events become
 * LivePublications fed by their publisher and fanned out to their players, with the app's
 * onPublish/onSubscribe deciding and the cluster registry keeping one publisher per name.
 * What is held here is the truth: after a store outage it is claimed and counted again
 * (`reassert`), as NetGroup memberships are.
 */
export class NodeStreams implements StreamEvents, OriginPublications {
  private readonly o: NodeStreamsOptions;
  private readonly log: Logger;
  /** `app` NUL `name` → its publication here (kept while it has a publisher or players). */
  private readonly local = new Map<string, Local>();
  private readonly publishing = new Map<NetStream, Local>();
  private readonly playing = new Map<LivePlayer, Local>();
  /** Messages refused on stream flows, by reason. */
  readonly drops = new DropCounter();
  /** What players that stopped lost for being slow (those playing count in `dropSnapshot`). */
  private readonly slowDrops: Record<PlayerDrop, number> = { 'slow-audio': 0, 'slow-video': 0 };
  /** Publishes and plays refused, by reason (`taken`, `refused`, `redirected`, `no-app`). */
  readonly refused: Record<string, number> = {};
  private readonly dirty = new Set<Local>();
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(o: NodeStreamsOptions) {
    this.o = o;
    this.log = o.logger.child({ component: 'streams' });
  }

  /**
   * Messages refused on stream flows and media players lost for being slow (`slow-audio`,
   * `slow-video`), by reason.
   */
  dropSnapshot(): Record<string, number> {
    const lost = { ...this.slowDrops };
    for (const player of this.playing.keys())
      for (const reason of PLAYER_DROPS) lost[reason] += player.dropped[reason];
    return { ...this.drops.snapshot(), ...lost };
  }

  /** Live publications whose publisher is on this node (not relayed ones), and players on this node. */
  get counts(): { publications: number; players: number } {
    let publications = 0;
    for (const l of this.local.values()) if (l.publisher && l.pub.publishing) publications++;
    return { publications, players: this.playing.size };
  }

  /**
   * Another node's relay plays (app, name) here (the link acceptor): a player of the
   * publication like any other, but no handler runs for it and the registry does not count it
   * (the relaying node counts its own players).
   */
  subscribeRelay(app: string, name: string, player: LivePlayer, now: number): void {
    const l = this.localOf(app, name);
    l.relayed++;
    l.pub.subscribe(player, now, { relay: true });
  }

  unsubscribeRelay(app: string, name: string, player: LivePlayer): void {
    const l = this.local.get(keyOf(app, name));
    if (!l?.pub.unsubscribe(player)) return;
    l.relayed--;
    this.forgetIfIdle(l);
  }

  publish(stream: NetStream, request: PublishRequest): void {
    void this.decidePublish(stream, request).catch((e: unknown) => {
      this.log.error({ err: errorText(e) }, 'publish failed');
      stream.refusePublish(request, 'the node failed to start the publication', 'NetStream.Publish.Failed');
    });
  }

  unpublished(stream: NetStream, name: string): void {
    const l = this.publishing.get(stream);
    if (!l) return;
    this.publishing.delete(stream);
    l.publisher = undefined;
    l.pub.stop();
    this.forgetIfIdle(l);
    // Its players wait on: the name may be published on another node next.
    if (this.localPlayers(l) > 0) this.o.relays?.follow(l.app, l.name, l.pub);
    void this.o.publications
      .release(l.app, l.name, this.o.node(), stream.peerId)
      .catch((e: unknown) => this.log.warn({ name, err: errorText(e) }, 'could not release a publication'));
    void this.o.apps.clientEvent(stream.peerId, 'unpublish', [streamInfo(name, '')]);
  }

  play(stream: NetStream, request: PlayRequest): void {
    void this.decidePlay(stream, request).catch((e: unknown) => {
      this.log.error({ err: errorText(e) }, 'play failed');
      stream.failPlay(request, 'the node failed to start playing');
    });
  }

  stopped(stream: NetStream, player: LivePlayer): void {
    const l = this.playing.get(player);
    if (!l) return;
    this.playing.delete(player);
    for (const reason of PLAYER_DROPS) this.slowDrops[reason] += player.dropped[reason];
    l.pub.unsubscribe(player);
    if (this.localPlayers(l) === 0) this.o.relays?.unfollow(l.app, l.name);
    this.forgetIfIdle(l);
    this.countPlayers(l);
    void this.o.apps.clientEvent(stream.peerId, 'unsubscribe', [streamInfo(player.name, '')]);
  }

  media(stream: NetStream, message: TCMessage, now: number): void {
    const l = this.publishing.get(stream);
    if (!l) {
      this.drops.add('media-not-publishing');
      return;
    }
    try {
      l.pub.ingest(message, now);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.drops.add(e.reason);
      return;
    }
    if (message.type === TCMessageType.dataAmf0 || message.type === TCMessageType.dataAmf3)
      this.onData(stream, l, message, now);
  }

  dropped(_stream: NetStream, reason: string): void {
    this.drops.add(reason);
  }

  /** Stops the coalescing timer (node shutdown; the store reaps what the node leaves). */
  close(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** Claims every publication and counts every player held here again (the store came back). */
  async reassert(): Promise<void> {
    for (const l of this.local.values()) {
      if (l.publisher) {
        const claim = { app: l.app, name: l.name, node: this.o.node(), publisher: l.publisher.peerId };
        const result = await this.o.publications.claim(claim).catch(() => undefined);
        if (result && !result.ok)
          this.log.warn(
            { name: l.name, holder: result.holder.node },
            'a publication held here is claimed by another node',
          );
      }
      this.dirty.add(l);
    }
    await this.flush();
  }

  private async decidePublish(stream: NetStream, request: PublishRequest): Promise<void> {
    const client = this.o.apps.client(stream.peerId);
    if (!client) {
      this.refuse('no-app', () => stream.refusePublish(request, 'not connected to an app'));
      return;
    }
    const key = keyOf(client.app, request.name);
    if (this.local.get(key)?.publisher) {
      this.refuse('taken', () => stream.refusePublish(request, `${request.name} is already published`));
      return;
    }
    const outcome = await this.o.apps.clientEvent(stream.peerId, 'publish', [
      streamInfo(request.name, request.query),
    ]);
    if (outcome?.status === 'failed') {
      this.refuse('refused', () => stream.refusePublish(request, outcome.failure.message));
      return;
    }
    const node = this.o.node();
    const claim = { app: client.app, name: request.name, node, publisher: stream.peerId };
    const claimed = await this.o.publications.claim(claim).catch((e: unknown) => {
      // Local state is the truth: publish here and claim again when the store is back.
      this.log.warn({ name: request.name, err: errorText(e) }, 'could not claim a publication');
      return { ok: true as const };
    });
    if (!claimed.ok) {
      const where = claimed.holder.node === node ? 'here' : `on node ${claimed.holder.node}`;
      this.refuse('taken', () =>
        stream.refusePublish(request, `${request.name} is already published ${where}`),
      );
      return;
    }
    const l = this.localOf(client.app, request.name);
    const published = outcome?.status === 'ok';
    if (l.publisher) {
      // Another NetStream of this client took the name while onPublish ran (the same claim).
      this.refuse('taken', () => stream.refusePublish(request, `${request.name} is already published`));
      if (published) void this.o.apps.clientEvent(stream.peerId, 'unpublish', [streamInfo(request.name, '')]);
      return;
    }
    if (!stream.acceptPublish(request)) {
      // The client moved on while we decided: the name goes back.
      this.forgetIfIdle(l);
      await this.o.publications.release(client.app, request.name, node, stream.peerId).catch(() => false);
      if (published) void this.o.apps.clientEvent(stream.peerId, 'unpublish', [streamInfo(request.name, '')]);
      return;
    }
    l.publisher = stream;
    this.publishing.set(stream, l);
    this.o.relays?.unfollow(l.app, l.name);
    l.pub.start({ publisher: stream.peerId });
  }

  private async decidePlay(stream: NetStream, request: PlayRequest): Promise<void> {
    const client = this.o.apps.client(stream.peerId);
    if (!client) {
      this.refuse('no-app', () => stream.failPlay(request, 'not connected to an app'));
      return;
    }
    const outcome = await this.o.apps.clientEvent(stream.peerId, 'subscribe', [
      streamInfo(request.name, request.query),
    ]);
    if (outcome?.status === 'failed') {
      const f = outcome.failure;
      const target = f.kind === 'redirect' ? f.addresses?.[0] : undefined;
      if (target) {
        // The Cumulus convention: the address is the description; players also read ex.redirect.
        const extra: AmfObject = redirectInfo(client.tcUrl, target);
        this.refuse('redirected', () => stream.failPlay(request, target, extra));
      } else {
        this.refuse('refused', () => stream.failPlay(request, f.message));
      }
      return;
    }
    const player = stream.startPlaying(request);
    if (!player) {
      if (outcome?.status === 'ok')
        void this.o.apps.clientEvent(stream.peerId, 'unsubscribe', [streamInfo(request.name, '')]);
      return;
    }
    const l = this.localOf(client.app, request.name);
    this.playing.set(player, l);
    l.pub.subscribe(player, stream.now);
    if (!l.publisher) this.o.relays?.follow(l.app, l.name, l.pub);
    this.countPlayers(l);
  }

  private onData(stream: NetStream, l: Local, message: TCMessage, now: number): void {
    if (!this.o.apps.handles(l.app, 'data')) return;
    if (now - l.dataWindow >= 1000) {
      l.dataWindow = now;
      l.dataEvents = 0;
    }
    if (++l.dataEvents > DATA_EVENTS_PER_SECOND) {
      this.drops.add('data-events-over-bound');
      return;
    }
    const frame = readDataFrame(message);
    void this.o.apps.clientEvent(stream.peerId, 'data', [
      streamInfo(l.name, ''),
      frame.handler,
      frame.values.slice(1).map(toPlain),
    ]);
  }

  private refuse(reason: string, answer: () => void): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
    answer();
  }

  private localOf(app: string, name: string): Local {
    const key = keyOf(app, name);
    let l = this.local.get(key);
    if (!l) {
      l = {
        app,
        name,
        pub: new LivePublication(name),
        publisher: undefined,
        relayed: 0,
        dataWindow: 0,
        dataEvents: 0,
      };
      this.local.set(key, l);
    }
    return l;
  }

  private forgetIfIdle(l: Local): void {
    if (!l.publisher && l.pub.playerCount === 0) this.local.delete(keyOf(l.app, l.name));
  }

  /** Player counts go to the store coalesced: one write per stream per SUBSCRIBER_FLUSH_MS. */
  private countPlayers(l: Local): void {
    this.dirty.add(l);
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      void this.flush();
    }, SUBSCRIBER_FLUSH_MS);
    this.flushTimer.unref?.();
  }

  private async flush(): Promise<void> {
    const batch = [...this.dirty];
    this.dirty.clear();
    const node = this.o.node();
    await Promise.all(
      batch.map((l) =>
        this.o.publications.setSubscribers(l.app, l.name, node, this.localPlayers(l)).catch((e: unknown) => {
          this.log.warn(
            { name: l.name, err: errorText(e) },
            'could not count players; retrying when the store is back',
          );
        }),
      ),
    );
  }

  /** Players of this node (not other nodes' relays). */
  private localPlayers(l: Local): number {
    return l.pub.playerCount - l.relayed;
  }
}

function keyOf(app: string, name: string): string {
  return `${app}\u0000${name}`;
}

function streamInfo(name: string, query: string): StreamInfo {
  const properties: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(query)) properties[k] = v;
  return { name, properties };
}
