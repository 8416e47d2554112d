import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { RoundTripListener } from '../cluster/state.ts';
import type { HandlerFailure } from '../sandbox/sandbox.ts';

/** Handler latencies: from a cheap sync handler (~50 µs) to the 5 s await limit. */
const HANDLER_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5];
/** IIKeying to RIKeying: one DH (~1-20 ms by group) plus the crypto queue under a burst. */
const HANDSHAKE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Redis round trips: sub-ms on a LAN, up to the command timeout. */
const REDIS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1];

/** Told of every handler call that ran (not of events the app has no handler for). */
export interface HandlerObserver {
  handled(app: string, event: string, seconds: number, failure: HandlerFailure | undefined): void;
}

/** Told when a handshake opened its session. */
export interface HandshakeObserver {
  /** Seconds from the IIKeying (cookie echoed) to the RIKeying sent: keying queue and DH. */
  opened(seconds: number): void;
}

/** What the node counts in plain numbers (hot path) and hands over when scraped. */
export interface NodeCounts {
  sessions: number;
  connections: number;
  hellos: number;
  redirects: number;
  /** IIKeyings taken to be keyed. */
  keyings: number;
  /** Sessions opened (RIKeying sent). */
  opened: number;
  received: number;
  sent: number;
  /** Datagrams the kernel refused to send (native path: unreachable, not permitted). */
  sendErrors: number;
  bytesReceived: number;
  bytesSent: number;
  drops: Record<string, number>;
  /** onHandshake calls skipped past `[limits] handshakes`. */
  handshakesOverBound: number;
  /** Isolate heap bytes per loaded app. */
  heap: Record<string, number>;
  /** NetGroup memberships held on this node. */
  groupMemberships: number;
  /** NetGroup joins refused, by reason (`bad-group-join`, `groups-per-client`, `refused`). */
  groupJoinsFailed: Record<string, number>;
  /** Live publications whose publisher is on this node, and players on this node. */
  publications: number;
  players: number;
  /** Messages refused on NetStream flows and media slow players lost, by reason (`media-not-publishing`, `slow-video`, …). */
  streamDrops: Record<string, number>;
  /** Publishes and plays refused, by reason (`taken`, `refused`, `redirected`, `no-app`). */
  streamsRefused: Record<string, number>;
  /** Media links to other nodes open now, and other nodes' links to this one. */
  relayLinksOut: number;
  relayLinksIn: number;
  /** Streams relayed to this node now, and streams this node relays to others (one per stream and node). */
  relayedIn: number;
  relayedOut: number;
  /** Links that failed (to open or later), by reason, and other nodes' links refused here, by reason. */
  relayLinksFailed: Record<string, number>;
  relayLinksRefused: Record<string, number>;
}

/**
 * One node's Prometheus metrics, in a registry of its own (several nodes in one process do not
 * collide). Packets and bytes are counted in plain numbers where they happen and read when
 * scraped: a prom-client `inc()` costs ~4× an `n++` on a field (15 ns against 3.4 ns), ~80× with
 * a label (`npm run bench -- --only m`). Handler, handshake and Redis times are observed as they
 * happen: each is rarer and costlier than the observation. No label carries a client address
 * or a handler argument: `event` is a handler the app exports, `app` a deployed app's name.
 */
