import type { Logger } from 'pino';
import type { ForwardHelloRequest } from '../cluster/forward-hello.ts';
import type { P2pStore, PeerRecord } from '../cluster/p2p.ts';
import { errorText } from '../error-text.ts';
import {
  type Address,
  AddressOrigin,
  addressKey,
  formatAddress,
  type OriginAddress,
  parseAddress,
} from '../rtmfp/address.ts';
import { type EPD, makeEPD } from '../rtmfp/certificate.ts';
import { forwardedIHello, introduce, type RendezvousPeer, redirectAddresses } from '../rtmfp/rendezvous.ts';
import type { TCServerConnection } from '../rtmfp/tc-server.ts';

/**
 * Store lookups one source (IP and port: one endpoint) may cause per second for peers not on
 * this node. A repeated IHello (same tag: a retry, or the one an initiator sends the server
 * again after its Redirect) reuses its lookup and counts once, so a real initiator needs one
 * per peer it opens to — a NetGroup joiner opens to its 6 introduced members at once, and more
 * as members arrive. A flood of IHellos for random peer IDs from one socket costs at most this
 * many round trips a second. (At 10, a busy initiator's retries were refused, and each refusal
 * cost it a 500 ms IHello retransmission: bench r went from ~0.6 ms more across nodes to ~7 ms.)
 */
export const RENDEZVOUS_LOOKUPS_PER_SOURCE = 30;
/**
 * The same for one IP whatever its ports: a host flooding from many sockets. High, because
 * many real clients share one public IP behind a NAT (and every test client shares 127.0.0.1).
 */
export const RENDEZVOUS_LOOKUPS_PER_IP = 1_000;
/** Sources tracked for those bounds in one second; past it, lookups wait for the next second. */
const MAX_TRACKED_SOURCES = 10_000;
const WINDOW_MS = 1_000;
/** How long an IHello's lookup answers the repeats of its tag (Flash retries every ~1.5 s). */
const TAG_LOOKUP_MS = 3_000;
/** Tags whose lookups are kept; the oldest go first. */
const MAX_TRACKED_TAGS = 10_000;

/** The cluster as the rendezvous needs it (runtime/host/cluster-node.ts wires it). */
export interface PeerDirectory {
  /** This node's ID ('' until the cluster started: peers are registered once it is known). */
  nodeId(): string;
  p2p: P2pStore;
  /** Whether node `id` is in the live set: a peer of a dead node is never introduced. */
  live(id: string): boolean;
  /** Asks node `to` to send the Forwarded IHello to its client. */
  forward(to: string, request: ForwardHelloRequest): Promise<boolean>;
  /** The apps' onRendezVousUnknown: addresses to redirect the initiator at `from` to, or none. */
  unknown?(peerId: string, from: Address): Promise<Address[] | undefined>;
}

export interface RendezvousOptions {
  log: Logger;
  /** Absent: this node introduces its own clients only. */
  directory?: PeerDirectory;
  /** Sends a Redirect (RFC 7016 §2.3.5) to the initiator, unless the node stopped meanwhile. */
  redirect(tag: Buffer, to: Address, addresses: OriginAddress[]): void;
}

/** Counters, for tests and /metrics. */
export interface RendezvousStats {
  /** Introductions of a client of this node. */
  local: number;
  /** Introductions of another node's client (Redirect here, Forwarded IHello there). */
  remote: number;
  /** Forwarded IHellos sent for another node. */
  forwarded: number;
  /** Store lookups for peers not on this node. */
  lookups: number;
  /** IHellos for peers found nowhere (or on a dead node). */
  unknown: number;
  /** IHellos not looked up: over the per-source bound. */
  limited: number;
}

/**
 * The rendezvous (RTMFP-NOTES §6): this node's connected clients by peer ID, mirrored in the
 * cluster store (`state.p2p`) so an IHello naming a peer at any node finds it. A client of
 * this node is introduced at once; another node's costs one store lookup, then this node
 * answers the initiator and asks that node to forward the IHello.
 */
