import pino, { type Logger } from 'pino';
import { type ClusterKeys, clusterKeys } from './keys.ts';
import { LUA_NOW_MS, luaScript, RedisConnection, type RedisRetry } from './redis-connection.ts';
import { RedisKv } from './redis-kv.ts';
import { p2pLua, RedisP2p } from './redis-p2p.ts';
import { publicationsLua, RedisPublications } from './redis-publications.ts';
import {
  type AppSecrets,
  checkNodeTtl,
  MAX_VERSIONS,
  type NodeEntry,
  type NodeRecord,
  newClusterSecret,
  type RoundTripListener,
  type State,
  type StoredBundle,
  type VersionInfo,
} from './state.ts';

/*
 * Lua scripts: each write that must stay consistent with another is one of these (atomic,
 * idempotent). Key names come from keys.ts; scripts that walk the node index derive node keys
 * from a prefix, which the `{cluster}` hash tag keeps in the same Redis Cluster slot.
 */

/**
 * Removes node `id` and what it owns: its peers and group members (redis-p2p.ts), its
 * publications and its player counts (redis-publications.ts), with the cluster prefix in
 * ARGV[`prefixArg`]; leave() and reap() both run it, so either cleans up all of them at once.
 */
const removeNode = (prefixArg: number) => `${p2pLua(prefixArg)}${publicationsLua(prefixArg)}
local function remove_node(nodes, node_prefix, id)
  redis.call('DEL', node_prefix .. id)
  redis.call('ZREM', nodes, id)
  remove_node_p2p(id)
  remove_node_publications(id)
end
`;

/** KEYS: node, nodes. ARGV: record JSON, ttl ms, id. Returns the heartbeat time. */
const HEARTBEAT = luaScript(`${LUA_NOW_MS}
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[3])
return now
`);

/** KEYS: nodes. ARGV: node key prefix. Returns {heartbeat, record JSON, …} of live nodes. */
const NODES = luaScript(`
local ids = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #ids, 2 do
  local record = redis.call('GET', ARGV[1] .. ids[i])
  if record then
    out[#out + 1] = ids[i + 1]
    out[#out + 1] = record
  end
end
return out
`);

/**
 * KEYS: nodes. ARGV: node key prefix, cluster prefix. Every indexed node whose record has
 * expired is removed with its peers, members, publications and player counts, and returned; being one script, two reapers
 * can never both get the same id. A full scan of the index: it holds one entry per node, and
 * TTLs differ per node.
 */
const REAP = luaScript(`${removeNode(2)}
local dead = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', ARGV[1] .. id) == 0 then
    remove_node(KEYS[1], ARGV[1], id)
    dead[#dead + 1] = id
  end
end
return dead
`);

/**
 * KEYS: node, nodes. ARGV: epoch, node key prefix, id, cluster prefix. Removes the node (and
 * what it owns) only if its epoch matches.
 */
const LEAVE = luaScript(`${removeNode(4)}
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
local ok, node = pcall(cjson.decode, record)
if not ok or node.epoch ~= ARGV[1] then return 0 end
remove_node(KEYS[2], ARGV[2], ARGV[3])
return 1
`);

/**
 * KEYS: versions, active, apps. ARGV: version JSON, hash, max versions, bundle key prefix,
 * app. Prepends the version, trims the history and deletes the bundles no kept version uses,
 * points active at it.
 */
const DEPLOY = luaScript(`
redis.call('LPUSH', KEYS[1], ARGV[1])
local max = tonumber(ARGV[3])
local dropped = redis.call('LRANGE', KEYS[1], max, -1)
if #dropped > 0 then
  redis.call('LTRIM', KEYS[1], 0, max - 1)
  local kept = {}
  for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do kept[cjson.decode(v).hash] = true end
  for _, v in ipairs(dropped) do
    local hash = cjson.decode(v).hash
    if not kept[hash] then redis.call('DEL', ARGV[4] .. hash) end
  end
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[5])
return 1
`);

/** KEYS: versions, active, apps. ARGV: hash, app. Activates `hash` only if it is in the history. */
const ACTIVATE = luaScript(`
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if cjson.decode(v).hash == ARGV[1] then
    redis.call('SET', KEYS[2], ARGV[1])
    redis.call('SADD', KEYS[3], ARGV[2])
    return 1
  end
end
return 0
`);

/** KEYS: secret. ARGV: a new secret. The stored secret, storing ARGV[1] if there is none. */
const CLUSTER_SECRET = luaScript(`
local secret = redis.call('GET', KEYS[1])
if secret then return secret end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`);

