import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { EndpointClock } from '../endpoint-clock.ts';
import { RELAY_APP } from '../relay/link-credential.ts';
import { type Address, AddressOrigin, formatAddress } from '../rtmfp/address.ts';
import { Endpoint, type Opened, TICK_MS } from '../rtmfp/endpoint.ts';
import { ProtocolError } from '../rtmfp/errors.ts';
import { makeServerIdentity, type ServerIdentity } from '../rtmfp/handshake.ts';
import type { Opening } from '../rtmfp/opening.ts';
import type { RecvFlow } from '../rtmfp/recv-flow.ts';
import type { CloseReason, Session, SessionConfig } from '../rtmfp/session.ts';
import { appOfUrl, NO_STREAMS, TCServerConnection, type TCServerHandler } from '../rtmfp/tc-server.ts';
import type { StreamEvents } from '../rtmfp/tc-stream.ts';
import { CryptoPool } from './crypto-pool.ts';
import { DropCounter } from './drops.ts';
import { type HandshakeHook, UNANSWERED } from './handshake-hook.ts';
import { loadNativePacket, type NativePacket, SEND_AGAIN, socketDescriptor } from './native-packet.ts';
import type { HandshakeObserver } from './node-metrics.ts';
import { type PeerDirectory, Rendezvous } from './rendezvous.ts';

/** Kernel receive buffer asked for, so a burst of IHellos queues instead of being dropped. */
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
/** Time a clean shutdown waits for Close Requests to go out and be acknowledged. */
const SHUTDOWN_GRACE_MS = 1_000;
/** Handshake tags remembered to count a client's attempts for onHandshake. */
const MAX_TRACKED_TAGS = 10_000;

export interface ListenAddress {
  host: string;
  port: number;
}

export interface NodeStats {
  /** Sessions in the table, including ones lingering after close. */
  sessions: number;
  /** Open NetConnections. */
  connections: number;
  /** Handshakes being keyed (IIKeying accepted, RIKeying not sent yet). */
  opening: number;
  handshakeQueue: number;
  handshakes: number;
  received: number;
  accepted: number;
  dropped: number;
  drops: Record<string, number>;
}

export interface NodeOptions {
  listen: ListenAddress[];
  handler: TCServerHandler;
  /** Decides where an IHello goes: undefined (or a promise of it) answers here, addresses redirect. */
  handshake?: HandshakeHook;
  logger: Logger;
  session?: SessionConfig;
  cryptoWorkers?: number;
  identity?: ServerIdentity;
  /** Hears each handshake's time (`/metrics`). */
  handshakes?: HandshakeObserver;
  /** NetGroups one client may be in at once (`[limits] groups_per_client`). */
  groupsPerClient?: number;
  /** The cluster's peers, for rendezvous across nodes; absent: this node's clients only. */
  peers?: PeerDirectory;
  /** The clients' NetStreams (publish, play, media); absent: publish and play are refused. */
  streams?: StreamEvents;
  /**
   * Connections to the relay app (other nodes' media links, runtime/relay): never an app's
   * client, never balanced or redirected. Absent: their `connect` is rejected.
   */
  links?: LinkHandler;
  /**
   * Encrypt and send through the native packet path when it is built (`[node] native_packets`,
   * default true); false: node:crypto and dgram.
   */
  nativePackets?: boolean;
}

/** The far end of media links: their connects and calls, and their NetStreams once accepted. */
export interface LinkHandler extends TCServerHandler {
  streams(conn: TCServerConnection): StreamEvents;
}

/**
 * A connection's NetStream events go to the apps' stream layer, or, once its `connect` names
 * the relay app, to the links': one per connection, so a media message costs one indirection.
 */
class StreamRoute implements StreamEvents {
  target: StreamEvents;

  constructor(target: StreamEvents) {
    this.target = target;
  }

  publish(...a: Parameters<StreamEvents['publish']>): void {
    this.target.publish(...a);
  }

  unpublished(...a: Parameters<StreamEvents['unpublished']>): void {
    this.target.unpublished(...a);
  }

  play(...a: Parameters<StreamEvents['play']>): void {
    this.target.play(...a);
  }

  stopped(...a: Parameters<StreamEvents['stopped']>): void {
    this.target.stopped(...a);
  }

  media(...a: Parameters<StreamEvents['media']>): void {
    this.target.media(...a);
  }

  dropped(...a: Parameters<StreamEvents['dropped']>): void {
    this.target.dropped(...a);
  }
}

