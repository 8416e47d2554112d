import type { Logger } from 'pino';
import type { NodeEntry } from '../cluster/state.ts';
import { LinkAuthError, LinkRequestVerifier, signLinkAcceptance } from '../relay/link-credential.ts';
import { parseRelayedName } from '../relay/stream-relays.ts';
import { formatAddress } from '../rtmfp/address.ts';
import type { AmfValue } from '../rtmfp/amf-value.ts';
import type { LivePlayer } from '../rtmfp/live-player.ts';
import type { CallReply, ConnectRequest, TCServerConnection, TCServerHandler } from '../rtmfp/tc-server.ts';
import type { NetStream, PlayRequest, PublishRequest, StreamEvents } from '../rtmfp/tc-stream.ts';

/**
 * This node's live publications as relays from other nodes reach them: the stream layer adds a
 * relay's player as it adds a local player, but runs no handler (onSubscribe) and counts no
 * subscriber for it; the relaying node counts its own players.
 */
export interface OriginPublications {
  /** Adds `player` to (app, name), published or not yet (it waits for the publisher, as a local player). */
  subscribeRelay(app: string, name: string, player: LivePlayer, now: number): void;
  unsubscribeRelay(app: string, name: string, player: LivePlayer): void;
}

export interface LinkAcceptorOptions {
  /** This node's id and epoch; undefined until it has joined the cluster. */
  self: () => { id: string; epoch: string } | undefined;
  /** The cluster secret; undefined until the store gave it. */
  secret: () => Buffer | undefined;
  /** The publications links' plays reach (the stream layer); absent: their plays fail. */
  origin?: OriginPublications;
  log: Logger;
}

/** An accepted link: which node opened it. */
export interface AcceptedLink {
  node: string;
  epoch: string;
}

/** An accepted link as kept here. */
interface Accepted extends AcceptedLink {
  /**
   * A heartbeat's node list showed its node with its epoch: from then on, a list without them
   * means the node is gone or restarted. Before, a list may just predate the node's record.
   */
  listed: boolean;
}

/** What `/status` shows of other nodes' links to this one. */
export interface AcceptedLinkStats {
  open: number;
  accepted: number;
  /** Refused connects to the relay app, by reason (link-credential.ts LinkRefusal, or 'starting'). */
  refused: Record<string, number>;
  /** Streams other nodes relay from here now (one per stream and node). */
  relayed: number;
  /** Plays refused and messages dropped on links' NetStreams, by reason. */
  streamDrops: Record<string, number>;
}

/**
 * The far end of other nodes' media links (RtmfpNode's `links`): a `connect` to the relay app
 * is accepted only with a request signed with the cluster secret, for this node, fresh and
 * never seen (link-credential.ts); the answer is signed too, so the opener knows it reached a
 * node of its cluster. Never an app's client: no handler runs for it.
 */
export class LinkAcceptor implements TCServerHandler {
  private readonly o: LinkAcceptorOptions;
  private verifier: LinkRequestVerifier | undefined;
  private readonly links = new Map<TCServerConnection, Accepted>();
  private accepted = 0;
  private readonly refused = new Map<string, number>();
  /** What relays played, by player, to unsubscribe them from the same publication. */
  private readonly playing = new Map<LivePlayer, { app: string; name: string }>();
  /** Plays refused, and messages of links' NetStreams dropped, by reason. */
  private readonly streamDrops = new Map<string, number>();

  constructor(o: LinkAcceptorOptions) {
    this.o = o;
  }

