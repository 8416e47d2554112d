import { hash, randomInt } from 'node:crypto';
import { type Address, addressKey, type OriginAddress } from './address.ts';
import type { AesEngine } from './aes-engine.ts';
import type { EPD } from './certificate.ts';
import type { ForwardedIHello } from './chunks.ts';
import { CookieJar } from './cookie.ts';
import { DeadlineSlots } from './deadline-slots.ts';
import {
  type KeyingAdapter,
  type KeyingJob,
  type KeyingResult,
  makeServerIdentity,
  Responder,
  type ServerIdentity,
} from './handshake.ts';
import { Opening, type OpenOptions } from './opening.ts';
import { PacketCipher, readSessionId } from './packet-crypto.ts';
import type { RecvFlow } from './recv-flow.ts';
import {
  type CloseReason,
  DEFAULT_SESSION_CONFIG,
  Session,
  type SessionConfig,
  type SessionHooks,
} from './session.ts';

/** Smallest datagram: scrambled session ID + one AES block (RFC 7425 §4.2). */
const MIN_DATAGRAM = 20;
/**
 * Granularity of deadlines: the host is asked to run `service` at the next multiple of this
 * after the earliest one, so deadlines close together share one wake-up.
 */
export const TICK_MS = 20;

/** What the endpoint needs from the host that drives it: the wire, the clock's wake-ups, crypto. */
export interface EndpointPlatform {
  /** Put a datagram on the wire. */
  send(datagram: Buffer, to: Address): void;
  /** `nextDeadline()` may have moved earlier: run `service` by then. */
  rescheduled(): void;
  /** Sessions have data queued outside receive/service: run `flush` soon (e.g. setImmediate). */
  wake(): void;
  keying: KeyingAdapter;
  /** A session ID candidate, 1 … 2^32−1 (default: crypto randomInt). */
  randomSessionId?(): number;
}

/** How a session came to be, as `opened` tells. */
export type Opened =
  | {
      role: 'responder';
      peerId: string;
      keyingMs: number;
      /**
       * Our opening to the same peer that lost the glare to this session (RFC 7016 §3.5.1.3,
       * `nearWinsGlare`): cancelled, and this session is the one it was opening.
       */
      replaces?: Opening;
    }
  | { role: 'initiator'; opening: Opening; farFingerprint: Buffer };

/** What the endpoint tells the host. Called synchronously. */
export interface EndpointEvents {
  /**
   * An IHello for this endpoint: answer with `rHello` or `redirect` (now or later; copy the tag
   * to keep it). Absent: the endpoint accepts no sessions and drops IHellos ('not-accepting').
   */
  hello?(tag: Buffer, uri: string, from: Address, now: number): void;
  /** An IHello naming another peer (RFC 7425 §4.4). Absent: dropped as 'unknown-peer'. */
  rendezvous?(epd: EPD, tag: Buffer, from: Address, now: number): void;
  /**
   * A server we have a session with relayed an IHello naming us (RFC 7016 §3.5.1.5): answer
   * with `rHello(hello.tag, hello.replyAddress)` to let the initiator open a session to us.
   * Absent: dropped as 'forwarded-ihello'.
   */
  forwardedHello?(session: Session, hello: ForwardedIHello, now: number): void;
  /** A session opened, either way. */
  opened(session: Session, how: Opened, now: number): void;
  /** The peer opened a flow; set `flow.onMessage` or `flow.reject(code)`. */
  flow(session: Session, flow: RecvFlow): void;
  /** The session is over for its users (once). */
  closed?(session: Session, reason: CloseReason): void;
  /** The session left the table. */
  released?(session: Session): void;
  /** A datagram, or part of one, was refused: counted by `reason` (a failed keying says why). */
  dropped(reason: string, failure?: { from: Address; err: Error }): void;
  /** Opening a keyed session threw (a bug, not the peer's doing): the handshake failed. */
  fault?(err: unknown, from: Address): void;
}

export interface EndpointOptions {
  platform: EndpointPlatform;
  events: EndpointEvents;
  /** Our certificate as responder (default: a fresh one). */
  identity?: ServerIdentity;
  session?: SessionConfig;
  /**
   * Encrypts and decrypts the sessions' packets in place (PacketCipherOptions.aes): then every
   * datagram `platform.send` gets is good only during that call.
   */
  aes?: AesEngine;
}

