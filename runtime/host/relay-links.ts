import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { NodeEntry } from '../cluster/state.ts';
import { errorText } from '../error-text.ts';
import { linkAddress } from '../relay/link-address.ts';
import {
  checkLinkAcceptance,
  type LinkRequest,
  linkRequestValue,
  RELAY_APP,
  signLinkRequest,
} from '../relay/link-credential.ts';
import { LINK_IDLE_MS, LinkTable, linkable } from '../relay/link-table.ts';
import { type Address, formatAddress } from '../rtmfp/address.ts';
import type { AmfObject, AmfValue } from '../rtmfp/amf-value.ts';
import type { WakeAt } from '../rtmfp/flow-sync.ts';
import type { Session } from '../rtmfp/session.ts';
import { TCClientConnection } from '../rtmfp/tc-client.ts';
import type { OutgoingEvents, OutgoingOpening } from './node.ts';

/** A link not up (session open, connect accepted) by then is given up. */
const LINK_OPEN_TIMEOUT_MS = 10_000;

/** Why a link could not be used or ended; `reason` is what is counted. */
export class RelayLinkError extends Error {
  readonly reason: string;

  constructor(reason: string, message: string) {
    super(`relay link: ${message}`);
    this.name = 'RelayLinkError';
    this.reason = reason;
  }
}

export type RelayLinkState = 'opening' | 'connecting' | 'up' | 'closed';

/** What a link needs of the node: a session opened as initiator (RtmfpNode.openSession), and its clock. */
export interface LinkOpener {
  openSession(uri: string, target: Address, events: OutgoingEvents): OutgoingOpening;
  /** The host's timer for the Flow Sync bounds of the relays' streams (flow-sync.ts). */
  wakeAt: WakeAt;
}

/**
 * One node-to-node media link from this node to node `node` (issue 10 point 4): an RTMFP
 * session opened as initiator, so congestion control and encryption come with it, and on it a
 * NetConnection to the far node's relay app, authenticated both ways with the cluster secret
 * (link-credential.ts). Relays play streams over `tc` once `ready` resolves.
 */
export class RelayLink {
  readonly node: string;
  state: RelayLinkState = 'opening';
  /** The far node's epoch, from its signed answer. */
  farEpoch: string | undefined;
  tc: TCClientConnection | undefined;
  /** Resolves once the link is up; rejects with a RelayLinkError if it ends before. */
  readonly ready: Promise<void>;
  /** Why it ended, once closed. */
  error: RelayLinkError | undefined;
  private session: Session | undefined;
  private opening: OutgoingOpening | undefined;
  private timer: NodeJS.Timeout | undefined;
  private settle!: (error?: RelayLinkError) => void;
  private readonly closedListeners = new Set<(error: RelayLinkError) => void>();

  constructor(node: string) {
    this.node = node;
    this.ready = new Promise<void>((resolve, reject) => {
      this.settle = (error) => (error ? reject(error) : resolve());
    });
    // A link nobody waits on may still fail: that is told through `onClosed`, not as an unhandled rejection.
    this.ready.catch(() => {});
  }

  /** Bytes of the link's session on the wire, both ways (0 before it opens). */
  get bytesSent(): number {
    return this.session?.bytesSent ?? 0;
  }

  get bytesReceived(): number {
    return this.session?.bytesReceived ?? 0;
  }

  /** `listener` hears why the link ended, once (at once if it has); the function returned unsubscribes. */
  onClosed(listener: (error: RelayLinkError) => void): () => void {
    if (this.error) {
      listener(this.error);
      return () => {};
    }
    this.closedListeners.add(listener);
    return () => this.closedListeners.delete(listener);
  }