/** What a session this node opens (as initiator) tells its owner. */
export interface OutgoingEvents {
  /** The session is up; `farFingerprint` is the responder certificate's SHA-256. */
  opened(session: Session, farFingerprint: Buffer): void;
  /** The far end opened a flow; set `flow.onMessage` or `flow.reject(code)`. */
  flow(flow: RecvFlow): void;
  /** The session is over (once); not called for an opening cancelled before it opened. */
  closed(reason: CloseReason): void;
}

/** A session being opened by `RtmfpNode.openSession`. */
export interface OutgoingOpening {
  /** Our peer ID on that session: the SHA-256 of the certificate our IIKeying carries. */
  readonly peerId: string;
  /** Stops opening; nothing is told. A session that already opened is the owner's to close. */
  cancel(): void;
}

/**
 * dgram passes every destination through `lookup`, and the default answers even an IP literal
 * a tick later (dns.lookup → process.nextTick). We send only to literals: answer those at once.
 */
const lookupLiteral: dgram.SocketOptions['lookup'] = (host, options, callback) => {
  const family = isIP(host);
  if (family !== 0) callback(null, host, family);
  else dnsLookup(host, options, callback);
};

/**
 * What the node keeps on each session (`session.context`): the NetConnection of a session it
 * answered, unset once the session is closed; or the owner of a session it opened.
 */
interface SessionEntry {
  conn: TCServerConnection | undefined;
  /** Where the NetStreams of `conn` report. */
  streams?: StreamRoute;
  outgoing?: OutgoingEvents;
}

/**
 * One RTMFP node: UDP sockets, timers and the crypto worker pool around the endpoint engine in
 * runtime/rtmfp, which keeps the session table and the handshakes. Every datagram either reaches
 * a session or is dropped and counted by reason; nothing from the network throws through the
 * socket loop.
 */
export class RtmfpNode {
  readonly drops = new DropCounter();
  readonly identity: ServerIdentity;
  private readonly options: NodeOptions;
  private readonly log: Logger;
  private readonly endpoint: Endpoint;
  private readonly clock: EndpointClock;
  private readonly pool: CryptoPool;
  private readonly sockets: dgram.Socket[] = [];
  private socket4: dgram.Socket | undefined;
  private socket6: dgram.Socket | undefined;
  /** The native packet path, when built and wanted; and why not, when not. */
  private readonly native: NativePacket | undefined;
  private readonly nativeAbsent: string | undefined;
  /** Each socket's descriptor, for the native path's sendto. */
  private readonly descriptors = new Map<dgram.Socket, number>();
  /** Clients' NetConnections (connecting or connected). */
  private readonly connections = new Set<TCServerConnection>();
  /** Other nodes' media links to this one (connect to RELAY_APP): not clients. */
  private readonly links = new Set<TCServerConnection>();
  /** Sessions this node is opening, by the endpoint's opening. */
  private readonly outgoing = new Map<Opening, OutgoingEvents>();
  /** Every connection's handler: the relay app's connections go to `links`, the rest to the apps. */
  private readonly router: TCServerHandler;
  private readonly attempts = new Map<string, number>();
  /** Introduces peers (RTMFP-NOTES §6): this node's clients, and the cluster's through the store. */
  readonly rendezvous: Rendezvous;
  private stopped = false;
  /** IHellos received, and those answered with a Redirect. */
  hellos = 0;
  redirects = 0;
  /** Datagrams received, and those a session or the handshake took (the rest are in `drops`). */
  received = 0;
  accepted = 0;
  sent = 0;
  /** Datagrams the kernel refused to send (unreachable, not permitted): each is lost, like a drop on the wire. */
  sendErrors = 0;
  bytesReceived = 0;
  bytesSent = 0;

