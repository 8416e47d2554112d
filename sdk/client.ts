import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import { EndpointClock } from '../runtime/endpoint-clock.ts';
import type { Address } from '../runtime/rtmfp/address.ts';
import type { AmfObject, AmfValue } from '../runtime/rtmfp/amf-value.ts';
import { parseEPD } from '../runtime/rtmfp/certificate.ts';
import type { ForwardedIHello } from '../runtime/rtmfp/chunks.ts';
import { Endpoint } from '../runtime/rtmfp/endpoint.ts';
import { ProtocolError } from '../runtime/rtmfp/errors.ts';
import { keyInline, makeServerIdentity, type ServerIdentity } from '../runtime/rtmfp/handshake.ts';
import type { KeyingPolicy } from '../runtime/rtmfp/keying.ts';
import type { MediaMessage } from '../runtime/rtmfp/media-message.ts';
import type { Opening } from '../runtime/rtmfp/opening.ts';
import type { RecvFlow } from '../runtime/rtmfp/recv-flow.ts';
import type { Session, SessionConfig } from '../runtime/rtmfp/session.ts';
import { TCClientConnection } from '../runtime/rtmfp/tc-client.ts';
import type { TCClientStream, TCClientStreamHandler } from '../runtime/rtmfp/tc-client-stream.ts';
import { GROUP_METADATA, isGroupMetadata } from '../runtime/rtmfp/tc-message.ts';
import { appOfUrl } from '../runtime/rtmfp/tc-server.ts';
import { answerCall, type CallHandler } from './call-handler.ts';
import { FlvError, type FlvHeader, type FlvTag, FlvTagType, readFlv, writeFlv } from './flv.ts';
import { groupIdOf, NetGroup, type NetGroupEnd } from './group.ts';
import type { StreamHost } from './net-stream.ts';
import { PeerConnection } from './peer.ts';
import { Player, type PlayOptions } from './player.ts';
import { Publisher, type PublishOptions } from './publisher.ts';
import { MAX_REDIRECTS, playRedirectOf, redirected, redirectOf } from './redirect.ts';
import { isRecord, StatusError } from './status.ts';

export type {
  AmfObject,
  AmfValue,
  CallHandler,
  FlvHeader,
  FlvTag,
  MediaMessage,
  NetGroupEnd,
  PlayOptions,
  PublishOptions,
};
export { FlvError, FlvTagType, NetGroup, PeerConnection, Player, Publisher, readFlv, StatusError, writeFlv };

const DEFAULT_PORT = 1935;
/** How long a graceful close waits for the server's Close Ack. */
const CLOSE_WAIT_MS = 2_000;
/** How long `connectPeer` waits for the peer by default (ms). */
const PEER_TIMEOUT_MS = 10_000;
const PEER_ID = /^[0-9a-f]{64}$/;

export interface ClientOptions {
  /** Arguments after the command object of `connect`. */
  args?: AmfValue[];
  /** Give up connecting after this long (ms). Default 10 s. */
  timeoutMs?: number;
  /** DH groups in order of preference (default 16, 14, 2). */
  groups?: readonly number[];
  /** HMAC / session sequence number policy (default: both required, like tcconn). */
  policy?: KeyingPolicy;
  /** Extra fields for the connect command object. */
  commandObject?: AmfObject;
  session?: SessionConfig;
  /** UDP port to send from (default: one the system picks). */
  localPort?: number;
  /** Our session ID, 1 … 2^32−1 (default: random; rtmfp-cpp clients start from 1 again). */
  sessionId?: number;
  /**
   * Follow the FMS/Wowza redirect convention (`info.ex.code` 302, `info.ex.redirect`, as a
   * draining fnhost node sends): a connect refused with it is tried again there (up to 5
   * times), and when the server closes the connection with it, the connection emits
   * `redirect` with a new NetConnection to there (or `redirectFailed` with the error). The
   * new connection picks its own UDP port and session ID (`localPort`, `sessionId` are not
   * carried over: the old socket may still be closing).
   */
  followRedirects?: boolean;
}