export class Rendezvous {
  readonly stats: RendezvousStats = { local: 0, remote: 0, forwarded: 0, lookups: 0, unknown: 0, limited: 0 };
  private readonly o: RendezvousOptions;
  private readonly peers = new Map<string, TCServerConnection>();
  /** The same clients by the address their session had when it opened (`addressKey`). */
  private readonly byAddress = new Map<string, TCServerConnection>();
  /** Lookups in this second by `addressKey` of the source, and by its IP. */
  private readonly lookupsBySource = new Map<string, number>();
  private readonly lookupsByIp = new Map<string, number>();
  private windowStart = 0;
  /** Recent lookups by the IHello tag (hex) that caused them, in the order they were made. */
  private readonly lookupsByTag = new Map<
    string,
    { until: number; record: Promise<PeerRecord | undefined> }
  >();

  constructor(o: RendezvousOptions) {
    this.o = o;
  }

  /** A client's session opened: it can be introduced from now on. */
  add(conn: TCServerConnection): void {
    this.peers.set(conn.peerId, conn);
    this.byAddress.set(addressKey(conn.session.address), conn);
    this.publish(conn);
  }

  /** The client reported its LAN addresses again (setPeerInfo). */
  update(conn: TCServerConnection): void {
    if (this.peers.get(conn.peerId) === conn) this.publish(conn);
  }

  /** The client's session closed. A newer session of the same peer stays. */
  remove(conn: TCServerConnection): void {
    if (this.peers.get(conn.peerId) !== conn) return;
    this.peers.delete(conn.peerId);
    const where = addressKey(conn.session.address);
    if (this.byAddress.get(where) === conn) this.byAddress.delete(where);
    const d = this.o.directory;
    const node = d?.nodeId();
    if (!d || !node) return;
    d.p2p.removePeer(conn.peerId, node).catch((err: unknown) => {
      this.o.log.warn({ peerId: conn.peerId, err: errorText(err) }, 'could not remove a peer from the store');
    });
  }

  /** Registers every client again (after the store came back, or once the node ID is known). */
  reassert(): void {
    for (const conn of this.peers.values()) this.publish(conn);
  }

  /**
   * An IHello at `from` naming a peer (RFC 7425 §4.4). `attempt`: IHellos with this tag seen
   * before (0 for the first).
   */
  hello(epd: EPD, tag: Buffer, from: Address, attempt: number, now: number): void {
    const peerId = epd.fingerprint!.toString('hex');
    const local = this.peers.get(peerId);
    if (local) {
      this.introduceLocal(local, epd.fingerprint!, tag, from, attempt);
      return;
    }
    const d = this.o.directory;
    if (!d) return;
    const record = this.lookup(d, peerId, tag, from, now);
    if (!record) return;
    const copy = Buffer.from(tag);
    record.then(
      (r) => this.introduceRemote(d, peerId, r, copy, from, attempt),
      (err: unknown) =>
        this.o.log.warn({ peerId, err: errorText(err) }, 'rendezvous lookup failed; IHello unanswered'),
    );
  }

  /**
   * The store's record of `peerId`: the lookup a recent IHello with this tag made, else a new
   * one if `from` is within its bounds (undefined when it is not).
   */
  private lookup(
    d: PeerDirectory,
    peerId: string,
    tag: Buffer,
    from: Address,
    now: number,
  ): Promise<PeerRecord | undefined> | undefined {
    const key = `${tag.toString('hex')}|${peerId}`;
    const recent = this.lookupsByTag.get(key);
    if (recent && recent.until > now) return recent.record;
    if (!this.allowLookup(from, now)) return undefined;
    this.stats.lookups++;
    const record = d.p2p.peer(peerId);
    // A failed lookup is not kept: the next retry asks again.
    record.catch(() => this.lookupsByTag.delete(key));
    this.lookupsByTag.delete(key);
    this.lookupsByTag.set(key, { until: now + TAG_LOOKUP_MS, record });
    if (this.lookupsByTag.size > MAX_TRACKED_TAGS)
      this.lookupsByTag.delete(this.lookupsByTag.keys().next().value!);
    return record;
  }

  /** Another node asks us to forward an IHello to our client `request.target`. */
  forward(fromNode: string, request: ForwardHelloRequest): void {
    const conn = this.peers.get(request.target);
    const initiator = parseAddress(request.address);
    if (!conn || !initiator) {
      this.o.log.debug({ fromNode, target: request.target }, 'forward-hello for a peer not here');
      return;
    }
    // The same reply address a single node would pick: both nodes count attempts alike.
    conn.session.forwardIHello(
      forwardedIHello({
        tag: Buffer.from(request.tag, 'hex'),
        attempt: request.attempt,
        initiator: { observed: initiator, reported: parseAddresses(request.reported) },
        targetPeerId: Buffer.from(request.target, 'hex'),
        target: peerOf(conn),
      }),
    );
    this.stats.forwarded++;
  }