  constructor(options: NodeOptions) {
    this.options = options;
    this.log = options.logger;
    this.identity = options.identity ?? makeServerIdentity();
    this.pool = new CryptoPool(options.cryptoWorkers);
    const packets =
      options.nativePackets === false
        ? { native: undefined, reason: 'turned off ([node] native_packets = false)' }
        : loadNativePacket();
    this.native = packets.native;
    this.nativeAbsent = packets.reason;
    this.rendezvous = new Rendezvous({
      log: this.log,
      directory: options.peers,
      redirect: (tag, to, addresses) => {
        if (!this.stopped) this.endpoint.redirect(tag, to, addresses, performance.now());
      },
    });
    this.endpoint = new Endpoint({
      identity: this.identity,
      session: options.session,
      aes: this.native,
      platform: {
        send: (datagram, to) => this.send(datagram, to),
        rescheduled: () => this.clock.arm(),
        wake: () => this.clock.wake(),
        keying: (job, _now, done) => this.pool.submit(job, (result) => done(result, performance.now())),
      },
      events: {
        hello: (tag, uri, from, now) => this.onIHello(tag, uri, from, now),
        rendezvous: (epd, tag, from, now) =>
          this.rendezvous.hello(epd, tag, from, this.countAttempt(tag) - 1, now),
        opened: (session, how) => this.opened(session, how),
        // No context: opening its connection failed (`fault`), and the session is aborted.
        flow: (session, flow) => {
          const entry = session.context as SessionEntry | undefined;
          if (entry?.outgoing) entry.outgoing.flow(flow);
          else entry?.conn?.onFlow(flow);
        },
        closed: (session, reason) => {
          const entry = session.context as SessionEntry | undefined;
          if (entry?.outgoing) {
            const owner = entry.outgoing;
            entry.outgoing = undefined;
            owner.closed(reason);
            return;
          }
          const conn = entry?.conn;
          if (!entry || !conn) return;
          // What lingers until release is the Session alone (it answers a repeated Close Request).
          entry.conn = undefined;
          this.connections.delete(conn);
          this.rendezvous.remove(conn);
          conn.onSessionClosed();
        },
        dropped: (reason, failure) => {
          this.drops.add(reason);
          if (failure)
            this.log.debug(
              { err: failure.err.message, from: formatAddress(failure.from) },
              'handshake failed',
            );
        },
        fault: (err, from) =>
          this.log.error({ err, from: formatAddress(from) }, 'opening a keyed session failed'),
      },
    });
    this.clock = new EndpointClock(this.endpoint);
    this.router = this.makeRouter(options.handler, options.links);
  }

  /** Which packet path runs: native (AES in place; sendto on every socket bound so far) or node:crypto + dgram, and why. */
  get packets(): { native: boolean; sendto: boolean; reason: string | undefined } {
    return {
      native: this.native !== undefined,
      sendto: this.descriptors.size > 0 && this.descriptors.size === this.sockets.length,
      reason: this.nativeAbsent,
    };
  }

  get fingerprint(): string {
    return this.identity.fingerprint.toString('hex');
  }

  /** The session table, including sessions lingering after close. */
  get sessions(): ReadonlyMap<number, Session> {
    return this.endpoint.sessions;
  }

  /** IIKeyings taken to be keyed (not retransmissions). */
  get keyings(): number {
    return this.endpoint.keyings;
  }

  /** Sessions opened since start. */
  get handshakes(): number {
    return this.endpoint.accepted;
  }