/**
 * A NetConnection to an fnhost node (or any RFC 7425 server) over RTMFP.
 * Events: `close` (info object), `status` (onStatus info), `peer` (a PeerConnection another
 * client opened to us through the server's rendezvous); with `followRedirects`, `redirect`
 * (the new NetConnection) and `redirectFailed` (the error).
 */
export class NetConnection extends EventEmitter {
  /** The connect `_result` info object. */
  info: AmfValue = null;
  readonly url: string;
  /** Our peer ID (hex SHA-256 of our certificate). */
  readonly peerId: string;
  /** The server's certificate fingerprint, hex. */
  serverFingerprint = '';
  private readonly socket: dgram.Socket;
  private readonly handlers = new Map<string, CallHandler>();
  /** Our RTMFP endpoint: it opens the session to the server and runs its timers. */
  private readonly endpoint: Endpoint;
  private readonly clock: EndpointClock;
  private readonly opening: Opening;
  /** Our certificate, as initiator to the server and to peers and as responder to peers. */
  private readonly identity: ServerIdentity;
  private readonly server: Address;
  /** `connectPeer`s under way, by their opening: each takes the peer connection it opened. */
  private readonly peerOpenings = new Map<Opening, (peer: PeerConnection) => void>();
  private readonly peers = new Set<PeerConnection>();
  private session: Session | undefined;
  private tc: TCClientConnection | undefined;
  /** Settles `open`: the connect's answer. */
  private settle: ((ok: boolean, info: AmfValue) => void) | undefined;
  private closed = false;
  private torndown = false;
  private socketClosed = false;
  /** Datagrams handed to the socket and not yet sent. */
  private sending = 0;
  private closeInfo: AmfValue = null;
  private readonly options: ClientOptions;
  /** NetGroups joined, by our GC flow's ID (the server's member flow is associated to it). */
  private readonly netGroups = new Map<number, NetGroup>();
  /** What the NetStreams on this connection run when it closes. */
  private readonly streamEnds = new Set<() => void>();

  /** Starts the handshake with `target` at once. */
  private constructor(url: string, socket: dgram.Socket, target: Address, options: ClientOptions) {
    super();
    this.url = url;
    this.socket = socket;
    this.options = options;
    this.server = target;
    this.identity = makeServerIdentity(undefined, options.groups);
    this.endpoint = new Endpoint({
      identity: this.identity,
      session: options.session,
      platform: {
        send: (datagram, to) => this.send(datagram, to),
        rescheduled: () => this.clock.arm(),
        wake: () => this.clock.wake(),
        keying: keyInline,
      },
      events: {
        // RFC 7425 §4.4.4: after the server's Redirect, an initiator sends its IHello here.
        hello: (tag, _uri, from, now) => this.endpoint.rHello(tag, from, now),
        forwardedHello: (session, hello, now) => this.onForwardedHello(session, hello, now),
        opened: (session, how, now) => {
          if (how.role === 'initiator') {
            if (how.opening === this.opening) this.startSession(session, how.farFingerprint, now);
            else this.openedPeer(how.opening, session);
          } else if (how.replaces && this.peerOpenings.has(how.replaces)) {
            // Glare: the peer opened to us as we opened to it, and its session won.
            this.openedPeer(how.replaces, session, how.peerId);
          } else this.acceptPeer(session, how.peerId);
        },
        flow: (s, flow) => {
          if (s !== this.session) peerOf(s)?.onFlow(flow);
          else if (isGroupMetadata(flow.metadata)) this.onGroupFlow(flow);
          else this.tc?.onFlow(flow);
        },
        closed: (s) => {
          if (s === this.session) this.finish(this.closeInfo ?? closedInfo('Connection closed.'));
          else peerOf(s)?.onClosed();
        },
        released: (s) => {
          if (s !== this.session) return;
          this.emit('released');
          this.teardown();
        },
        // Malformed or undecryptable datagrams are ignored, as a server ignores ours.
        dropped: () => {},
      },
    });
    this.clock = new EndpointClock(this.endpoint);
    socket.on('message', (msg, rinfo) => {
      try {
        this.endpoint.receive(msg, { address: rinfo.address, port: rinfo.port }, performance.now());
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
      }
    });
    this.opening = this.endpoint.open(
      {
        uri: url,
        certificate: this.identity.certificate,
        targets: [target],
        groups: options.groups,
        policy: options.policy,
        localId: options.sessionId,
      },
      performance.now(),
    );
    this.peerId = this.opening.peerId;
  }

