import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { ClusterNode } from '../cluster/cluster.ts';
import { LogTap } from '../cluster/log-tap.ts';
import {
  type AppSecrets,
  type NodeEntry,
  type NodeLoad,
  type NodeState,
  type State,
  shortHash,
} from '../cluster/state.ts';
import type { FnhostConfig } from '../config/config.ts';
import { errorText } from '../error-text.ts';
import type { HttpSources } from '../http/server.ts';
import { formatAddress } from '../rtmfp/address.ts';
import { makeServerIdentity } from '../rtmfp/handshake.ts';
import type { ServerInfo } from '../sandbox/sandbox.ts';
import { AppHost } from './apps.ts';
import { Balancer, MIN_SEAT_TTL_MS } from './balancer.ts';
import { clusterView } from './cluster-view.ts';
import { RtmfpNode } from './node.ts';
import { NodeMetrics } from './node-metrics.ts';

export interface RunningNode {
  cluster: ClusterNode;
  apps: AppHost;
  node: RtmfpNode;
  rtmfp: string[];
  /** What the HTTP port reports about this node (/readyz, /status, /cluster.json, /metrics). */
  sources: HttpSources;
  /** This node's Prometheus registry (what `/metrics` serves). */
  metrics: NodeMetrics;
  /**
   * Pauses (true) or resumes (false): a paused node keeps its clients and takes new ones that
   * reach it, but balancing sends it none. The record says so at once (a heartbeat is sent).
   */
  setPaused(paused: boolean): Promise<void>;
  /**
   * Draining (true): `state: 'draining'`, out of balancing at once; false returns to serving.
   * What a draining node does with handshakes and clients is the drain command's (issue 11).
   */
  setDraining(draining: boolean): Promise<void>;
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
): Promise<RunningNode> {
  const identity = makeServerIdentity();
  let nodeState: NodeState = 'starting';
  let paused = false;
  const self = { id: '', publicAddress: config.node.publicAddress ?? '' };
  const secrets = new Map<string, Record<string, string>>();
  /** app → the secrets revision its running version was loaded with (heartbeat, for convergence). */
  const secretRevisions: Record<string, number> = {};
  const loadErrors: Record<string, string> = {};
  const load = new LoadMeter();
  let cluster: ClusterNode | undefined;
  const tap = new LogTap(state, () => self.id);
  const metrics = new NodeMetrics();
  state.onRoundTrip(metrics.roundTrip);
  let rtmfp: RtmfpNode | undefined;
  const balancer = new Balancer({
    self: () => self.id,
    nodes: () => cluster?.servers() ?? [],
    localClients: () => rtmfp?.stats().connections ?? 0,
    store: state,
    maxClients: config.balance.maxClients,
    seatTtlMs: Math.max(MIN_SEAT_TTL_MS, 2 * config.cluster.heartbeatMs),
    logger: log,
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
    directory: {
      servers: () => cluster?.servers().map(serverInfo) ?? [],
      send: (to, app, name, args) => void cluster?.send(to, app, name, args).catch(() => {}),
      broadcast: (app, name, args) => {
        void cluster?.broadcast(app, name, args).catch(() => {});
        return (cluster?.servers().length ?? 1) - 1;
      },
    },
  });
  rtmfp = new RtmfpNode({
    listen: config.node.rtmfp,
    identity,
    logger: log,
    handshakes: metrics,
    ...apps.nodeHooks(),
  });
  metrics.readFrom(() => ({
    sessions: rtmfp.sessions.size,
    connections: rtmfp.stats().connections,
    hellos: rtmfp.hellos,
    redirects: rtmfp.redirects,
    keyings: rtmfp.keyings,
    opened: rtmfp.handshakes,
    received: rtmfp.received,
    sent: rtmfp.sent,
    bytesReceived: rtmfp.bytesReceived,
    bytesSent: rtmfp.bytesSent,
    drops: rtmfp.drops.snapshot(),
    handshakesOverBound: apps.handshakesOverBound,
    heap: apps.heapBytes(),
  }));
  const bound = (await rtmfp.start()).map(formatAddress);
  self.publicAddress ||= bound[0];

  cluster = new ClusterNode({
    state,
    logger: log,
    secret: await clusterSecret(config, state),
    heartbeatMs: config.cluster.heartbeatMs,
    describe: () => ({
      state: nodeState,
      publicAddress: self.publicAddress,
      rtmfp: bound,
      http,
      load: load.measure(rtmfp),
      paused,
      versions: Object.fromEntries(apps.appNames.map((a) => [a, apps.version(a) ?? ''])),
      errors: loadErrors,
      secretRevisions,
    }),
    hooks: {
      joined: (s) => void apps.serverChanged('serverJoined', serverInfo(s)),
      left: (s) => void apps.serverChanged('serverLeft', serverInfo(s)),
      message: (from, fromId, app, name, args) =>
        void apps.deliver(
          app,
          from ? serverInfo(from) : { id: fromId, publicAddress: '', load: { clients: 0 }, paused: false },
          name,
          args,
        ),
    },
  });
  self.id = cluster.id;

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
    }),
    cluster: () => clusterView(self.id, config.cluster.name, cluster?.servers() ?? [], Date.now()),
    metrics: async () => ({ contentType: metrics.contentType, text: await metrics.text() }),
  };

  return {
    cluster,
    apps,
    node: rtmfp,
    rtmfp: bound,
    sources,
    metrics,
    async setPaused(value) {
      paused = value;
      await cluster?.heartbeatNow();
    },
    async setDraining(value) {
      if (nodeState !== 'serving' && nodeState !== 'draining') return;
      nodeState = value ? 'draining' : 'serving';
      await cluster?.heartbeatNow();
    },
    async stop(step) {
      nodeState = 'stopping';
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
          await apps.stop();
        })(),
      ]);
      step('closing the connection to the cluster store');
      await state.close();
    },
  };
}

function serverInfo(e: NodeEntry): ServerInfo {
  return { id: e.id, publicAddress: e.publicAddress, load: { clients: e.load.clients }, paused: e.paused };
}

/** The configured secret, else one the cluster shares through its store. */
async function clusterSecret(config: FnhostConfig, state: State): Promise<Buffer> {
  const text = config.cluster.secret ?? (await state.clusterSecret());
  return createHash('sha256').update(text).digest();
}

/** Load for heartbeats, computed locally between two heartbeats (DESIGN.md). */
class LoadMeter {
  private at = performance.now();
  private cpu = process.cpuUsage();
  private packets = 0;
  private bytes = 0;

  measure(node: RtmfpNode): NodeLoad {
    const now = performance.now();
    const seconds = Math.max(0.001, (now - this.at) / 1000);
    const cpu = process.cpuUsage(this.cpu);
    const packets = node.received + node.sent;
    const bytes = node.bytesReceived + node.bytesSent;
    const load: NodeLoad = {
      clients: node.stats().connections,
      cpu: (cpu.user + cpu.system) / 1e6 / seconds,
      packetsPerSecond: (packets - this.packets) / seconds,
      bytesPerSecond: (bytes - this.bytes) / seconds,
    };
    this.at = now;
    this.cpu = process.cpuUsage();
    this.packets = packets;
    this.bytes = bytes;
    return load;
  }
}