  /** Binds every listen address; resolves to the bound addresses (port 0 → the chosen port). */
  async start(): Promise<Address[]> {
    const bound: Address[] = [];
    for (const l of this.options.listen) {
      const socket = dgram.createSocket({
        type: isIPv6(l.host) ? 'udp6' : 'udp4',
        ipv6Only: isIPv6(l.host),
        recvBufferSize: RECV_BUFFER_BYTES,
        lookup: lookupLiteral,
      });
      socket.on('message', (msg, rinfo) =>
        this.onDatagram(msg, { address: rinfo.address, port: rinfo.port }),
      );
      socket.on('error', (err) => this.log.error({ err }, 'udp socket error'));
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(l.port, l.host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      this.sockets.push(socket);
      const fd = this.native && socketDescriptor(socket);
      if (fd !== undefined) {
        this.descriptors.set(socket, fd);
        socket.once('close', () => this.descriptors.delete(socket));
      }
      if (isIPv6(l.host)) this.socket6 ??= socket;
      else this.socket4 ??= socket;
      const a = socket.address();
      bound.push({ address: a.address, port: a.port });
    }
    if (this.native)
      this.log.info(
        { packets: 'native', sendto: this.descriptors.size > 0 },
        'packets: AES-NI in place, sendto',
      );
    else
      this.log.info(
        { packets: 'node', reason: this.nativeAbsent },
        `packets: node:crypto and dgram (${this.nativeAbsent})`,
      );
    return bound;
  }

  /** Clean shutdown: closes every session (Close Request), waits briefly, releases sockets and workers. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clock.stop();
    for (const conn of [...this.connections, ...this.links]) conn.close('Server shutting down.');
    const deadline = performance.now() + SHUTDOWN_GRACE_MS;
    while (this.sessions.size > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, TICK_MS));
      this.clock.tick();
      if ([...this.sessions.values()].every((s) => s.state === 'closed')) break;
    }
    this.endpoint.abortAll();
    // A closed socket's descriptor number is soon another file's: never sendto it again.
    this.descriptors.clear();
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await this.pool.close();
  }

  /** The open NetConnections of clients (connecting or connected), e.g. to send them elsewhere. */
  openConnections(): TCServerConnection[] {
    return [...this.connections];
  }

  /** Other nodes' media links to this node, open now. */
  openLinks(): TCServerConnection[] {
    return [...this.links];
  }

  /**
   * Opens a session to `target` as initiator (RFC 7016 §3.5.1), its EPD naming `uri` (RFC 7425
   * §4.4.2), for a node-to-node link: `events` hears it open, its flows and its end. The caller
   * gives up with `cancel` (the endpoint retries its IHello until then).
   */
  openSession(uri: string, target: Address, events: OutgoingEvents): OutgoingOpening {
    if (this.stopped) throw new Error(`node: stopped, cannot open a session to ${formatAddress(target)}`);
    const opening = this.endpoint.open({ uri, targets: [target] }, performance.now());
    this.outgoing.set(opening, events);
    return {
      peerId: opening.peerId,
      cancel: () => {
        if (!this.outgoing.delete(opening)) return;
        this.endpoint.cancel(opening);
      },
    };
  }

  /**
   * Runs `service(now)` on the node's clock once it reaches `at` (flow-sync.ts WakeAt): the
   * Flow Sync bounds of its NetStreams and of its relay links' streams.
   */
  readonly wakeAt = (at: number, service: (now: number) => void): void => this.clock.at(at, service);

  stats(): NodeStats {
    return {
      sessions: this.sessions.size,
      connections: this.connections.size,
      opening: this.endpoint.beingKeyed,
      handshakeQueue: this.pool.queued,
      handshakes: this.handshakes,
      received: this.received,
      accepted: this.accepted,
      dropped: this.drops.total,
      drops: this.drops.snapshot(),
    };
  }

  private send(datagram: Buffer, to: Address): void {
    // IPv6 text always has a colon; IPv4 never does.
    const socket = (to.address.includes(':') ? this.socket6 : this.socket4) ?? this.sockets[0];
    if (!socket) return;
    this.sent++;
    this.bytesSent += datagram.length;
    if (!this.native) {
      socket.send(datagram, to.port, to.address);
      return;
    }
    const fd = this.descriptors.get(socket);
    let err = -1;
    try {
      if (fd !== undefined) err = this.native.sendTo(fd, datagram, 0, datagram.length, to.address, to.port);
    } catch {
      // Not an IP literal: dgram resolves it.
    }
    if (err === 0) return;
    if (err > 0 && !SEND_AGAIN.has(err)) {
      this.sendErrors++;
      return;
    }
    // Sealed in place in a buffer the next packet reuses, and dgram may hold it past this call.
    socket.send(Buffer.from(datagram), to.port, to.address);
  }

  private onDatagram(msg: Buffer, from: Address): void {
    this.received++;
    this.bytesReceived += msg.length;
    const droppedBefore = this.drops.total;
    try {
      this.endpoint.receive(msg, from, performance.now());
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.drops.add(e.reason);
        return;
      }
      this.drops.add('internal-error');
      this.log.error({ err: e, from: formatAddress(from) }, 'datagram handling failed');
    } finally {
      if (this.drops.total === droppedBefore) this.accepted++;
    }
  }

  /** A keyed session is up: its NetConnection starts, or its opener hears of it. */
  private opened(session: Session, how: Opened): void {
    if (how.role !== 'responder') {
      const owner = this.outgoing.get(how.opening);
      if (!owner) {
        session.abort();
        return;
      }
      this.outgoing.delete(how.opening);
      session.context = { conn: undefined, outgoing: owner } satisfies SessionEntry;
      owner.opened(session, how.farFingerprint);
      return;
    }
    const streams = new StreamRoute(this.options.streams ?? NO_STREAMS);
    const conn = new TCServerConnection(session, how.peerId, this.router, {
      groupsPerClient: this.options.groupsPerClient,
      peerInfo: (c) => this.rendezvous.update(c),
      streams,
      wakeAt: this.wakeAt,
    });
    session.context = { conn, streams } satisfies SessionEntry;
    this.connections.add(conn);
    this.rendezvous.add(conn);
    this.options.handshakes?.opened(how.keyingMs / 1000);
  }