  /**
   * Opens a session to `url` (`rtmfp://host[:port]/app…`) and sends `connect`; with
   * `followRedirects`, a connect refused with a redirect is tried again where it says.
   */
  static async open(url: string, options: ClientOptions = {}): Promise<NetConnection> {
    for (let hops = 0; ; hops++) {
      try {
        return await NetConnection.openOnce(url, options);
      } catch (e) {
        const next = e instanceof StatusError && options.followRedirects ? redirectOf(e.info) : undefined;
        if (!next || hops >= MAX_REDIRECTS) throw e;
        url = next;
        options = redirected(options);
      }
    }
  }

  private static async openOnce(url: string, options: ClientOptions): Promise<NetConnection> {
    const target = await resolve(url);
    const socket = dgram.createSocket(isIPv6(target.address) ? 'udp6' : 'udp4');
    await new Promise<void>((resolveBind, rejectBind) => {
      socket.once('error', rejectBind);
      socket.bind(options.localPort ?? 0, () => {
        socket.off('error', rejectBind);
        resolveBind();
      });
    });
    const nc = new NetConnection(url, socket, target, options);
    try {
      await nc.handshake(options);
    } catch (e) {
      nc.teardown();
      throw e;
    }
    return nc;
  }

  /** The UDP port this connection sends from. */
  get localPort(): number {
    return this.socket.address().port;
  }

  get connected(): boolean {
    return !this.closed && this.session?.state === 'open';
  }

  /** NetConnection.call: resolves to the `_result` value, rejects with a StatusError from `_error`. */
  call(name: string, ...args: AmfValue[]): Promise<AmfValue> {
    const tc = this.tc;
    if (!tc || !this.connected) return Promise.reject(new StatusError(this.closeInfo, 'not connected'));
    return new Promise((resolvePromise, reject) => {
      tc.call(name, args, (ok, value) =>
        ok ? resolvePromise(value) : reject(new StatusError(value, `${name} failed`)),
      );
    });
  }

  /**
   * Joins a NetGroup: `specifier` is a group specifier as librtmfp and Flash build it ("G:…",
   * hashed to the group ID as librtmfp does) or a group ID (64 hex digits). The returned
   * NetGroup emits `member` with each peer ID the server introduces, and `close` when it is
   * left, refused (the app's onJoinGroup threw) or the connection closed.
   */
  joinGroup(specifier: string): NetGroup {
    const id = groupIdOf(specifier);
    const session = this.session;
    const main = this.tc?.serverControlFlowId;
    if (!session || !this.connected || main === undefined)
      throw new StatusError(this.closeInfo, 'not connected');
    const group = new NetGroup(id, session.openFlow(GROUP_METADATA, main));
    this.netGroups.set(group.flowId, group);
    group.once('close', () => this.netGroups.delete(group.flowId));
    return group;
  }

  /**
   * Publishes a live stream under `name` (createStream + publish, RFC 7425 §5.3): resolves on
   * NetStream.Publish.Start; rejects with a StatusError (info) on NetStream.Publish.BadName or
   * another refusal, or after `timeoutMs`.
   */
  publish(name: string, o: PublishOptions = {}): Promise<Publisher> {
    return Publisher.start(this.streamHost(), name, o);
  }