  /** Opens the session to `target` and, on it, the authenticated connect. */
  open(
    opener: LinkOpener,
    target: Address,
    o: { secret: Buffer; self: { id: string; epoch: string } },
  ): void {
    const uri = `rtmfp://${formatAddress(target)}/${RELAY_APP}`;
    this.timer = setTimeout(
      () =>
        this.close(
          new RelayLinkError('timeout', `node ${this.node} did not answer within ${LINK_OPEN_TIMEOUT_MS} ms`),
        ),
      LINK_OPEN_TIMEOUT_MS,
    );
    this.timer.unref();
    const opening = opener.openSession(uri, target, {
      opened: (session) => {
        this.opening = undefined;
        if (this.state === 'closed') {
          session.close();
          return;
        }
        this.session = session;
        this.state = 'connecting';
        const request = signLinkRequest(
          o.secret,
          { node: o.self.id, epoch: o.self.epoch, to: this.node, peerId: opening.peerId },
          Date.now(),
        );
        this.tc = new TCClientConnection(
          session,
          {
            connected: (ok, info) => this.onConnected(ok, info, o.secret, request, opening.peerId),
            call: (name, _args, reply) => reply?.(false, `${name}: a relay link answers no calls`),
            status: () => {},
          },
          opener.wakeAt,
        );
        this.tc.connect({ tcUrl: uri, app: RELAY_APP, args: [linkRequestValue(request)] });
        session.flush(performance.now());
      },
      flow: (flow) => {
        if (this.tc) this.tc.onFlow(flow);
        else flow.reject(0);
      },
      closed: () => this.finish(new RelayLinkError('closed', `the session to node ${this.node} closed`)),
    });
    this.opening = opening;
  }

  /** Ends the link: Close Request to the far node (RFC 7016 §3.5.5); relays over it hear `error`. */
  close(error = new RelayLinkError('closed', `link to node ${this.node} closed here`)): void {
    if (this.state === 'closed') return;
    this.opening?.cancel();
    this.opening = undefined;
    const session = this.session;
    this.finish(error);
    session?.close();
  }

  private onConnected(
    ok: boolean,
    info: AmfValue,
    secret: Buffer,
    request: LinkRequest,
    peerId: string,
  ): void {
    if (this.state !== 'connecting') return;
    if (!ok) {
      const description = isObject(info) ? String(info.description ?? '') : '';
      this.close(new RelayLinkError('refused', `node ${this.node} refused the link: ${description}`));
      return;
    }
    try {
      this.farEpoch = checkLinkAcceptance(secret, info, this.node, request, peerId);
    } catch (e) {
      this.close(new RelayLinkError('unauthenticated', errorText(e)));
      return;
    }
    clearTimeout(this.timer);
    this.state = 'up';
    this.settle();
  }

  private finish(error: RelayLinkError): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.error = error;
    clearTimeout(this.timer);
    this.tc?.end({ level: 'error', code: 'NetConnection.Call.Failed', description: error.message });
    this.settle(error);
    const listeners = [...this.closedListeners];
    this.closedListeners.clear();
    for (const listener of listeners) listener(error);
  }
}

/** One relay's use of a link; `release` once (more calls change nothing). */
export interface RelayLease {
  readonly link: RelayLink;
  release(): void;
}

export interface RelayLinksOptions {
  opener: LinkOpener;
  /** This node, once it has joined the cluster. */
  self: () => { id: string; epoch: string };
  /** The cluster secret (cluster.ts messageSecret). */
  secret: Buffer;
  /** The live nodes as of the last heartbeat. */
  servers: () => NodeEntry[];
  log: Logger;
  /** How long an unused link stays open (default LINK_IDLE_MS). */
  idleMs?: number;
}

/** What `/status` shows of this node's outgoing links. */
export interface RelayLinkStats {
  /** Links open or opening now. */
  open: number;
  /** Links opened since start, and those that failed to open or ended with an error, by reason. */
  opened: number;
  failed: Record<string, number>;
  /** Bytes on the wire of every link open now, both ways. */
  bytesSent: number;
  bytesReceived: number;
}

/**
 * This node's media links to the other nodes: one per far node, shared by every relay to it,
 * opened on first use, closed once unused for `idleMs`, and closed at once when the far node's
 * record says it is gone, stopping or restarted (checked on every heartbeat).
 */
export class RelayLinks {
  private readonly o: RelayLinksOptions;
  private readonly table: LinkTable<RelayLink>;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  opened = 0;
  private readonly failed = new Map<string, number>();

  constructor(o: RelayLinksOptions) {
    this.o = o;
    this.table = new LinkTable(o.idleMs ?? LINK_IDLE_MS);
  }