export class NodeMetrics implements HandlerObserver, HandshakeObserver {
  readonly registry = new Registry();
  private counts: () => NodeCounts | undefined = () => undefined;
  private readonly handlerSeconds: Histogram<'app' | 'event'>;
  private readonly handlerErrors: Counter<'app' | 'event'>;
  private readonly limitHits: Counter<'app' | 'limit'>;
  private readonly rebuilds: Counter<'app'>;
  private readonly handshakeSeconds: Histogram;
  private readonly redisSeconds: Histogram<'result'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.handlerSeconds = new Histogram({
      name: 'fnhost_handler_duration_seconds',
      help: 'Handler calls, by app and event, from dispatch to outcome (awaits included).',
      labelNames: ['app', 'event'],
      buckets: HANDLER_BUCKETS,
      registers,
    });
    this.handlerErrors = new Counter({
      name: 'fnhost_handler_errors_total',
      help: 'Handler calls that failed (threw, broke a limit, or returned what the node cannot use).',
      labelNames: ['app', 'event'],
      registers,
    });
    this.limitHits = new Counter({
      name: 'fnhost_handler_limit_hits_total',
      help: 'Handler calls stopped by a [limits] setting: cpu, memory or await.',
      labelNames: ['app', 'limit'],
      registers,
    });
    this.rebuilds = new Counter({
      name: 'fnhost_isolate_rebuilds_total',
      help: 'App isolates rebuilt after a handler exceeded the memory limit.',
      labelNames: ['app'],
      registers,
    });
    this.handshakeSeconds = new Histogram({
      name: 'fnhost_handshake_duration_seconds',
      help: 'Handshakes, from the IIKeying (cookie echoed) to the RIKeying sent: keying queue and DH.',
      buckets: HANDSHAKE_BUCKETS,
      registers,
    });
    this.redisSeconds = new Histogram({
      name: 'fnhost_redis_round_trip_seconds',
      help: 'Commands to the cluster store (Redis), by result (ok, error).',
      labelNames: ['result'],
      buckets: REDIS_BUCKETS,
      registers,
    });
    this.scraped();
  }

  /** Where the plain counters are read from at each scrape. */
  readFrom(counts: () => NodeCounts): void {
    this.counts = counts;
  }

  /** For `State.onRoundTrip`. */
  readonly roundTrip: RoundTripListener = (seconds, failed) =>
    this.redisSeconds.observe({ result: failed ? 'error' : 'ok' }, seconds);

  handled(app: string, event: string, seconds: number, failure: HandlerFailure | undefined): void {
    this.handlerSeconds.observe({ app, event }, seconds);
    if (failure?.kind !== 'error') return;
    this.handlerErrors.inc({ app, event });
    if (!failure.limit) return;
    this.limitHits.inc({ app, limit: failure.limit });
    if (failure.limit === 'memory') this.rebuilds.inc({ app });
  }

  opened(seconds: number): void {
    this.handshakeSeconds.observe(seconds);
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Metrics read from the node's plain counters when scraped. */
  private scraped(): void {
    const registers = [this.registry];
    const read = (pick: (c: NodeCounts) => number) => () => {
      const c = this.counts();
      return c ? pick(c) : 0;
    };
    const gauge = (name: string, help: string, pick: (c: NodeCounts) => number) => {
      const value = read(pick);
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value());
        },
      });
    };
    // A counter read whole from the node: reset, then set to the node's running total.
    const counter = (name: string, help: string, pick: (c: NodeCounts) => number) => {
      const value = read(pick);
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(value());
        },
      });
    };
    gauge('fnhost_sessions', 'RTMFP sessions in the table (closing ones included).', (c) => c.sessions);
    gauge('fnhost_connections', 'Open NetConnections.', (c) => c.connections);
    counter('fnhost_ihellos_total', 'IHellos received (handshakes begun).', (c) => c.hellos);
    counter('fnhost_handshake_redirects_total', 'IHellos answered with a Redirect.', (c) => c.redirects);
    counter('fnhost_handshakes_total', 'IIKeyings taken to be keyed.', (c) => c.keyings);
    counter('fnhost_sessions_opened_total', 'Handshakes that opened a session.', (c) => c.opened);
    counter('fnhost_packets_received_total', 'Datagrams received.', (c) => c.received);
    counter('fnhost_packets_sent_total', 'Datagrams sent.', (c) => c.sent);
    counter(
      'fnhost_packets_send_failed_total',
      'Datagrams the kernel refused to send (unreachable, not permitted): lost like drops on the wire.',
      (c) => c.sendErrors,
    );
    counter('fnhost_bytes_received_total', 'UDP payload bytes received.', (c) => c.bytesReceived);
    counter('fnhost_bytes_sent_total', 'UDP payload bytes sent.', (c) => c.bytesSent);
    counter(
      'fnhost_handshake_hook_skipped_total',
      'onHandshake calls skipped past [limits] handshakes (the IHello was accepted here).',
      (c) => c.handshakesOverBound,
    );
    gauge('fnhost_group_memberships', 'NetGroup memberships held on this node.', (c) => c.groupMemberships);
    gauge(
      'fnhost_publications',
      'Live publications whose publisher is connected to this node.',
      (c) => c.publications,
    );
    gauge('fnhost_players', 'NetStreams playing on this node.', (c) => c.players);
    gauge('fnhost_relay_links_out', 'Media links from this node to other nodes.', (c) => c.relayLinksOut);
    gauge('fnhost_relay_links_in', "Other nodes' media links to this node.", (c) => c.relayLinksIn);
    gauge(
      'fnhost_relayed_streams_in',
      'Streams published elsewhere relayed to this node.',
      (c) => c.relayedIn,
    );
    gauge(
      'fnhost_relayed_streams_out',
      'Streams relayed from this node, counted once per stream and node.',
      (c) => c.relayedOut,
    );
    const counts = () => this.counts();
    const byReason = (name: string, help: string, pick: (c: NodeCounts) => Record<string, number>) =>
      new Counter({
        name,
        help,
        labelNames: ['reason'],
        registers,
        collect() {
          this.reset();
          const c = counts();
          for (const [reason, n] of Object.entries(c ? pick(c) : {})) this.inc({ reason }, n);
        },
      });
    byReason(
      'fnhost_stream_messages_dropped_total',
      'Messages refused on NetStream flows (media-not-publishing, data-too-large, not-media, bad-stream-command, …) and media slow players lost (slow-audio, slow-video).',
      (c) => c.streamDrops,
    );
    byReason(
      'fnhost_streams_refused_total',
      'Publishes and plays refused: taken (name published elsewhere), refused or redirected (by the app), no-app.',
      (c) => c.streamsRefused,
    );
    byReason(
      'fnhost_relay_links_failed_total',
      'Media links from this node that failed: refused, unauthenticated, timeout, far-node-gone, …',
      (c) => c.relayLinksFailed,
    );
    byReason(
      'fnhost_relay_links_refused_total',
      "Other nodes' links refused here: forged (wrong secret), stale, replayed, misdirected, malformed, …",
      (c) => c.relayLinksRefused,
    );
    new Counter({
      name: 'fnhost_group_joins_failed_total',
      help: 'NetGroup joins refused: bad-group-join (malformed), groups-per-client, refused (onJoinGroup).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(counts()?.groupJoinsFailed ?? {})) this.inc({ reason }, n);
      },
    });
    new Counter({
      name: 'fnhost_packets_dropped_total',
      help: 'Datagrams dropped, by reason.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(counts()?.drops ?? {})) this.inc({ reason }, n);
      },
    });
    new Gauge({
      name: 'fnhost_isolate_heap_bytes',
      help: "Heap used by each app's isolate on this node.",
      labelNames: ['app'],
      registers,
      collect() {
        this.reset();
        for (const [app, bytes] of Object.entries(counts()?.heap ?? {})) this.set({ app }, bytes);
      },
    });
  }
}