/** One handshake we answered, by address + initiator session ID, while keying and while its session lives. */
interface Accepting {
  /**
   * SHA-256 of the SKIC that opened it: a retransmission repeats the SKIC (its DH key or extra
   * randomness makes every handshake's differ), and 32 bytes outlive the ~0.5 kB SKIC.
   */
  skicDigest: Buffer;
  session: EndpointSession | undefined;
  /** Sent again for a retransmitted IIKeying; let go once the initiator uses the session. */
  riKeying: Buffer | undefined;
  /** The initiator has sent in the session: a repeat of its IIKeying is a stale duplicate. */
  established: boolean;
}

/**
 * Glare: two endpoints each opening a session to the other at once (RFC 7016 §3.5.1.3, an
 * IIKeying from the peer we are opening to). The Flash profile settles it by the certificates
 * (RFC 7425 §4.3.6): the near end prevails unless the far's sorts before its own, byte by byte —
 * rtmfp-cpp's `FlashCryptoAdapter::checkNearWinsGlare` (`not (far < near)`), so both ends agree
 * and exactly one session opens. `near` is the certificate our IIKeying carries.
 */
export function nearWinsGlare(near: Buffer, far: Buffer): boolean {
  return Buffer.compare(far, near) >= 0;
}

/** A session with what the endpoint keeps on it (`context` stays the host's). */
class EndpointSession extends Session {
  /** Key in `accepting` of a session we answered; '' for one we opened. */
  acceptKey = '';
  /** In the endpoint's `wakeups`, waiting for its `flush`. */
  queuedForFlush = false;
  /** `addressKey` of a session we answered, for `byAddress`. */
  addressKey = '';
  /** How it opened, until the initiator's first packet in the session shows it has its RIKeying. */
  accepting: Accepting | undefined;
}

/**
 * One RTMFP endpoint (RFC 7016 §3.5): the session table, demultiplexing by session ID, the
 * startup exchange both ways (answering IHellos and IIKeyings, opening sessions to others) and
 * every session's deadline. Pure, like rtmfp-cpp's `RTMFP` behind its platform adapter: bytes,
 * address and time come in; datagrams leave through `platform.send`, events through `events`,
 * and `nextDeadline()` says when `service` is due. Sockets, timers and crypto threads are the
 * host's.
 */
export class Endpoint {
  readonly identity: ServerIdentity;
  readonly sessions = new Map<number, Session>();
  /** IIKeyings taken to be keyed (not retransmissions), those being keyed, sessions answered. */
  keyings = 0;
  beingKeyed = 0;
  accepted = 0;
  private readonly platform: EndpointPlatform;
  private readonly events: EndpointEvents;
  private readonly responder: Responder;
  private readonly config: SessionConfig;
  private readonly aes: AesEngine | undefined;
  private readonly random: () => number;
  /** Sessions being opened as initiator, by our session ID (RIKeying and Cookie Change carry it). */
  private readonly openings = new Map<number, Opening>();
  private readonly accepting = new Map<string, Accepting>();
  /** Open sessions we answered, by the peer's address: a new one from an address replaces it. */
  private readonly byAddress = new Map<string, EndpointSession>();
  /** Sessions and openings by when they are next due: `service` visits only those. */
  private readonly deadlines = new DeadlineSlots<EndpointSession | Opening>(TICK_MS);
  /**
   * Sessions that asked for a flush, each once (`queuedForFlush`). An array, not a Set: a Set's
   * clear() drops its table, and refilling it with a hundred sessions every turn reallocated it
   * half a dozen times, garbage that outlived the young generation.
   */
  private readonly wakeups: EndpointSession[] = [];
  /** The latest `now` handed in: the clock of writes one session's packet makes on others. */
  private latestNow = 0;
  private readonly clock = (): number => this.latestNow;
  private readonly hooks: SessionHooks;