  /**
   * Plays the stream `name` (createStream + play): resolves on NetStream.Play.Start; rejects
   * with a StatusError on NetStream.Play.Failed. With `followRedirect`, a Play.Failed naming
   * another server (`ex.redirect`, or an rtmfp:// URL in its description, as Cumulus apps
   * write it) connects there with this connection's app and arguments and plays there (up
   * to 5 times); the player then owns that connection and closes it with itself.
   */
  async play(name: string, o: PlayOptions = {}): Promise<Player> {
    let nc: NetConnection = this;
    for (let hops = 0; ; hops++) {
      try {
        return await Player.start(nc.streamHost(), nc, name, o, nc !== this);
      } catch (e) {
        const next =
          o.followRedirect && e instanceof StatusError ? playRedirectOf(e.info, nc.url) : undefined;
        if (!next || hops >= MAX_REDIRECTS) throw e;
        nc = await NetConnection.open(next, redirected(this.options));
      }
    }
  }

  /** Answers the server's calls of `name`, and peers' calls their PeerConnection does not handle. */
  handle(name: string, handler: CallHandler): this {
    this.handlers.set(name, handler);
    return this;
  }

  /**
   * Opens a direct session to the client whose peer ID is `peerId`, through the server's
   * rendezvous (RFC 7425 §4.4.4; RTMFP-NOTES §6): an IHello naming the peer goes to the server,
   * which redirects us to the peer's addresses and forwards our IHello to it; the handshake
   * then runs with the peer itself, whose certificate must have that fingerprint. Resolves once
   * the peer accepted our NetConnection on that session; rejects after `timeoutMs` (default
   * 10 s), e.g. for a peer no node knows.
   */
  connectPeer(peerId: string, o: { timeoutMs?: number } = {}): Promise<PeerConnection> {
    const id = typeof peerId === 'string' ? peerId.toLowerCase() : '';
    if (!PEER_ID.test(id))
      return Promise.reject(
        new TypeError(`connectPeer: a peer ID is 64 hex digits, got ${JSON.stringify(peerId)}`),
      );
    if (!this.connected) return Promise.reject(new StatusError(this.closeInfo, 'not connected'));
    const timeoutMs = o.timeoutMs ?? PEER_TIMEOUT_MS;
    const opening = this.endpoint.open(
      {
        peerId: Buffer.from(id, 'hex'),
        certificate: this.identity.certificate,
        targets: [this.server],
        groups: this.options.groups,
        policy: this.options.policy,
      },
      performance.now(),
    );
    return new Promise((resolvePromise, reject) => {
      const timeout = setTimeout(() => {
        this.peerOpenings.delete(opening);
        this.endpoint.cancel(opening);
        reject(new Error(`connectPeer: peer ${id.slice(0, 8)}… did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.peerOpenings.set(opening, (peer) => {
        peer.once('connected', (ok: boolean, info: AmfValue) => {
          clearTimeout(timeout);
          if (ok) resolvePromise(peer);
          else reject(new StatusError(info, 'the peer refused the connection'));
        });
        peer.once('close', () => {
          clearTimeout(timeout);
          reject(new Error('connectPeer: the peer closed the session'));
        });
      });
    });
  }

  /** Graceful close: the server sees the session end; resolves once it acknowledged (or after 2 s). */
  async close(): Promise<void> {
    if (this.closed) return;
    const session = this.session;
    if (session && session.state === 'open') {
      const acked = new Promise<void>((r) => this.once('released', r));
      session.close(performance.now());
      await Promise.race([acked, new Promise((r) => setTimeout(r, CLOSE_WAIT_MS))]);
    }
    this.finish(closedInfo('Connection closed.'));
    this.teardown();
  }

  /**
   * Ends the connection at once; resolves once its socket is closed. By default the server gets
   * an unsolicited Close Ack (RFC 7016 §3.5.5.2), as rtmfp-cpp's clients end (tcconn on Ctrl-C);
   * with `tellPeer: false` it is told nothing, as when a client crashes or loses its network.
   */
  async abort(o: { tellPeer?: boolean } = {}): Promise<void> {
    if (this.torndown && this.socketClosed) return;
    const socketClosed = new Promise<void>((r) => this.socket.once('close', () => r()));
    if (this.session?.state === 'open') this.session.abort({ tellPeer: o.tellPeer ?? true });
    this.finish(closedInfo('Connection aborted.'));
    this.teardown();
    await socketClosed;
  }

  /** What this connection's NetStreams use of it. */
  private streamHost(): StreamHost {
    return {
      createStream: (handler) => this.createStream(handler),
      deleteStream: (stream) => this.tc?.deleteStream(stream),
      onClose: (listener) => {
        this.streamEnds.add(listener);
        return () => this.streamEnds.delete(listener);
      },
    };
  }

  private createStream(handler: TCClientStreamHandler): Promise<TCClientStream> {
    const tc = this.tc;
    if (!tc || !this.connected) return Promise.reject(new StatusError(this.closeInfo, 'not connected'));
    return new Promise((resolvePromise, reject) => {
      tc.createStream(handler, (stream, info) =>
        stream ? resolvePromise(stream) : reject(new StatusError(info, 'createStream failed')),
      );
    });
  }

  /**
   * The session a `connectPeer` waits for is up: one we opened, or with `acceptedFrom` (the
   * peer's ID) the one the peer opened to us at the same moment, which won the glare (RFC 7016
   * §3.5.1.3). Either way our NetConnection's handlers answer on it.
   */
  private openedPeer(opening: Opening, session: Session, acceptedFrom?: string): void {
    const waiting = this.peerOpenings.get(opening);
    if (!waiting) return;
    this.peerOpenings.delete(opening);
    const handlers = (name: string) => this.handlers.get(name);
    waiting(
      this.addPeer(
        acceptedFrom === undefined
          ? PeerConnection.opened(session, opening.farPeerId!, handlers)
          : PeerConnection.accepted(session, acceptedFrom, handlers),
      ),
    );
  }

  /**
   * A peer opened a session to us: it gets our NetConnection's handlers, and `peer` tells the
   * user once its NetConnection is accepted (so calls on it can go at once).
   */
  private acceptPeer(session: Session, peerId: string): void {
    const peer = this.addPeer(PeerConnection.accepted(session, peerId, (name) => this.handlers.get(name)));
    peer.once('connected', () => this.emit('peer', peer));
  }

  private addPeer(peer: PeerConnection): PeerConnection {
    peer.session.context = peer;
    this.peers.add(peer);
    peer.once('close', () => this.peers.delete(peer));
    return peer;
  }

  /**
   * The server relayed an IHello naming us (RFC 7016 §3.5.1.5): our RHello goes to the address
   * it gives, so the initiator's handshake continues with us (and its NAT lets us in).
   */
  private onForwardedHello(session: Session, hello: ForwardedIHello, now: number): void {
    if (session !== this.session || this.torndown) return;
    const named = parseEPD(hello.epd).fingerprint;
    if (!named?.equals(this.identity.fingerprint)) return;
    this.endpoint.rHello(hello.tag, hello.replyAddress, now);
  }

  /** Resolves once the server accepted the connect; rejects when refused or after `timeoutMs`. */
  private handshake(options: ClientOptions): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      const timeout = setTimeout(() => {
        reject(new StatusError(failedInfo('connect timed out'), 'connect timed out'));
      }, options.timeoutMs ?? 10_000);
      this.settle = (ok, info) => {
        clearTimeout(timeout);
        if (ok) {
          this.info = info;
          resolvePromise();
        } else {
          reject(new StatusError(info, 'connect rejected'));
        }
      };
    });
  }

  /** The session is up: `connect` goes out on it. */
  private startSession(session: Session, serverFingerprint: Buffer, now: number): void {
    this.serverFingerprint = serverFingerprint.toString('hex');
    const tc = new TCClientConnection(
      session,
      {
        connected: (ok, info) => this.settle?.(ok, info),
        status: (info) => {
          if (isRecord(info) && info.code === 'NetConnection.Connect.Closed') this.closeInfo = info;
          this.emit('status', info);
        },
        call: (name, args, reply) => void answerCall(this.handlers.get(name), name, args, reply),
      },
      (at, service) => this.clock.at(at, service),
    );
    this.session = session;
    this.tc = tc;
    tc.connect({
      tcUrl: this.url,
      app: appOfUrl(this.url),
      args: this.options.args ?? [],
      commandObject: this.options.commandObject,
    });
    session.flush(now);
  }

  /** The server's member flow for one of our NetGroups; any other "GC" flow is refused. */
  private onGroupFlow(flow: RecvFlow): void {
    const group = flow.associatedFlowId === undefined ? undefined : this.netGroups.get(flow.associatedFlowId);
    if (group) group.accept(flow);
    else flow.reject(0);
  }

  /** The connection is over for the user; the socket stays until the session is released. */
  private finish(info: AmfValue): void {
    if (this.closed) return;
    this.closed = true;
    this.closeInfo = info;
    this.tc?.end(info);
    for (const group of [...this.netGroups.values()]) group.closed();
    for (const end of [...this.streamEnds]) end();
    this.streamEnds.clear();
    if (this.session?.state !== 'closing') this.teardown();
    this.emit('close', info);
    const redirect = this.options.followRedirects ? redirectOf(info) : undefined;
    if (redirect) {
      NetConnection.open(redirect, redirected(this.options)).then(
        (next) => this.emit('redirect', next),
        (e: unknown) => this.emit('redirectFailed', e),
      );
    }
  }

  private send(datagram: Buffer, to: Address): void {
    if (this.torndown) return;
    this.sending++;
    this.socket.send(datagram, to.port, to.address, () => {
      if (--this.sending === 0) this.emit('sent');
    });
  }

  /** Stops timers and the session; the socket closes once what was sent has left (e.g. a Close Ack). */
  private teardown(): void {
    if (this.torndown) return;
    this.torndown = true;
    this.clock.stop();
    this.endpoint.cancel(this.opening);
    for (const opening of this.peerOpenings.keys()) this.endpoint.cancel(opening);
    for (const peer of [...this.peers]) {
      peer.session.abort();
      peer.onClosed();
    }
    this.session?.abort();
    const close = () => {
      this.socket.close();
      this.socketClosed = true;
    };
    if (this.sending === 0) close();
    else this.once('sent', close);
  }
}

/** Connects to `url` with `connect` arguments; resolves once the server accepted. */
export function connect(url: string, ...args: AmfValue[]): Promise<NetConnection> {
  return NetConnection.open(url, { args });
}

async function resolve(url: string): Promise<Address> {
  const m = /^rtmfp:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?(?:\/|$)/i.exec(url);
  if (!m) throw new TypeError(`not an rtmfp:// URL: ${url}`);
  const host = m[1].replace(/^\[|\]$/g, '');
  const port = m[2] ? Number(m[2]) : DEFAULT_PORT;
  const { address } = await lookup(host);
  return { address, port };
}

function peerOf(session: Session): PeerConnection | undefined {
  return session.context instanceof PeerConnection ? session.context : undefined;
}

function closedInfo(description: string): AmfObject {
  return { level: 'status', code: 'NetConnection.Connect.Closed', description };
}

function failedInfo(description: string): AmfObject {
  return { level: 'error', code: 'NetConnection.Connect.Failed', description };
}
