import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { ClusterNode, messageSecret } from '../cluster/cluster.ts';
import { LogTap } from '../cluster/log-tap.ts';
import { type AppSecrets, type NodeEntry, type NodeState, type State, shortHash } from '../cluster/state.ts';
import type { FnhostConfig } from '../config/config.ts';
import { errorText } from '../error-text.ts';
import type { HttpSources } from '../http/server.ts';
import { StreamRelays } from '../relay/stream-relays.ts';
import { formatAddress } from '../rtmfp/address.ts';
import { makeServerIdentity } from '../rtmfp/handshake.ts';
import type { ServerInfo } from '../sandbox/sandbox.ts';
import { AppHost } from './apps.ts';
import { Balancer, MIN_SEAT_TTL_MS } from './balancer.ts';
import { clusterView, DASHBOARD_GROUPS, DASHBOARD_PUBLICATIONS } from './cluster-view.ts';
import { Drain } from './drain.ts';
import { NodeGroups } from './groups.ts';
import { LinkAcceptor } from './link-acceptor.ts';
import { LOAD_SAMPLE_MS, LoadMeter } from './load-meter.ts';
import { RtmfpNode } from './node.ts';
import { NodeMetrics } from './node-metrics.ts';
import { RelayFollower } from './relay-follower.ts';
import { RelayLinks } from './relay-links.ts';
import { NodeStreams } from './streams.ts';

export interface RunningNode {
  cluster: ClusterNode;
  apps: AppHost;
  node: RtmfpNode;
  rtmfp: string[];
  /** What the HTTP port reports about this node (/readyz, /status, /cluster.json, /metrics). */
  sources: HttpSources;
  /** This node's Prometheus registry (what `/metrics` serves). */
  metrics: NodeMetrics;
  /** This node's media links to other nodes (issue 10), one per far node. */
  links: RelayLinks;
  /** Other nodes' media links to this one; their plays reach the stream layer (`NodeStreams`). */
  linkAcceptor: LinkAcceptor;
  /** Streams this node fetches from their origin nodes, one relay per stream, over `links`. */
  relays: StreamRelays;
  /**
   * Pauses (true) or resumes (false): a paused node keeps its clients and takes new ones that
   * reach it, but balancing sends it none. The record says so at once (a heartbeat is sent).
   */
  setPaused(paused: boolean): Promise<void>;
  /**
   * Draining (true): `state: 'draining'`, out of balancing at once; false returns to serving.
   * The record alone: `drain` also redirects handshakes and, at its deadline, the clients.
   */
  setDraining(draining: boolean): Promise<void>;
  /**
   * `fnhost drain`: draining now (setDraining), new handshakes redirected to other nodes, and
   * in `deadlineMs` the clients still here redirected too, then `events.drained` (the node
   * exits). `request` names the command, so a repeat of it changes nothing.
   */
  drain(deadlineMs: number, request?: string): Promise<void>;
  /** `fnhost resume`: cancels a drain before its deadline and unpauses; serving again. */
  resume(): Promise<void>;
  /** Leaves the cluster, closes sessions and apps, then the store; `step` hears where it is. */
  stop(step: (what: string) => void): Promise<void>;
}

/**
 * Everything a cluster node runs, wired together (`fnhost node`): RTMFP, the apps, membership
 * and deploys through the State, and what its HTTP port reports (the caller opens the port
 * before the store answers: DESIGN.md "Health never depends on Redis"). Local state is the
 * truth; the store is told.
 */