  constructor(o: EndpointOptions) {
    this.platform = o.platform;
    this.events = o.events;
    this.identity = o.identity ?? makeServerIdentity();
    this.responder = new Responder(this.identity, new CookieJar());
    this.config = o.session ?? DEFAULT_SESSION_CONFIG;
    this.aes = o.aes;
    this.random = o.platform.randomSessionId?.bind(o.platform) ?? (() => randomInt(1, 0xffffffff));
    this.hooks = {
      send: (datagram: Buffer, to: Address) => this.platform.send(datagram, to),
      wake: (session: Session) => {
        const s = session as EndpointSession;
        if (s.queuedForFlush) return;
        if (this.wakeups.length === 0) this.platform.wake();
        s.queuedForFlush = true;
        this.wakeups.push(s);
      },
      flow: (session: Session, flow: RecvFlow) => this.events.flow(session, flow),
      closed: (session: Session, reason: CloseReason) => {
        const s = session as EndpointSession;
        this.forgetAccepting(s);
        if (this.byAddress.get(s.addressKey) === s) this.byAddress.delete(s.addressKey);
        this.events.closed?.(session, reason);
      },
      released: (session: Session) => {
        const s = session as EndpointSession;
        this.sessions.delete(s.localId);
        this.deadlines.remove(s);
        this.forgetAccepting(s);
        this.events.released?.(session);
      },
      moved: (session: Session) => {
        const s = session as EndpointSession;
        if (!s.acceptKey) return;
        if (this.byAddress.get(s.addressKey) === s) this.byAddress.delete(s.addressKey);
        s.addressKey = addressKey(s.address);
        if (s.state === 'open') this.byAddress.set(s.addressKey, s);
      },
      rescheduled: (session: Session) => this.schedule(session as EndpointSession),
      dropped: (_session: Session, reason: string) => this.events.dropped(reason),
      forwardedHello: (session: Session, hello: ForwardedIHello, now: number) => {
        if (this.events.forwardedHello) this.events.forwardedHello(session, hello, now);
        else this.events.dropped('forwarded-ihello');
      },
    };
  }

  /**
   * One datagram from `from`. Throws ProtocolError for what does not decrypt or breaks the
   * protocol (the host drops and counts it); other refusals go to `events.dropped`.
   */
  receive(datagram: Buffer, from: Address, now: number): void {
    this.advance(now);
    if (datagram.length < MIN_DATAGRAM) {
      this.events.dropped('short');
      return;
    }
    const sessionId = readSessionId(datagram);
    if (sessionId === 0) {
      this.onStartup(datagram, from, now);
      return;
    }
    const session = this.sessions.get(sessionId) as EndpointSession | undefined;
    if (session) {
      session.receive(datagram, from, now);
      if (session.accepting) this.established(session, session.accepting);
      return;
    }
    const opening = this.openings.get(sessionId);
    if (opening) this.onOpeningStep(opening, datagram, from, now);
    else this.events.dropped('unknown-session');
  }

  /** Opens a session to `o.targets` as initiator; `events.opened` tells when it is up. */
  open(o: OpenOptions, now: number): Opening {
    this.advance(now);
    const localId = o.localId ?? this.allocateSessionId();
    if (this.sessions.has(localId) || this.openings.has(localId))
      throw new RangeError(`session ID ${localId} is in use on this endpoint`);
    const opening = new Opening(o, localId);
    this.openings.set(localId, opening);
    this.sendStartup(opening, now);
    return opening;
  }

  /** Stops opening (e.g. the host gave up waiting). */
  cancel(opening: Opening): void {
    if (this.openings.get(opening.localId) !== opening) return;
    this.openings.delete(opening.localId);
    this.deadlines.remove(opening);
  }

  /** RFC 7016 §2.3.4: answer an IHello here, with a cookie and our certificate. */
  rHello(tag: Buffer, to: Address, now: number): void {
    this.platform.send(this.responder.rHello(tag, to, now), to);
  }

  /** RFC 7016 §2.3.5: send the initiator to other addresses. Throws for a non-IP address. */
  redirect(tag: Buffer, to: Address, addresses: OriginAddress[], now: number): void {
    this.platform.send(this.responder.redirect(tag, addresses, now), to);
  }

  /** When `service` is next due (a TICK_MS boundary), or Infinity. */
  nextDeadline(): number {
    return this.deadlines.next();
  }

  /** Services the sessions and openings that are due. */
  service(now: number): void {
    this.advance(now);
    for (const item of this.deadlines.takeDue(now)) {
      if (item instanceof Opening) {
        if (this.openings.get(item.localId) !== item) continue;
        if (item.deadline <= now) this.sendStartup(item, now);
        else this.deadlines.file(item, item.deadline);
        continue;
      }
      if (this.sessions.get(item.localId) !== item) continue;
      if (item.deadline <= now) item.service(now);
      // Filed again by its deadline now, unless service released it.
      if (this.sessions.get(item.localId) === item) this.deadlines.file(item, item.deadline);
    }
  }