  /** RHello, unless the app's onHandshake sends the client elsewhere (RFC 7016 §2.3.5 Redirect). */
  private onIHello(tag: Buffer, uri: string, from: Address, now: number): void {
    // A node's media link is answered here: balancing and the apps' onHandshake are for clients.
    if (appOfUrl(uri) === RELAY_APP) {
      this.endpoint.rHello(tag, from, now);
      return;
    }
    this.hellos++;
    const decision = this.options.handshake?.(
      { from, uri, attempts: this.countAttempt(tag), tag: tag.toString('hex') },
      now,
    );
    if (!decision) {
      this.endpoint.rHello(tag, from, now);
      return;
    }
    const copy = Buffer.from(tag);
    decision.then(
      (addresses) => this.answerHello(copy, from, addresses, performance.now()),
      (err: unknown) => {
        this.log.error({ err, from: formatAddress(from) }, 'the handshake hook failed; answering here');
        this.answerHello(copy, from, undefined, performance.now());
      },
    );
  }

  /**
   * RHello, or a Redirect to `addresses`, once the app decided; nothing if the node stopped
   * meanwhile (its sockets may be closed).
   */
  private answerHello(
    tag: Buffer,
    from: Address,
    addresses: Address[] | undefined | typeof UNANSWERED,
    now: number,
  ): void {
    if (this.stopped) return;
    if (addresses === UNANSWERED) {
      this.drops.add('handshake-unanswered');
      return;
    }
    if (!addresses) {
      this.endpoint.rHello(tag, from, now);
      return;
    }
    try {
      const relays = addresses.map((a) => ({ ...a, origin: AddressOrigin.relay }));
      this.endpoint.redirect(tag, from, relays, now);
      this.redirects++;
    } catch (err) {
      // RFC 7016 §2.1.5 carries IP addresses only: the client is answered here instead.
      this.log.error({ err, from: formatAddress(from) }, 'could not write the redirect; answering here');
      this.answerHello(tag, from, undefined, now);
    }
  }

  /**
   * Connections to the relay app leave the clients (load, balancing, drain, rendezvous) once
   * their `connect` names it, and go to `links`; the others to the apps.
   */
  private makeRouter(apps: TCServerHandler, links: LinkHandler | undefined): TCServerHandler {
    const isLink = (conn: TCServerConnection) => this.links.has(conn);
    return {
      connect: (conn, request) => {
        if (request.app !== RELAY_APP) {
          apps.connect(conn, request);
          return;
        }
        this.connections.delete(conn);
        this.rendezvous.remove(conn);
        this.links.add(conn);
        if (!links) {
          conn.reject('this node accepts no relay links');
          return;
        }
        const route = (conn.session.context as SessionEntry | undefined)?.streams;
        if (route) route.target = links.streams(conn);
        links.connect(conn, request);
      },
      call: (conn, name, args, reply) => {
        if (!isLink(conn)) apps.call(conn, name, args, reply);
        else if (links) links.call(conn, name, args, reply);
        else reply?.error(`${name}: not a method of a relay link`);
      },
      closed: (conn) => {
        if (!isLink(conn)) {
          apps.closed(conn);
          return;
        }
        this.links.delete(conn);
        links?.closed(conn);
      },
      ...(apps.groupJoin && {
        groupJoin: (conn, membership) => {
          if (isLink(conn)) membership.refuse();
          else apps.groupJoin?.(conn, membership);
        },
        groupLeave: (conn, membership) => {
          if (!isLink(conn)) apps.groupLeave?.(conn, membership);
        },
        groupJoinFailed: (conn, error) => {
          if (!isLink(conn)) apps.groupJoinFailed?.(conn, error);
        },
      }),
    };
  }

  /** IHellos seen per tag (a retrying client reuses its tag); bounded, oldest forgotten first. */
  private countAttempt(tag: Buffer): number {
    const key = tag.toString('hex');
    const n = (this.attempts.get(key) ?? 0) + 1;
    this.attempts.delete(key);
    this.attempts.set(key, n);
    if (this.attempts.size > MAX_TRACKED_TAGS) this.attempts.delete(this.attempts.keys().next().value!);
    return n;
  }
}