export async function startClusterNode(
  config: FnhostConfig,
  state: State,
  log: Logger,
  /** Where the HTTP port listens (`host:port`), for the node record; the caller serves it. */
  http: string | undefined,
  /** `drained`: a drain reached its deadline and sent every client elsewhere (the caller exits). */
  events: { drained?: () => void } = {},
  /** `relayLinkIdleMs`: how long an unused media link to another node stays open (default LINK_IDLE_MS). */
  tuning: { relayLinkIdleMs?: number } = {},
): Promise<RunningNode> {
  const identity = makeServerIdentity();
  let nodeState: NodeState = 'starting';
  let paused = false;
  const self = { id: '', publicAddress: config.node.publicAddress ?? '' };
  const secrets = new Map<string, Record<string, string>>();
  /** app → the secrets revision its running version was loaded with (heartbeat, for convergence). */
  const secretRevisions: Record<string, number> = {};
  const loadErrors: Record<string, string> = {};
  let cluster: ClusterNode | undefined;
  const tap = new LogTap(state, () => self.id);
  const metrics = new NodeMetrics();
  state.onRoundTrip(metrics.roundTrip);
  const balancer = new Balancer({
    self: () => self.id,
    nodes: () => cluster?.servers() ?? [],
    localClients: () => rtmfp.stats().connections,
    store: state,
    maxClients: config.balance.maxClients,
    seatTtlMs: Math.max(MIN_SEAT_TTL_MS, 2 * config.cluster.heartbeatMs),
    logger: log,
  });

  const groups = new NodeGroups({
    p2p: state.p2p,
    node: () => self.id,
    logger: log,
    introduce: (to, request) => cluster?.groupIntroduce(to, request) ?? Promise.resolve(false),
  });
  const apps = new AppHost({
    logger: log,
    limits: config.limits,
    env: (app) => ({ ...config.vars, ...secrets.get(app) }),
    kv: state.kv,
    node: self,
    handshakesPerSecond: config.limits.handshakes,
    balancer,
    strategy: config.balance.strategy,
    tap: (app, record) => tap.tap(app, record),
    handlers: metrics,
    groups,
    publications: state.publications,
    directory: {
      servers: () => cluster?.servers().map(serverInfo) ?? [],
      send: (to, app, name, args) => void cluster?.send(to, app, name, args).catch(() => {}),
      broadcast: (app, name, args) => {
        void cluster?.broadcast(app, name, args).catch(() => {});
        return (cluster?.servers().length ?? 1) - 1;
      },
    },
  });
  let follower: RelayFollower | undefined;
  const streams = new NodeStreams({
    publications: state.publications,
    node: () => self.id,
    apps,
    logger: log,
    relays: {
      follow: (app, name, sink) => follower?.follow(app, name, sink),
      unfollow: (app, name) => follower?.unfollow(app, name),
    },
  });
  const drain: Drain = new Drain({
    log,
    servers: () => cluster?.servers() ?? [],
    selfId: () => self.id,
    maxClients: config.balance.maxClients,
    connections: () => rtmfp.openConnections(),
    drained: () => events.drained?.(),
  });
  const hooks = apps.nodeHooks();
  let secret: Buffer | undefined;
  const linkAcceptor = new LinkAcceptor({
    self: () => (cluster ? { id: cluster.id, epoch: cluster.epoch } : undefined),
    secret: () => secret,
    origin: streams,
    log,
  });
  const rtmfp: RtmfpNode = new RtmfpNode({
    listen: config.node.rtmfp,
    identity,
    logger: log,
    handler: hooks.handler,
    handshake: (request, now) => drain.handshake(request) ?? hooks.handshake(request, now),
    handshakes: metrics,
    groupsPerClient: config.limits.groupsPerClient,
    nativePackets: config.node.nativePackets,
    links: linkAcceptor,
    streams,
    peers: {
      nodeId: () => self.id,
      p2p: state.p2p,
      live: (id) => cluster?.servers().some((s) => s.id === id) ?? false,
      forward: (to, request) => cluster?.forwardHello(to, request) ?? Promise.resolve(false),
      unknown: (peerId, from) => apps.rendezvousUnknown(peerId, from),
    },
  });
  const bound = (await rtmfp.start()).map(formatAddress);
  const load = new LoadMeter(() => {
    const cpu = process.cpuUsage();
    return {
      packets: rtmfp.received + rtmfp.sent,
      bytes: rtmfp.bytesReceived + rtmfp.bytesSent,
      cpuMicros: cpu.user + cpu.system,
    };
  }, performance.now());
  const sampler = setInterval(() => load.sample(performance.now()), LOAD_SAMPLE_MS);
  sampler.unref();
  self.publicAddress ||= bound[0];
  secret = await messageSecret(state, config.cluster.secret);
  let links: RelayLinks | undefined;

  cluster = new ClusterNode({
    state,
    logger: log,
    secret,
    heartbeatMs: config.cluster.heartbeatMs,
    describe: () => ({
      state: nodeState,
      publicAddress: self.publicAddress,
      rtmfp: bound,
      http,
      load: { clients: rtmfp.stats().connections, ...load.rates(performance.now()) },
      paused,
      versions: Object.fromEntries(apps.appNames.map((a) => [a, apps.version(a) ?? ''])),
      errors: loadErrors,
      secretRevisions,
    }),
    hooks: {
      joined: (s) => void apps.serverChanged('serverJoined', serverInfo(s)),
      left: (s) => void apps.serverChanged('serverLeft', serverInfo(s)),
      updated: (servers) => {
        links?.serversChanged(servers);
        linkAcceptor.serversChanged(servers);
      },
      message: (from, fromId, app, name, args) =>
        void apps.deliver(
          app,
          from
            ? serverInfo(from)
            : { id: fromId, publicAddress: '', load: { clients: 0 }, paused: false, state: 'serving' },
          name,
          args,
        ),
      control: (name, args) => void operatorCommand(name, args),
      groupIntroduce: (_from, request) => void groups.introduced(request),
      forwardHello: (fromId, request) => rtmfp.rendezvous.forward(fromId, request),
    },
  });
  self.id = cluster.id;
  const member = cluster;
  const outLinks = new RelayLinks({
    opener: rtmfp,
    self: () => ({ id: member.id, epoch: member.epoch }),
    secret,
    servers: () => member.servers(),
    log,
    idleMs: tuning.relayLinkIdleMs,
  });
  links = outLinks;
  const relays = new StreamRelays({
    links: outLinks,
    now: () => performance.now(),
    ended: (end) => log.warn(end, 'a relayed stream ended: its players here heard UnpublishNotify'),
  });
  follower = new RelayFollower({ relays, publications: state.publications, node: () => self.id, log });
  /** The relay's figures for `/metrics`. */
  const relayCounts = () => {
    const out = outLinks.stats();
    const accepted = linkAcceptor.stats();
    return {
      relayLinksOut: out.open,
      relayLinksIn: accepted.open,
      relayedIn: relays.stats().relays,
      relayedOut: accepted.relayed,
      relayLinksFailed: out.failed,
      relayLinksRefused: accepted.refused,
    };
  };
  metrics.readFrom(() => ({
    sessions: rtmfp.sessions.size,
    connections: rtmfp.stats().connections,
    hellos: rtmfp.hellos,
    redirects: rtmfp.redirects,
    keyings: rtmfp.keyings,
    opened: rtmfp.handshakes,
    received: rtmfp.received,
    sent: rtmfp.sent,
    sendErrors: rtmfp.sendErrors,
    bytesReceived: rtmfp.bytesReceived,
    bytesSent: rtmfp.bytesSent,
    drops: rtmfp.drops.snapshot(),
    handshakesOverBound: apps.handshakesOverBound,
    heap: apps.heapBytes(),
    groupMemberships: groups.memberships,
    groupJoinsFailed: groups.joinsFailed,
    ...streams.counts,
    streamDrops: streams.dropSnapshot(),
    streamsRefused: streams.refused,
    ...relayCounts(),
  }));
  // Clients that connected before the node had its ID are registered now.
  rtmfp.rendezvous.reassert();

  /** One load at a time per app, so two quick deploys cannot land out of order. */
  const following = new Map<string, Promise<void>>();
  const follow = (app: string): Promise<void> => {
    const next = (following.get(app) ?? Promise.resolve()).then(() => loadActive(app));
    following.set(app, next);
    return next;
  };

  /**
   * Loads the app's active version unless it already runs with the app's current secrets; a
   * secrets change alone reloads the same bundle with the new `ctx.env` (a hot swap, as a
   * deploy does: clients and their `data` carry over). A bad bundle leaves the old one.
   */
  const loadActive = async (app: string): Promise<void> => {
    let hash: string | undefined;
    let appSecrets: AppSecrets;
    try {
      [hash, appSecrets] = await Promise.all([state.active(app), state.secrets(app)]);
    } catch (e) {
      // Caught up with when the store is back (onStatus 'up' below).
      log.warn(
        { app, err: errorText(e) },
        'could not read the active version; retrying when the store is back',
      );
      return;
    }
    const running = apps.version(app);
    if (!hash || (hash === running && appSecrets.revision === secretRevisions[app])) return;
    try {
      const bundle = await state.getBundle(app, hash);
      if (!bundle) throw new Error(`bundle ${shortHash(hash)} is missing from the store`);
      const actual = createHash('sha256').update(bundle.code).digest('hex');
      if (actual !== hash || bundle.hash !== hash)
        throw new Error(`bundle ${shortHash(hash)} is corrupt (hash mismatch)`);
      secrets.set(app, appSecrets.values);
      await apps.load(app, bundle);
      secretRevisions[app] = appSecrets.revision;
      delete loadErrors[app];
      if (hash === running)
        log.info({ app, version: shortHash(hash) }, 'secrets changed: reloaded with them');
    } catch (e) {
      loadErrors[app] = `${shortHash(hash)}: ${errorText(e)}`;
      log.error(
        { app, version: shortHash(hash), err: loadErrors[app] },
        'could not load the active version; keeping the previous one',
      );
    }
    await cluster?.heartbeatNow();
  };

  const unsubscribe = await state.subscribe('deploy', (message) => {
    let app: unknown;
    try {
      app = (JSON.parse(message) as { app?: unknown }).app;
    } catch {
      return;
    }
    if (typeof app === 'string') void follow(app);
  });
  await tap.start();
  for (const app of await state.apps().catch(() => [])) await follow(app);
  nodeState = 'serving';
  await cluster.start();
  state.onStatus((status) => {
    // Local state is the truth (DESIGN.md): the store may have restarted empty or reaped this
    // node, so its memberships and peers go back.
    if (status === 'up') {
      void groups.reassert();
      void streams.reassert();
      rtmfp.rendezvous.reassert();
    }
    // Deploys published while the store was down were missed: catch up.
    if (status === 'up')
      void state
        .apps()
        .then((list) => Promise.all(list.map(follow)))
        .catch(() => {});
  });

  const sources: HttpSources = {
    loadbalancer: () => balancer.lightest(),
    ready: () =>
      cluster?.ready ? { ok: true } : { ok: false, reason: 'cluster store or pub/sub unavailable' },
    status: () => ({
      id: self.id,
      state: nodeState,
      ...rtmfp.stats(),
      clusterMessagesDropped: cluster?.dropped,
      apps: Object.fromEntries(apps.appNames.map((a) => [a, apps.version(a)])),
      servers: cluster?.servers(),
      relay: { links: outLinks.stats(), accepted: linkAcceptor.stats(), streams: relays.stats() },
    }),
    cluster: async () => {
      const unread = (what: string) => (err: unknown) => {
        log.warn({ err: errorText(err) }, `/cluster.json: could not read the ${what} from the cluster store`);
        return undefined;
      };
      const [groups, publications] = await Promise.all([
        state.p2p.groups(DASHBOARD_GROUPS).catch(unread('groups')),
        state.publications.list(undefined, DASHBOARD_PUBLICATIONS).catch(unread('publications')),
      ]);
      const servers = cluster?.servers() ?? [];
      return clusterView(self.id, config.cluster.name, servers, { groups, publications }, Date.now());
    },
    metrics: async () => ({ contentType: metrics.contentType, text: await metrics.text() }),
  };

  const running: RunningNode = {
    cluster,
    apps,
    node: rtmfp,
    rtmfp: bound,
    sources,
    metrics,
    links: outLinks,
    linkAcceptor,
    relays,
    async setPaused(value) {
      paused = value;
      await cluster?.heartbeatNow();
    },
    async setDraining(value) {
      if (nodeState !== 'serving' && nodeState !== 'draining') return;
      nodeState = value ? 'draining' : 'serving';
      await cluster?.heartbeatNow();
    },
    async drain(deadlineMs, request = randomUUID()) {
      if (nodeState !== 'serving' && nodeState !== 'draining') return;
      drain.start(deadlineMs, request);
      await running.setDraining(true);
    },
    async resume() {
      drain.cancel();
      paused = false;
      await running.setDraining(false);
    },
    async stop(step) {
      nodeState = 'stopping';
      drain.stop();
      clearInterval(sampler);
      follower?.stop();
      relays.stopAll();
      outLinks.stop();
      // Sessions are closed while the cluster is left: a store that does not answer must not
      // keep clients waiting (the shutdown deadline cuts the leave short; others reap the node).
      step('leaving the cluster and closing sessions');
      await Promise.all([
        (async () => {
          await unsubscribe().catch(() => {});
          await tap.stop().catch(() => {});
          await cluster?.stop();
        })(),
        (async () => {
          await rtmfp.stop();
          streams.close();
          await apps.stop();
        })(),
      ]);
      step('closing the connection to the cluster store');
      await state.close();
    },
  };

  /** `fnhost pause`, `resume`, `drain` (signed control messages from the CLI). */
  async function operatorCommand(name: string, args: unknown[]): Promise<void> {
    log.info({ command: name, args }, `operator command: ${name}`);
    if (name === 'pause') await running.setPaused(true);
    else if (name === 'resume') await running.resume();
    else if (name === 'drain' && isDeadline(args[0]) && typeof args[1] === 'string')
      await running.drain(args[0], args[1]);
    else log.warn({ command: name, args }, 'ignored an operator command this node does not know');
  }

  return running;
}

function isDeadline(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

function serverInfo(e: NodeEntry): ServerInfo {
  return {
    id: e.id,
    publicAddress: e.publicAddress,
    load: { clients: e.load.clients },
    paused: e.paused,
    state: e.state,
  };
}