  /** Sends what sessions queued outside receive/service (after `platform.wake`). */
  flush(now: number): void {
    this.advance(now);
    // Sessions queued while this runs are flushed too; one already queued is not queued again.
    for (let i = 0; i < this.wakeups.length; i++) this.wakeups[i].flush(now);
    for (const s of this.wakeups) s.queuedForFlush = false;
    this.wakeups.length = 0;
  }

  /** Ends every session at once (telling no one) and every opening. */
  abortAll(): void {
    for (const o of this.openings.values()) this.cancel(o);
    for (const s of this.sessions.values()) s.abort();
    this.sessions.clear();
  }

  private onStartup(datagram: Buffer, from: Address, now: number): void {
    const result = this.responder.onStartup(datagram, from, now);
    switch (result.kind) {
      case 'hello':
        if (this.events.hello) this.events.hello(result.tag, result.uri, from, now);
        else this.events.dropped('not-accepting');
        return;
      case 'reply':
        this.platform.send(result.datagram, from);
        return;
      case 'drop':
        // RHello and Redirect (session ID 0) answer an opening of ours, found by its tag.
        if (result.reason === 'unexpected-startup-chunk' && this.openings.size > 0) {
          for (const opening of this.openings.values())
            if (this.onOpeningStep(opening, datagram, from, now)) return;
        }
        this.events.dropped(result.reason);
        return;
      case 'rendezvous':
        if (this.events.rendezvous) this.events.rendezvous(result.epd, result.tag, from, now);
        else this.events.dropped('unknown-peer');
        return;
      case 'keying':
        this.onIIKeying(result.initiatorSessionId, result.job, from, now);
        return;
    }
  }

  /** A startup datagram for `opening`; false when it is not (another opening's tag). */
  private onOpeningStep(opening: Opening, datagram: Buffer, from: Address, now: number): boolean {
    const step = opening.onStartup(datagram, from, now);
    switch (step.kind) {
      case 'not-mine':
        return false;
      case 'taken':
        return true;
      case 'drop':
        this.events.dropped(`opening-${step.reason}`);
        return true;
      case 'resend':
        this.sendStartup(opening, now);
        return true;
      case 'established': {
        this.cancel(opening);
        const cipher = new PacketCipher({ ...step.cipher, aes: this.aes });
        const session = this.newSession('initiator', step.localId, step.remoteId, from, cipher, now);
        const how: Opened = { role: 'initiator', opening, farFingerprint: step.serverFingerprint };
        this.events.opened(session, how, now);
        session.flush(now);
        this.schedule(session);
        return true;
      }
    }
  }

  private sendStartup(opening: Opening, now: number): void {
    opening.resend(now, this.hooks.send);
    this.deadlines.file(opening, opening.deadline);
    this.platform.rescheduled();
  }

  /**
   * Only an IIKeying repeating the SKIC of the one that opened (address, ISID) is a
   * retransmission (RFC 7016 §3.5.1.3; rtmfp-cpp's `tryRIKeyingRetransmit`). Anything else is a
   * new session: initiators hand out session IDs again (rtmfp-cpp's are list slots, so a
   * restarted client on a reused port repeats address and ISID; RTMFP-NOTES pitfall 29).
   */
  private onIIKeying(initiatorSessionId: number, job: KeyingJob, from: Address, now: number): void {
    const key = `${addressKey(from)}|${initiatorSessionId}`;
    const previous = this.accepting.get(key);
    const digest = hash('sha256', job.skic, 'buffer');
    if (previous?.skicDigest.equals(digest)) {
      if (previous.established) this.events.dropped('iikeying-late');
      // RFC 7016 §3.5.1.3: a retransmitted IIKeying gets the same RIKeying, without a new DH.
      else if (previous.riKeying) this.platform.send(previous.riKeying, from);
      return;
    }
    const entry: Accepting = {
      skicDigest: digest,
      session: undefined,
      riKeying: undefined,
      established: false,
    };
    const keyedFrom = now;
    // Set before keying: an inline adapter calls back at once.
    this.accepting.set(key, entry);
    this.beingKeyed++;
    const taken = this.platform.keying(job, now, (result, doneAt) => {
      this.beingKeyed--;
      if (this.accepting.get(key) !== entry) {
        // A newer IIKeying from the same address and ISID took over while this one was keyed.
        this.events.dropped('iikeying-superseded');
        return;
      }
      if (result instanceof Error) {
        this.accepting.delete(key);
        this.events.dropped('keying-failed', { from, err: result });
        return;
      }
      const glare = this.openingTo(result.peerId);
      if (glare && nearWinsGlare(glare.certificate, job.certificate)) {
        // Our own opening to this peer goes on: the peer gives up its opening when our IIKeying
        // reaches it, and answers it.
        this.accepting.delete(key);
        this.events.dropped('iikeying-glare');
        return;
      }
      try {
        this.accept(entry, key, initiatorSessionId, result, from, doneAt, doneAt - keyedFrom, glare);
      } catch (e) {
        // A fault here fails this handshake, not the endpoint (a pool calls back from a promise).
        this.accepting.delete(key);
        entry.session?.abort();
        this.events.dropped('keying-failed');
        this.events.fault?.(e, from);
      }
    });
    if (!taken) {
      this.beingKeyed--;
      if (previous) this.accepting.set(key, previous);
      else this.accepting.delete(key);
      this.events.dropped('handshake-queue-full');
      return;
    }
    this.keyings++;
  }