  /**
   * A lease on the link to `node`, opening it if there is none. Throws a RelayLinkError for
   * this node, or a node that is not live and serving or draining.
   */
  use(node: string): RelayLease {
    if (this.stopped) throw new RelayLinkError('stopped', 'this node is stopping');
    const self = this.o.self();
    if (node === self.id) throw new RelayLinkError('self', 'a node does not link to itself');
    let link = this.table.get(node);
    if (!link) {
      const entry = this.o.servers().find((s) => s.id === node);
      if (!entry || !linkable(entry.state))
        throw new RelayLinkError('not-serving', `node ${node} is ${entry ? entry.state : 'not live'}`);
      const target = linkAddress(entry);
      if (!target) throw new RelayLinkError('no-address', `node ${node} has no RTMFP address in its record`);
      link = this.start(node, target, self);
    }
    this.table.acquire(node);
    const used = link;
    let released = false;
    return {
      link: used,
      release: () => {
        if (released) return;
        released = true;
        this.table.release(node, used, performance.now());
        this.arm();
      },
    };
  }

  /** Closes the links to nodes that do not serve them any more (called after each heartbeat). */
  serversChanged(live: readonly NodeEntry[]): void {
    for (const link of this.table.takeUnserved(live)) {
      const entry = live.find((n) => n.id === link.node);
      const why = !entry ? 'is gone' : !linkable(entry.state) ? `is ${entry.state}` : 'restarted';
      link.close(new RelayLinkError('far-node-gone', `node ${link.node} ${why}`));
    }
  }

  /** Closes every link (node shutdown). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const link of this.table.links()) link.close(new RelayLinkError('stopped', 'this node is stopping'));
  }

  stats(): RelayLinkStats {
    let bytesSent = 0;
    let bytesReceived = 0;
    for (const link of this.table.links()) {
      bytesSent += link.bytesSent;
      bytesReceived += link.bytesReceived;
    }
    return {
      open: this.table.size,
      opened: this.opened,
      failed: Object.fromEntries(this.failed),
      bytesSent,
      bytesReceived,
    };
  }

  /** The link to `node` if one is open or opening. */
  get(node: string): RelayLink | undefined {
    return this.table.get(node);
  }

  private start(node: string, target: Address, self: { id: string; epoch: string }): RelayLink {
    const link = new RelayLink(node);
    this.table.add(node, link, performance.now());
    this.opened++;
    link.onClosed((error) => {
      this.table.remove(node, link);
      if (error.reason !== 'closed' && error.reason !== 'idle' && error.reason !== 'stopped') {
        this.failed.set(error.reason, (this.failed.get(error.reason) ?? 0) + 1);
        this.o.log.warn({ node, reason: error.reason, err: error.message }, 'relay link ended');
      }
    });
    void resolveTarget(target).then(
      (resolved) => {
        if (link.state === 'closed') return;
        try {
          link.open(this.o.opener, resolved, { secret: this.o.secret, self });
        } catch (e) {
          link.close(new RelayLinkError('open-failed', errorText(e)));
        }
      },
      (e: unknown) =>
        link.close(new RelayLinkError('no-address', `cannot resolve ${target.address}: ${errorText(e)}`)),
    );
    return link;
  }

  /** The idle timer: set for the next link due to close for lack of use. */
  private arm(): void {
    clearTimeout(this.timer);
    const at = this.table.nextIdleAt();
    if (this.stopped || at === Number.POSITIVE_INFINITY) return;
    this.timer = setTimeout(
      () => {
        for (const link of this.table.takeIdle(performance.now()))
          link.close(new RelayLinkError('idle', `link to node ${link.node} unused`));
        this.arm();
      },
      Math.max(0, at - performance.now()),
    );
    this.timer.unref();
  }
}

/** A host name in a node record is looked up; an IP literal is used as it is. */
async function resolveTarget(target: Address): Promise<Address> {
  if (isIP(target.address) !== 0) return target;
  const { address } = await lookup(target.address);
  return { address, port: target.port };
}

function isObject(v: AmfValue): v is AmfObject {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}
