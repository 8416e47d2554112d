/**
 * Every Redis key and pub/sub channel of a cluster, named in one place (DESIGN.md "Cluster
 * state"). All live under `fnhost:{<cluster>}:`. The braces are a Redis Cluster hash tag:
 * only `<cluster>` is hashed, so every key of one cluster lands in the same slot. Redis
 * Cluster runs a multi-key Lua script (heartbeat, reap, deploy) only when all its keys share
 * a slot, and reap/nodes derive node keys from a prefix rather than receive them in KEYS;
 * the tag keeps those in the slot too. (Today's client speaks to one server or Sentinel; the
 * layout is ready for Cluster.)
 */

/** Logical channel names, as passed to `State.publish` / `State.subscribe`. */
export const CHANNELS = {
  /** A version was deployed or rolled back to. */
  deploy: 'deploy',
  /** A node joined, left or was reaped. */
  nodes: 'nodes',
  /** Someone started or stopped `fnhost tail`. */
  tail: 'tail',
  /** Messages to one node. */
  rpc: (nodeId: string): string => `rpc:${checkName('node id', nodeId)}`,
  /** Handler log lines of one app, while someone tails. */
  logs: (app: string): string => `logs:${checkName('app', app)}`,
} as const;

export interface ClusterKeys {
  /** `fnhost:{<cluster>}:`, the start of every key and channel below. */
  readonly prefix: string;
  /** JSON node record, expires `ttl` after its last heartbeat. */
  node(id: string): string;
  /** The part of `node(id)` before the id, for Lua scripts that derive node keys. */
  readonly nodePrefix: string;
  /** Sorted set: node id → last heartbeat, ms of Redis TIME. */
  readonly nodes: string;
  /** Hash: hash, code, map. */
  bundle(app: string, hash: string): string;
  /** The part of `bundle(app, hash)` before the hash, for the deploy script. */
  bundlePrefix(app: string): string;
  /** List of VersionInfo JSON, newest first. */
  versions(app: string): string;
  /** String: active bundle hash. */
  active(app: string): string;
  /** Set of app names that have an active version. */
  readonly apps: string;
  /** Hash: secret name → value. */
  secrets(app: string): string;
  /** String: a counter raised with every change of `secrets(app)`. */
  secretsRevision(app: string): string;
  /** String: the cluster's shared secret for node-to-node messages. */
  readonly clusterSecret: string;
  /** Sorted set: a node's pending seats, client (handshake tag) → when it lapses, ms of Redis TIME. */
  seats(node: string): string;
  /** String: a `ctx.kv` value, encoded by value-codec.ts. */
  kv(app: string, key: string): string;
  /** A P2P key: its segment (P2P_KEYS) and the peer, node or group id that follows it. */
  p2p(segment: keyof typeof P2P_KEYS, id?: string): string;
  /** A publication key: its segment (PUBLICATION_KEYS) and the publication id or node that follows it. */
  publication(segment: keyof typeof PUBLICATION_KEYS, id?: string): string;
  /** Redis channel for a logical channel name (see CHANNELS), scoped to the cluster. */
  channel(name: string): string;
}

/** The key layout of one cluster. */
export function clusterKeys(cluster: string): ClusterKeys {
  const prefix = `fnhost:{${checkName('cluster', cluster)}}:`;
  const nodePrefix = `${prefix}node:`;
  const bundlePrefix = (app: string) => `${prefix}app:${checkName('app', app)}:bundle:`;
  return {
    prefix,
    nodePrefix,
    node: (id) => nodePrefix + checkName('node id', id),
    nodes: `${prefix}nodes`,
    bundle: (app, hash) => bundlePrefix(app) + hash,
    bundlePrefix,
    versions: (app) => `${prefix}app:${checkName('app', app)}:versions`,
    active: (app) => `${prefix}app:${checkName('app', app)}:active`,
    apps: `${prefix}apps`,
    secrets: (app) => `${prefix}app:${checkName('app', app)}:secrets`,
    secretsRevision: (app) => `${prefix}app:${checkName('app', app)}:secrets-revision`,
    clusterSecret: `${prefix}secret`,
    seats: (node) => `${prefix}seats:${checkName('node id', node)}`,
    // The app name can't contain ':' (checked), so `kv:<app>:` never collides across apps
    // whatever the handler's key holds.
    kv: (app, key) => `${prefix}kv:${checkName('app', app)}:${key}`,
    channel: (name) => prefix + name,
    p2p: (segment, id = '') => prefix + P2P_KEYS[segment] + id,
    publication: (segment, id = '') => prefix + PUBLICATION_KEYS[segment] + id,
  };
}

/**
 * What follows `fnhost:{<cluster>}:` in the P2P keys. The Lua scripts (redis-p2p.ts) build these
 * keys themselves from the ids they read (reap walks a dead node's peers and memberships), so
 * the segments are defined here once and written into the scripts.
 */
export const P2P_KEYS = {
  /** String: PeerRecord JSON of a connected client. */
  peer: 'peer:',
  /** Set: the peer IDs a node registered (what reaping it removes). */
  nodePeers: 'peers-of:',
  /** Sorted set: a group's member peer IDs → join sequence (cluster-wide join order). */
  group: 'group:',
  /** Hash: a group's member peer ID → the node it is connected to. */
  groupNodes: 'group-nodes:',
  /** Set: `<groupId>:<peerId>` of each membership a node holds (what reaping it removes). */
  nodeMemberships: 'memberships-of:',
  /** Sorted set: group ID → its size, written from the member count in the same script. */
  groups: 'groups',
} as const;

/**
 * What follows `fnhost:{<cluster>}:` in the publication keys (issue 10), written into the Lua
 * scripts of redis-publications.ts (reap walks a dead node's sets) like P2P_KEYS. A publication's
 * keys end in `<app>:<stream>` (the app has no ':', so the first one splits them); the sets and
 * the index hold its id, `<app>` NUL `<stream>`, so that byte order is app order, then stream
 * order (neither may hold a NUL).
 */
export const PUBLICATION_KEYS = {
  /** Hash: node, publisher, since — who publishes `<app>:<stream>` (DESIGN.md `pub:<app>:<stream>`). */
  pub: 'pub:',
  /** Hash: node → players there of `<app>:<stream>`, an absolute count set by that node. */
  players: 'players:',
  /** Sorted set, all scores 0: the id of every live publication, in byte order (what list reads). */
  index: 'pubs',
  /** Set: ids of the publications a node holds (what reaping it removes). */
  nodePublications: 'pubs-of:',
  /** Set: ids of the streams a node counts players of (what reaping it removes). */
  nodePlayers: 'players-of:',
} as const;

/** A node id as it goes into keys (`peers-of:<node>`), checked like every other key part. */
export function checkNodeId(id: string): string {
  return checkName('node id', id);
}

/** An app name as a part of keys (`kv:<app>:…`, `pub:<app>:…`). */
export function checkAppName(app: string): string {
  return checkName('app', app);
}

/**
 * Cluster names, app names and node ids are parts of keys: a ':' would make `kv:<app>:<key>`
 * ambiguous and a brace would break the hash tag. Config already restricts app and cluster
 * names (config.ts NAME_RULE); this guards every other caller.
 */
function checkName(what: string, name: string): string {
  if (name.length === 0 || /[:{}\s]/.test(name)) {
    throw new Error(`cluster keys: ${what} must be non-empty without ':', '{', '}' or spaces, got "${name}"`);
  }
  return name;
}