  private accept(
    entry: Accepting,
    key: string,
    initiatorSessionId: number,
    k: KeyingResult,
    from: Address,
    now: number,
    keyingMs: number,
    replaces: Opening | undefined,
  ): void {
    const where = addressKey(from);
    // The endpoint at this address started over: its old session is stale (rtmfp-cpp's
    // responder aborts it too, `RTMFP::onIIKeying`). The cookie echo proved the address.
    this.byAddress.get(where)?.abort();
    const localId = this.allocateSessionId();
    const cipher = new PacketCipher({
      encryptKey: k.encryptKey,
      decryptKey: k.decryptKey,
      sendHmac: k.sendHmac,
      recvHmac: k.recvHmac,
      sendSseq: k.sendSseq,
      recvSseq: k.recvSseq,
      aes: this.aes,
    });
    const session = this.newSession('responder', localId, initiatorSessionId, from, cipher, now);
    session.acceptKey = key;
    session.addressKey = where;
    session.accepting = entry;
    this.byAddress.set(where, session);
    this.schedule(session);
    entry.session = session;
    entry.riKeying = this.responder.riKeying(initiatorSessionId, localId, k.skrc, now);
    this.accepted++;
    if (replaces) this.cancel(replaces);
    this.events.opened(session, { role: 'responder', peerId: k.peerId, keyingMs, replaces }, now);
    this.platform.send(entry.riKeying, from);
  }

  private advance(now: number): void {
    if (now > this.latestNow) this.latestNow = now;
  }

  private newSession(
    role: 'initiator' | 'responder',
    localId: number,
    remoteId: number,
    address: Address,
    cipher: PacketCipher,
    now: number,
  ): EndpointSession {
    const session = new EndpointSession({
      role,
      localId,
      remoteId,
      address,
      cipher,
      hooks: this.hooks,
      now,
      config: this.config,
      clock: this.clock,
    });
    this.sessions.set(localId, session);
    return session;
  }

  /**
   * The initiator sent in its session, so it has its RIKeying: a retransmitted IIKeying can only
   * be a stale duplicate now. What answered one (~1 kB in DH 16) is let go.
   */
  private established(session: EndpointSession, entry: Accepting): void {
    session.accepting = undefined;
    entry.established = true;
    entry.riKeying = undefined;
  }

  /** Forgets how `session` opened, unless a newer handshake from the same peer uses the key now. */
  private forgetAccepting(session: EndpointSession): void {
    if (session.acceptKey && this.accepting.get(session.acceptKey)?.session === session)
      this.accepting.delete(session.acceptKey);
  }

  /** Our opening to the peer `peerId` (hex), if one is under way. */
  private openingTo(peerId: string): Opening | undefined {
    for (const opening of this.openings.values()) if (opening.farPeerId === peerId) return opening;
    return undefined;
  }

  private allocateSessionId(): number {
    for (;;) {
      const id = this.random();
      if (!this.sessions.has(id) && !this.openings.has(id)) return id;
    }
  }

  /** Files `session` by its deadline and tells the host, which makes sure `service` runs by then. */
  private schedule(session: EndpointSession): void {
    this.deadlines.file(session, session.deadline);
    this.platform.rescheduled();
  }
}