  private introduceLocal(
    target: TCServerConnection,
    peerId: Buffer,
    tag: Buffer,
    from: Address,
    attempt: number,
  ) {
    const initiator = this.byAddress.get(addressKey(from));
    const introduction = introduce({
      tag,
      attempt,
      initiator: initiator ? peerOf(initiator) : { observed: from, reported: [] },
      targetPeerId: peerId,
      target: peerOf(target),
    });
    this.o.redirect(tag, from, introduction.redirect);
    target.session.forwardIHello(introduction.forwarded);
    this.stats.local++;
  }

  private async introduceRemote(
    d: PeerDirectory,
    peerId: string,
    record: PeerRecord | undefined,
    tag: Buffer,
    from: Address,
    attempt: number,
  ): Promise<void> {
    const observed = record && parseAddress(record.address);
    // Our own stale record (the client left) or a dead node's: never introduced.
    if (!record || !observed || record.node === d.nodeId() || !d.live(record.node)) {
      this.stats.unknown++;
      const addresses = await d.unknown?.(peerId, from);
      if (addresses && addresses.length > 0)
        this.o.redirect(
          tag,
          from,
          addresses.map((a) => ({ ...a, origin: AddressOrigin.relay })),
        );
      return;
    }
    this.o.redirect(
      tag,
      from,
      redirectAddresses({ observed, reported: parseAddresses(record.lan) }, attempt),
    );
    this.stats.remote++;
    const reported = this.byAddress.get(addressKey(from))?.peerAddresses ?? [];
    // The Redirect is what the initiator waits for; Node puts a datagram on the wire a tick
    // later (dgram resolves even an IP literal on process.nextTick), so sealing the request
    // (JSON, HMAC) and writing it to Redis in this tick would hold the Redirect back. The
    // target hears one turn of the event loop later, a few microseconds.
    await new Promise<void>((r) => setImmediate(r));
    const request: ForwardHelloRequest = {
      target: peerId,
      epd: makeEPD({ fingerprint: Buffer.from(peerId, 'hex') }).toString('hex'),
      tag: tag.toString('hex'),
      address: formatAddress(from),
      attempt,
      reported: reported.map(formatAddress),
    };
    await d.forward(record.node, request).catch((err: unknown) => {
      this.o.log.warn(
        { peerId, node: record.node, err: errorText(err) },
        'could not ask for a forwarded IHello',
      );
    });
  }

  private allowLookup(from: Address, now: number): boolean {
    if (now - this.windowStart >= WINDOW_MS) {
      this.windowStart = now;
      this.lookupsBySource.clear();
      this.lookupsByIp.clear();
    }
    const source = addressKey(from);
    const bySource = this.lookupsBySource.get(source) ?? 0;
    const byIp = this.lookupsByIp.get(from.address) ?? 0;
    const full = bySource === 0 && this.lookupsBySource.size >= MAX_TRACKED_SOURCES;
    if (full || bySource >= RENDEZVOUS_LOOKUPS_PER_SOURCE || byIp >= RENDEZVOUS_LOOKUPS_PER_IP) {
      this.stats.limited++;
      return false;
    }
    this.lookupsBySource.set(source, bySource + 1);
    this.lookupsByIp.set(from.address, byIp + 1);
    return true;
  }

  private publish(conn: TCServerConnection): void {
    const d = this.o.directory;
    const node = d?.nodeId();
    if (!d || !node) return;
    const record: PeerRecord = {
      node,
      address: formatAddress(conn.session.address),
      lan: conn.peerAddresses.map(formatAddress),
    };
    d.p2p.putPeer(conn.peerId, record).catch((err: unknown) => {
      this.o.log.warn({ peerId: conn.peerId, err: errorText(err) }, 'could not register a peer in the store');
    });
  }
}

function parseAddresses(texts: readonly string[]): Address[] {
  return texts.map(parseAddress).filter((a): a is Address => a !== undefined);
}

function peerOf(conn: TCServerConnection): RendezvousPeer {
  return { observed: conn.session.address, reported: conn.peerAddresses };
}