/** KEYS: secrets, revision. ARGV: name, value. The revision, raised unless the value is unchanged. */
const PUT_SECRET = luaScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return tonumber(redis.call('GET', KEYS[2]) or '0') end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])
`);

/** KEYS: secrets, revision. ARGV: name. The raised revision, or nil if there was no such secret. */
const DELETE_SECRET = luaScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('INCR', KEYS[2])
`);

/** KEYS: secrets, revision. {revision, {name, value, …}}, read together. */
const SECRETS = luaScript(`
return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])}
`);

/**
 * KEYS: the node's seats. ARGV: client, ttl ms. Drops the node's lapsed seats, adds this one
 * (score: when it lapses), and keeps the set alive as long as its longest seat.
 */
const ADD_SEAT = luaScript(`${LUA_NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`);

/** KEYS: the node's seats. ARGV: client. 1 if its seat is there and has not lapsed. */
const HAS_SEAT = luaScript(`${LUA_NOW_MS}
local lapses = redis.call('ZSCORE', KEYS[1], ARGV[1])
if lapses and tonumber(lapses) > now then return 1 end
return 0
`);

/**
 * KEYS: seats of each node. ARGV: for each, count only seats lapsing after this (ms, 0: now).
 * The counts, in order (ZCOUNT: no member is read).
 */
const SEATS = luaScript(`${LUA_NOW_MS}
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('ZCOUNT', key, '(' .. math.max(now, tonumber(ARGV[i])), '+inf')
end
return counts
`);

export interface RedisStateOptions {
  /** Cluster name: every key and channel lives under `fnhost:{<cluster>}:`. */
  cluster: string;
  /** Connection warnings and subscriber errors (default: pino to stdout). */
  logger?: Logger;
  /** Gives up connecting (connect() rejects, retrying stops). */
  signal?: AbortSignal;
  /** The first connection error fails connect() at once, instead of retrying (CLI commands). */
  failFast?: boolean;
  /** Told of every retry until connect() settles (each is logged too). */
  onRetry?: (retry: RedisRetry) => void;
}

/**
 * The cluster's State in Redis (DESIGN.md "Cluster state"). Publishing is the caller's job
 * (deploy() does not announce on `deploy`): the store stays dumb and MemoryState matches.
 */
export class RedisState implements State {
  readonly kind = 'redis';
  readonly kv: RedisKv;
  readonly p2p: RedisP2p;
  readonly publications: RedisPublications;
  readonly keys: ClusterKeys;
  private readonly redis: RedisConnection;

  private constructor(redis: RedisConnection, keys: ClusterKeys) {
    this.redis = redis;
    this.keys = keys;
    this.kv = new RedisKv(redis, keys);
    this.p2p = new RedisP2p(redis, keys);
    this.publications = new RedisPublications(redis, keys);
  }

  /**
   * Connects to `redis://`, `rediss://` or `redis+sentinel://` (see redisOptionsFromUrl).
   * Resolves once Redis answers; while it is unreachable this logs a warning and keeps
   * retrying with backoff (≤ 2 s), so a node can start before its Redis. Rejects at once on
   * what retrying can't fix (bad URL, wrong password) and when `signal` aborts.
   */
  static async connect(url: string, o: RedisStateOptions): Promise<RedisState> {
    const keys = clusterKeys(o.cluster);
    const logger = o.logger ?? pino({ name: 'fnhost-state' });
    const { signal, failFast, onRetry } = o;
    const redis = await RedisConnection.open(url, {
      name: `fnhost:${o.cluster}`,
      logger,
      signal,
      failFast,
      onRetry,
    });
    return new RedisState(redis, keys);
  }

