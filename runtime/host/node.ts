import { hash, randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { type Address, AddressOrigin, addressKey, formatAddress } from '../rtmfp/address.ts';
import { CookieJar } from '../rtmfp/cookie.ts';
import { ProtocolError } from '../rtmfp/errors.ts';
import {
  type KeyingJob,
  type KeyingResult,
  makeServerIdentity,
  Responder,
  type ServerIdentity,
} from '../rtmfp/handshake.ts';
import { PacketCipher, readSessionId } from '../rtmfp/packet-crypto.ts';
import { DEFAULT_SESSION_CONFIG, Session, type SessionConfig, type SessionHooks } from '../rtmfp/session.ts';
import { TCServerConnection, type TCServerHandler } from '../rtmfp/tc-server.ts';
import { CryptoPool } from './crypto-pool.ts';
import { DeadlineSlots } from './deadline-slots.ts';
import { DropCounter } from './drops.ts';
import { type HandshakeHook, UNANSWERED } from './handshake-hook.ts';
import type { HandshakeObserver } from './node-metrics.ts';

/** Kernel receive buffer asked for, so a burst of IHellos queues instead of being dropped. */
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * Granularity of session timers: a tick runs at the next multiple of this after the earliest
 * session deadline, so deadlines close together share one wake-up and an idle node sleeps.
 */
const TICK_MS = 20;
/** Smallest datagram: scrambled session ID + one AES block (RFC 7425 §4.2). */
const MIN_DATAGRAM = 20;
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

/** What the node keeps on each session (`session.context`). */
interface SessionEntry {
  /** Unset once the session is closed. */
  conn: TCServerConnection | undefined;
  openingKey: string;
  /** `addressKey` of the session's address, for the open-sessions-by-address table. */
  addressKey: string;
  /** How it opened, until the initiator's first packet in the session shows it has its RIKeying. */
  opening: Opening | undefined;
}

/** One handshake, by address + initiator session ID, while keying and while its session lives. */
interface Opening {
  /**
   * SHA-256 of the SKIC that opened it: a retransmission repeats the SKIC (its DH key or extra
   * randomness makes every handshake's differ), and 32 bytes outlive the ~0.5 kB SKIC.
   */
  skicDigest: Buffer;
  session: Session | undefined;
  /** Sent again for a retransmitted IIKeying; let go once the initiator uses the session. */
  riKeying: Buffer | undefined;
  /** The initiator has sent in the session: a repeat of its IIKeying is a stale duplicate. */
  established: boolean;
}

function skicDigest(skic: Buffer): Buffer {
  return hash('sha256', skic, 'buffer');
}

/**
 * One RTMFP node: UDP sockets, the session table, timers and the crypto worker pool around the
 * pure protocol core in runtime/rtmfp. Every datagram either reaches a session or is dropped
 * and counted by reason; nothing from the network throws through the socket loop.
 */
export class RtmfpNode {
  readonly drops = new DropCounter();
  readonly identity: ServerIdentity;
  readonly sessions = new Map<number, Session>();
  private readonly options: NodeOptions;
  private readonly log: Logger;
  private readonly responder: Responder;
  private readonly pool: CryptoPool;
  private readonly sockets: dgram.Socket[] = [];
  private socket4: dgram.Socket | undefined;
  private socket6: dgram.Socket | undefined;
  /** Handshakes keyed by address + initiator session ID, while keying and while the session lives. */
  private readonly openings = new Map<string, Opening>();
  /** Open sessions by the peer's address: a new session from an address replaces the one there. */
  private readonly byAddress = new Map<string, Session>();
  private readonly connections = new Set<TCServerConnection>();
  private readonly wakeups = new Set<Session>();
  private readonly attempts = new Map<string, number>();
  private wakeScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  /** Sessions by when they are next due: a tick visits only those. */
  private readonly deadlines = new DeadlineSlots<Session>(TICK_MS);
  /** When `timer` fires; Infinity when none is set. */
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = false;
  private readonly hooks: SessionHooks;
  /** IHellos received, and those answered with a Redirect. */
  hellos = 0;
  redirects = 0;
  /** IIKeyings taken to be keyed (not retransmissions). */
  keyings = 0;
  /** Sessions opened since start. */
  handshakes = 0;
  /** IIKeyings with the crypto pool. */
  private pendingHandshakes = 0;
  /** Datagrams received, and those a session or the handshake took (the rest are in `drops`). */
  received = 0;
  accepted = 0;
  sent = 0;
  bytesReceived = 0;
  bytesSent = 0;

  constructor(options: NodeOptions) {
    this.options = options;
    this.log = options.logger;
    this.identity = options.identity ?? makeServerIdentity();
    this.responder = new Responder(this.identity, new CookieJar());
    this.pool = new CryptoPool(options.cryptoWorkers);
    this.hooks = {
      send: (datagram, to) => this.send(datagram, to),
      wake: (session) => this.wake(session),
      flow: (session, flow) => (session.context as SessionEntry).conn?.onFlow(flow),
      closed: (session) => {
        const entry = session.context as SessionEntry;
        const { conn } = entry;
        if (!conn) return;
        // What lingers until release is the Session alone (it answers a repeated Close Request).
        entry.conn = undefined;
        this.connections.delete(conn);
        this.forgetOpening(entry.openingKey, session);
        if (this.byAddress.get(entry.addressKey) === session) this.byAddress.delete(entry.addressKey);
        conn.onSessionClosed();
      },
      released: (session) => this.release(session),
      moved: (session) => {
        const entry = session.context as SessionEntry;
        if (this.byAddress.get(entry.addressKey) === session) this.byAddress.delete(entry.addressKey);
        entry.addressKey = addressKey(session.address);
        if (session.state === 'open') this.byAddress.set(entry.addressKey, session);
      },
      rescheduled: (session) => this.schedule(session),
      dropped: (_session, reason) => this.drops.add(reason),
    };
  }

  get fingerprint(): string {
    return this.identity.fingerprint.toString('hex');
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
      if (isIPv6(l.host)) this.socket6 ??= socket;
      else this.socket4 ??= socket;
      const a = socket.address();
      bound.push({ address: a.address, port: a.port });
    }
    return bound;
  }

  /** Clean shutdown: closes every session (Close Request), waits briefly, releases sockets and workers. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const conn of [...this.connections]) conn.close('Server shutting down.');
    const deadline = performance.now() + SHUTDOWN_GRACE_MS;
    while (this.sessions.size > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, TICK_MS));
      this.tick();
      if ([...this.sessions.values()].every((s) => s.state === 'closed')) break;
    }
    clearTimeout(this.timer);
    for (const s of this.sessions.values()) s.abort();
    this.sessions.clear();
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await this.pool.close();
  }

  /** The open NetConnections (connecting or connected), e.g. to send them elsewhere. */
  openConnections(): TCServerConnection[] {
    return [...this.connections];
  }

  stats(): NodeStats {
    return {
      sessions: this.sessions.size,
      connections: this.connections.size,
      opening: this.pendingHandshakes,
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
    this.sent++;
    this.bytesSent += datagram.length;
    socket?.send(datagram, to.port, to.address);
  }

  private onDatagram(msg: Buffer, from: Address): void {
    this.received++;
    this.bytesReceived += msg.length;
    const droppedBefore = this.drops.total;
    try {
      if (msg.length < MIN_DATAGRAM) {
        this.drops.add('short');
        return;
      }
      const now = performance.now();
      const sessionId = readSessionId(msg);
      if (sessionId === 0) {
        this.onStartup(msg, from, now);
        return;
      }
      const session = this.sessions.get(sessionId);
      if (!session) {
        this.drops.add('unknown-session');
        return;
      }
      session.receive(msg, from, now);
      const entry = session.context as SessionEntry;
      if (entry.opening) this.established(entry, entry.opening);
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

  private onStartup(msg: Buffer, from: Address, now: number): void {
    const result = this.responder.onStartup(msg, from, now);
    switch (result.kind) {
      case 'hello':
        this.onIHello(result.tag, result.uri, from, now);
        return;
      case 'reply':
        this.send(result.datagram, from);
        return;
      case 'drop':
        this.drops.add(result.reason);
        return;
      case 'rendezvous':
        this.drops.add('unknown-peer'); // P2P introduction comes with rendezvous support
        return;
      case 'keying':
        this.onIIKeying(result.initiatorSessionId, result.job, from);
        return;
    }
  }

  /** RHello, unless the app's onHandshake sends the client elsewhere (RFC 7016 §2.3.5 Redirect). */
  private onIHello(tag: Buffer, uri: string, from: Address, now: number): void {
    this.hellos++;
    const decision = this.options.handshake?.(
      { from, uri, attempts: this.countAttempt(tag), tag: tag.toString('hex') },
      now,
    );
    if (!decision) {
      this.send(this.responder.rHello(tag, from, now), from);
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
      this.send(this.responder.rHello(tag, from, now), from);
      return;
    }
    try {
      const relays = addresses.map((a) => ({ ...a, origin: AddressOrigin.relay }));
      this.send(this.responder.redirect(tag, relays, now), from);
      this.redirects++;
    } catch (err) {
      // RFC 7016 §2.1.5 carries IP addresses only: the client is answered here instead.
      this.log.error({ err, from: formatAddress(from) }, 'could not write the redirect; answering here');
      this.answerHello(tag, from, undefined, now);
    }
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

  /**
   * Only an IIKeying repeating the SKIC of the one that opened (address, ISID) is a
   * retransmission (RFC 7016 §3.5.1.3; rtmfp-cpp's `tryRIKeyingRetransmit`). Anything else is a
   * new session: initiators hand out session IDs again (rtmfp-cpp's are list slots, so a
   * restarted client on a reused port repeats address and ISID; RTMFP-NOTES pitfall 29).
   */
  private onIIKeying(initiatorSessionId: number, job: KeyingJob, from: Address): void {
    const key = `${addressKey(from)}|${initiatorSessionId}`;
    const opening = this.openings.get(key);
    const digest = skicDigest(job.skic);
    if (opening?.skicDigest.equals(digest)) {
      if (opening.established) this.drops.add('iikeying-late');
      // RFC 7016 §3.5.1.3: a retransmitted IIKeying gets the same RIKeying, without a new DH.
      else if (opening.riKeying) this.send(opening.riKeying, from);
      return;
    }
    const entry: Opening = {
      skicDigest: digest,
      session: undefined,
      riKeying: undefined,
      established: false,
    };
    const keyedFrom = performance.now();
    const accepted = this.pool.submit(job, (result) => {
      this.pendingHandshakes--;
      if (this.openings.get(key) !== entry) {
        // A newer IIKeying from the same address and ISID took over while this one was keyed.
        this.drops.add('iikeying-superseded');
        return;
      }
      if (result instanceof Error) {
        this.openings.delete(key);
        this.drops.add('keying-failed');
        this.log.debug({ err: result.message, from: formatAddress(from) }, 'handshake failed');
        return;
      }
      try {
        this.openSession(entry, key, initiatorSessionId, result, from);
        this.options.handshakes?.opened((performance.now() - keyedFrom) / 1000);
      } catch (e) {
        // A fault here fails this handshake, not the node (the pool calls back from a promise).
        this.openings.delete(key);
        this.drops.add('keying-failed');
        this.log.error({ err: e, from: formatAddress(from) }, 'opening a keyed session failed');
      }
    });
    if (!accepted) {
      this.drops.add('handshake-queue-full');
      return;
    }
    this.pendingHandshakes++;
    this.keyings++;
    this.openings.set(key, entry);
  }

  private openSession(
    entry: Opening,
    key: string,
    initiatorSessionId: number,
    k: KeyingResult,
    from: Address,
  ): void {
    const now = performance.now();
    const where = addressKey(from);
    // The endpoint at this address started over: its old session is stale (rtmfp-cpp's
    // responder aborts it too, `RTMFP::onIIKeying`). The cookie echo proved the address.
    this.byAddress.get(where)?.abort();
    const localId = this.allocateSessionId();
    const session = new Session({
      role: 'responder',
      localId,
      remoteId: initiatorSessionId,
      address: from,
      cipher: new PacketCipher({
        encryptKey: k.encryptKey,
        decryptKey: k.decryptKey,
        sendHmac: k.sendHmac,
        recvHmac: k.recvHmac,
        sendSseq: k.sendSseq,
        recvSseq: k.recvSseq,
      }),
      hooks: this.hooks,
      now,
      config: this.options.session ?? DEFAULT_SESSION_CONFIG,
    });
    const conn = new TCServerConnection(session, k.peerId, this.options.handler);
    session.context = { conn, openingKey: key, addressKey: where, opening: entry } satisfies SessionEntry;
    this.sessions.set(localId, session);
    this.byAddress.set(where, session);
    this.schedule(session);
    this.connections.add(conn);
    entry.session = session;
    entry.riKeying = this.responder.riKeying(initiatorSessionId, localId, k.skrc, now);
    this.handshakes++;
    this.send(entry.riKeying, from);
  }

  /**
   * The initiator sent in its session, so it has its RIKeying: a retransmitted IIKeying can only
   * be a stale duplicate now. What answered one (~1 kB in DH 16) is let go.
   */
  private established(entry: SessionEntry, opening: Opening): void {
    entry.opening = undefined;
    opening.established = true;
    opening.riKeying = undefined;
  }

  private allocateSessionId(): number {
    for (;;) {
      const id = randomInt(1, 0xffffffff);
      if (!this.sessions.has(id)) return id;
    }
  }

  private release(session: Session): void {
    const entry = session.context as SessionEntry;
    this.sessions.delete(session.localId);
    this.deadlines.remove(session);
    this.forgetOpening(entry.openingKey, session);
  }

  /** Forgets how `session` opened, unless a newer handshake from the same peer uses the key now. */
  private forgetOpening(key: string, session: Session): void {
    if (this.openings.get(key)?.session === session) this.openings.delete(key);
  }

  private wake(session: Session): void {
    this.wakeups.add(session);
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      const now = performance.now();
      for (const s of this.wakeups) s.flush(now);
      this.wakeups.clear();
    });
  }

  /** Files `session` by its deadline and makes sure a tick runs by then. */
  private schedule(session: Session): void {
    this.deadlines.file(session, session.deadline);
    this.armTimer();
  }

  /**
   * Sets the timer for the earliest deadline (a TICK_MS boundary). A wake-up of an idle process
   * costs far more than the tick's work: a fixed 20 ms interval cost ~0.2 ms of CPU per session
   * in the session benchmark (section a), with nothing due.
   */
  private armTimer(): void {
    const at = this.deadlines.next();
    if (this.stopped || at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.tick(), Math.max(0, at - performance.now()));
    this.timer.unref();
  }

  /** Services the sessions that are due, then sleeps until the earliest deadline. */
  private tick(): void {
    clearTimeout(this.timer);
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    for (const s of this.deadlines.takeDue(now)) {
      if (this.sessions.get(s.localId) !== s) continue;
      if (s.deadline <= now) s.service(now);
      // Filed again by its deadline now, unless service released it.
      if (this.sessions.get(s.localId) === s) this.deadlines.file(s, s.deadline);
    }
    this.armTimer();
  }
}