  connect(conn: TCServerConnection, request: ConnectRequest): void {
    const self = this.o.self();
    const secret = this.o.secret();
    if (!self || !secret) {
      this.refuse(conn, 'starting', 'this node has not joined its cluster yet');
      return;
    }
    this.verifier ??= new LinkRequestVerifier(secret);
    try {
      const link = this.verifier.verify(request.args[0], self.id, conn.peerId, Date.now());
      conn.accept({ ...signLinkAcceptance(secret, { node: self.id, epoch: self.epoch }, link, conn.peerId) });
      this.links.set(conn, { node: link.node, epoch: link.epoch, listed: false });
      this.accepted++;
      this.o.log.info({ node: link.node, from: formatAddress(conn.session.address) }, 'relay link accepted');
    } catch (e) {
      if (!(e instanceof LinkAuthError)) throw e;
      this.refuse(conn, e.reason, e.message);
    }
  }

  call(_conn: TCServerConnection, name: string, _args: AmfValue[], reply: CallReply | undefined): void {
    reply?.error(`${name}: not a method of a relay link`);
  }

  closed(conn: TCServerConnection): void {
    this.links.delete(conn);
  }

  /**
   * The NetStream events of an accepted link (RtmfpNode routes them here): its plays name
   * `app/name` (stream-relays.ts relayedName) and reach the publication as a player; it never
   * publishes.
   */
  streams(conn: TCServerConnection): StreamEvents {
    return {
      publish: (stream: NetStream, request: PublishRequest) =>
        stream.refusePublish(request, 'a relay link does not publish', 'NetStream.Publish.Failed'),
      unpublished: () => {},
      play: (stream: NetStream, request: PlayRequest) => this.play(conn, stream, request),
      stopped: (_stream: NetStream, player: LivePlayer) => {
        const played = this.playing.get(player);
        if (!played) return;
        this.playing.delete(player);
        this.o.origin?.unsubscribeRelay(played.app, played.name, player);
      },
      media: () => this.countDrop('media-on-link'),
      dropped: (_stream: NetStream, reason: string) => this.countDrop(reason),
    };
  }

  /** Which node opened `conn`, if it is an accepted link. */
  linkOf(conn: TCServerConnection): AcceptedLink | undefined {
    return this.links.get(conn);
  }

  /**
   * The live nodes as of a heartbeat (ClusterNode's `updated`): a link whose node's record is
   * gone (it crashed and was reaped, or left) or names another epoch (it restarted) closes now,
   * with the relays it carried, rather than at its session's timeout.
   */
  serversChanged(live: readonly NodeEntry[]): void {
    const epochs = new Map(live.map((n) => [n.id, n.epoch]));
    for (const [conn, link] of [...this.links]) {
      if (epochs.get(link.node) === link.epoch) {
        link.listed = true;
        continue;
      }
      if (!link.listed) continue;
      const why = `node ${link.node} ${epochs.has(link.node) ? 'restarted' : 'is gone'}`;
      this.o.log.info({ node: link.node, why }, 'relay link from a node no longer live closed');
      conn.close(why);
    }
  }

  stats(): AcceptedLinkStats {
    return {
      open: this.links.size,
      accepted: this.accepted,
      refused: Object.fromEntries(this.refused),
      relayed: this.playing.size,
      streamDrops: Object.fromEntries(this.streamDrops),
    };
  }

  private play(conn: TCServerConnection, stream: NetStream, request: PlayRequest): void {
    const link = this.links.get(conn);
    const played = parseRelayedName(request.name);
    const origin = this.o.origin;
    if (!link || !played || !origin) {
      const why = !link
        ? 'not an accepted link'
        : !played
          ? 'a relay plays "app/name"'
          : 'no streams here yet';
      this.countDrop('play-refused');
      stream.failPlay(request, `relay: ${why}`);
      return;
    }
    const player = stream.startPlaying(request);
    if (!player) return;
    this.playing.set(player, played);
    origin.subscribeRelay(played.app, played.name, player, stream.now);
  }

  private countDrop(reason: string): void {
    this.streamDrops.set(reason, (this.streamDrops.get(reason) ?? 0) + 1);
  }

  private refuse(conn: TCServerConnection, reason: string, message: string): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
    this.o.log.warn(
      { reason, from: formatAddress(conn.session.address), err: message },
      'relay link refused',
    );
    conn.reject(message);
  }
}