  async time(): Promise<number> {
    const [seconds, micros] = await this.redis.command((r) => r.time());
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  async heartbeat(record: NodeRecord, ttlMs: number): Promise<void> {
    checkNodeTtl(ttlMs);
    const k = this.keys;
    await this.redis.run(HEARTBEAT, [k.node(record.id), k.nodes], [JSON.stringify(record), ttlMs, record.id]);
  }

  async leave(id: string, epoch: string): Promise<void> {
    const k = this.keys;
    await this.redis.run(LEAVE, [k.node(id), k.nodes], [epoch, k.nodePrefix, id, k.prefix]);
  }

  async nodes(): Promise<NodeEntry[]> {
    const reply = strings(await this.redis.run(NODES, [this.keys.nodes], [this.keys.nodePrefix]));
    const entries: NodeEntry[] = [];
    for (let i = 0; i < reply.length; i += 2) {
      // Only this module writes node records. JSON drops `http: undefined`; put it back.
      const record = JSON.parse(reply[i + 1]) as NodeRecord;
      entries.push({ ...record, http: record.http ?? undefined, heartbeatAt: Number(reply[i]) });
    }
    return entries;
  }

  async reap(): Promise<string[]> {
    const k = this.keys;
    return strings(await this.redis.run(REAP, [k.nodes], [k.nodePrefix, k.prefix]));
  }

  async putBundle(app: string, bundle: StoredBundle): Promise<void> {
    const { hash, code, map } = bundle;
    await this.redis.command((r) => r.hset(this.keys.bundle(app, hash), { hash, code, map }));
  }

  async getBundle(app: string, hash: string): Promise<StoredBundle | undefined> {
    const b = await this.redis.command((r) => r.hgetall(this.keys.bundle(app, hash)));
    if (b.hash === undefined) return undefined;
    return { hash: b.hash, code: b.code ?? '', map: b.map ?? '' };
  }

  async deploy(app: string, version: VersionInfo): Promise<void> {
    const k = this.keys;
    await this.redis.run(
      DEPLOY,
      [k.versions(app), k.active(app), k.apps],
      [JSON.stringify(version), version.hash, MAX_VERSIONS, k.bundlePrefix(app), app],
    );
  }

  async activate(app: string, hash: string): Promise<boolean> {
    const k = this.keys;
    return (await this.redis.run(ACTIVATE, [k.versions(app), k.active(app), k.apps], [hash, app])) === 1;
  }

  async active(app: string): Promise<string | undefined> {
    return (await this.redis.command((r) => r.get(this.keys.active(app)))) ?? undefined;
  }

  async versions(app: string): Promise<VersionInfo[]> {
    const list = await this.redis.command((r) => r.lrange(this.keys.versions(app), 0, -1));
    return list.map((json) => JSON.parse(json) as VersionInfo);
  }

  async apps(): Promise<string[]> {
    return this.redis.command((r) => r.smembers(this.keys.apps));
  }

  async clusterSecret(): Promise<string> {
    return String(await this.redis.run(CLUSTER_SECRET, [this.keys.clusterSecret], [newClusterSecret()]));
  }

  async putSecret(app: string, name: string, value: string): Promise<number> {
    const k = this.keys;
    return Number(await this.redis.run(PUT_SECRET, [k.secrets(app), k.secretsRevision(app)], [name, value]));
  }

  async deleteSecret(app: string, name: string): Promise<number | undefined> {
    const k = this.keys;
    const revision = await this.redis.run(DELETE_SECRET, [k.secrets(app), k.secretsRevision(app)], [name]);
    return revision === null ? undefined : Number(revision);
  }

  async secrets(app: string): Promise<AppSecrets> {
    const k = this.keys;
    const [revision, pairs] = (await this.redis.run(
      SECRETS,
      [k.secrets(app), k.secretsRevision(app)],
      [],
    )) as [string, string[]];
    const values: Record<string, string> = {};
    for (let i = 0; i < pairs.length; i += 2) values[pairs[i]] = pairs[i + 1];
    return { values, revision: Number(revision) };
  }

  async addSeat(node: string, client: string, ttlMs: number): Promise<void> {
    checkNodeTtl(ttlMs, 'state.addSeat');
    await this.redis.run(ADD_SEAT, [this.keys.seats(node)], [client, ttlMs]);
  }

  async hasSeat(node: string, client: string): Promise<boolean> {
    return (await this.redis.run(HAS_SEAT, [this.keys.seats(node)], [client])) === 1;
  }

  async seats(
    nodes: readonly string[],
    lapsingAfter: Readonly<Record<string, number>> = {},
  ): Promise<Record<string, number>> {
    if (nodes.length === 0) return {};
    const reply = await this.redis.run(
      SEATS,
      nodes.map((n) => this.keys.seats(n)),
      nodes.map((n) => Math.floor(lapsingAfter[n] ?? 0)),
    );
    const counts: Record<string, number> = {};
    strings(reply).forEach((n, i) => {
      if (Number(n) > 0) counts[nodes[i]] = Number(n);
    });
    return counts;
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.redis.command((r) => r.publish(this.keys.channel(channel), message));
  }

  subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    return this.redis.subscribe(this.keys.channel(channel), handler);
  }

  onStatus(handler: (status: 'up' | 'down') => void): void {
    this.redis.onStatus(handler);
  }

  onRoundTrip(listener: RoundTripListener): void {
    this.redis.onRoundTrip(listener);
  }

  close(): Promise<void> {
    return this.redis.close();
  }
}

function strings(reply: unknown): string[] {
  if (!Array.isArray(reply)) throw new Error('state: unexpected reply from a Redis script');
  return reply.map(String);
}
