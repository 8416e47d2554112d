import { type ClusterKeys, checkNodeId, P2P_KEYS } from './keys.ts';
import {
  checkDigest,
  checkLimit,
  checkPeerRecord,
  checkPick,
  type GroupInfo,
  type GroupJoin,
  type GroupLeave,
  type GroupMember,
  type GroupSummary,
  INTRODUCE_NEWEST,
  MAX_GROUPS_LISTED,
  MAX_MEMBERS_LISTED,
  type P2pStore,
  type PeerRecord,
  RECONNECT_DISTANCE,
} from './p2p.ts';
import { type LuaScript, luaScript, type RedisConnection } from './redis-connection.ts';

/**
 * Lua for peers and groups (keys.ts P2P_KEYS), given the cluster prefix in ARGV[`prefixArg`].
 * Every script that changes a peer or a membership includes it, and so does the node reap
 * (redis-state.ts), which calls `remove_node_p2p` for each dead node in the same script.
 * A membership is in three places, always changed together: the group's sorted set (join
 * order), its hash (member → node), and the node's memberships set (what reaping it removes);
 * the `groups` sorted set holds each group's size, set from ZCARD, never counted up or down.
 */
export function p2pLua(prefixArg: number): string {
  return `
local P = ARGV[${prefixArg}]
local function peer_key(p) return P .. '${P2P_KEYS.peer}' .. p end
local function node_peers_key(n) return P .. '${P2P_KEYS.nodePeers}' .. n end
local function group_key(g) return P .. '${P2P_KEYS.group}' .. g end
local function group_nodes_key(g) return P .. '${P2P_KEYS.groupNodes}' .. g end
local function memberships_key(n) return P .. '${P2P_KEYS.nodeMemberships}' .. n end
local GROUPS = P .. '${P2P_KEYS.groups}'
local function peer_node(p)
  local record = redis.call('GET', peer_key(p))
  if not record then return nil end
  return cjson.decode(record).node
end
local function set_size(g)
  local n = redis.call('ZCARD', group_key(g))
  if n == 0 then redis.call('ZREM', GROUPS, g) else redis.call('ZADD', GROUPS, n, g) end
  return n
end
local function drop_member(g, p, node)
  if redis.call('HGET', group_nodes_key(g), p) ~= node then return false end
  redis.call('ZREM', group_key(g), p)
  redis.call('HDEL', group_nodes_key(g), p)
  redis.call('SREM', memberships_key(node), g .. ':' .. p)
  return true
end
local function remove_node_p2p(node)
  for _, p in ipairs(redis.call('SMEMBERS', node_peers_key(node))) do
    if peer_node(p) == node then redis.call('DEL', peer_key(p)) end
  end
  redis.call('DEL', node_peers_key(node))
  for _, m in ipairs(redis.call('SMEMBERS', memberships_key(node))) do
    local g, p = string.sub(m, 1, 64), string.sub(m, 66)
    if drop_member(g, p, node) then set_size(g) end
  end
  redis.call('DEL', memberships_key(node))
end
`;
}

/** ARGV: prefix, peer ID, record JSON, node. A peer registered by another node moves here. */
const PUT_PEER = luaScript(`${p2pLua(1)}
local p, node = ARGV[2], ARGV[4]
local was = peer_node(p)
if was and was ~= node then redis.call('SREM', node_peers_key(was), p) end
redis.call('SET', peer_key(p), ARGV[3])
redis.call('SADD', node_peers_key(node), p)
return 1
`);

/** ARGV: prefix, peer ID, node. 1 if removed; 0 if another node holds it now (or nobody). */
const REMOVE_PEER = luaScript(`${p2pLua(1)}
if peer_node(ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('DEL', peer_key(ARGV[2]))
redis.call('SREM', node_peers_key(ARGV[3]), ARGV[2])
return 1
`);

/**
 * ARGV: prefix, group, peer, node, pick. A new member gets the sequence after the newest; one
 * already there keeps it (moving to `node` if another node held it). Returns {rank, size,
 * {introduce…}}: the newest others, newest first, then one older other chosen by `pick`.
 */
const JOIN_GROUP = luaScript(`${p2pLua(1)}
local g, p, node = ARGV[2], ARGV[3], ARGV[4]
local members = group_key(g)
local owner = redis.call('HGET', group_nodes_key(g), p)
if not owner then
  local last = redis.call('ZREVRANGE', members, 0, 0, 'WITHSCORES')
  local seq = 0
  if #last > 0 then seq = tonumber(last[2]) + 1 end
  redis.call('ZADD', members, seq, p)
elseif owner ~= node then
  redis.call('SREM', memberships_key(owner), g .. ':' .. p)
end
redis.call('HSET', group_nodes_key(g), p, node)
redis.call('SADD', memberships_key(node), g .. ':' .. p)
local size = set_size(g)
local rank = redis.call('ZRANK', members, p)
local introduce = {}
for _, m in ipairs(redis.call('ZREVRANGE', members, 0, ${INTRODUCE_NEWEST})) do
  if m ~= p and #introduce < ${INTRODUCE_NEWEST} then introduce[#introduce + 1] = m end
end
local older = size - 1 - #introduce
if older > 0 then
  local j = math.min(older - 1, math.floor(tonumber(ARGV[5]) * older))
  if j >= rank then j = j + 1 end
  introduce[#introduce + 1] = redis.call('ZRANGE', members, j, j)[1]
end
return {rank, size, introduce}
`);

/**
 * ARGV: prefix, group, peer, node. Nil if `node` does not hold that member; else {size} or
 * {size, successor, its node, the member ${RECONNECT_DISTANCE} places before the successor}.
 */
const LEAVE_GROUP = luaScript(`${p2pLua(1)}
local g, p, node = ARGV[2], ARGV[3], ARGV[4]
local members = group_key(g)
local at = redis.call('ZRANK', members, p)
if not at or not drop_member(g, p, node) then return false end
local size = set_size(g)
local successor = redis.call('ZRANGE', members, at, at)[1]
local before = at - ${RECONNECT_DISTANCE - 1}
if successor and before >= 0 then
  local node_of = redis.call('HGET', group_nodes_key(g), successor)
  return {size, successor, node_of, redis.call('ZRANGE', members, before, before)[1]}
end
return {size}
`);

/** ARGV: prefix, group, limit. {peer IDs in join order, their nodes}. */
const MEMBERS = luaScript(`${p2pLua(1)}
local ids = redis.call('ZRANGE', group_key(ARGV[2]), 0, tonumber(ARGV[3]) - 1)
if #ids == 0 then return {{}, {}} end
return {ids, redis.call('HMGET', group_nodes_key(ARGV[2]), unpack(ids))}
`);

/** ARGV: prefix, group. {node, members there, …}: counted here, so only nodes cross the wire. */
const GROUP = luaScript(`${p2pLua(1)}
local counts, nodes = {}, {}
for _, n in ipairs(redis.call('HVALS', group_nodes_key(ARGV[2]))) do
  if not counts[n] then
    counts[n] = 0
    nodes[#nodes + 1] = n
  end
  counts[n] = counts[n] + 1
end
local out = {}
for _, n in ipairs(nodes) do
  out[#out + 1] = n
  out[#out + 1] = counts[n]
end
return out
`);

/** RedisState's peers and groups (`state.p2p`): one round trip per call, each write one script. */
export class RedisP2p implements P2pStore {
  private readonly redis: RedisConnection;
  private readonly keys: ClusterKeys;

  constructor(redis: RedisConnection, keys: ClusterKeys) {
    this.redis = redis;
    this.keys = keys;
  }

  async putPeer(peerId: string, peer: PeerRecord): Promise<void> {
    const id = checkDigest('peer ID', peerId);
    const record = checkPeerRecord(peer);
    await this.run(PUT_PEER, this.keys.p2p('peer', id), [id, JSON.stringify(record), record.node]);
  }

  async removePeer(peerId: string, node: string): Promise<boolean> {
    const id = checkDigest('peer ID', peerId);
    return (await this.run(REMOVE_PEER, this.keys.p2p('peer', id), [id, node])) === 1;
  }

  async peer(peerId: string): Promise<PeerRecord | undefined> {
    const key = this.keys.p2p('peer', checkDigest('peer ID', peerId));
    const json = await this.redis.command((r) => r.get(key));
    return json === null ? undefined : (JSON.parse(json) as PeerRecord);
  }

  async joinGroup(groupId: string, peerId: string, node: string, pick = Math.random()): Promise<GroupJoin> {
    const member = this.member(groupId, peerId, node);
    const reply = await this.run(JOIN_GROUP, this.keys.p2p('group', member[0]), [...member, checkPick(pick)]);
    const [position, size, introduce] = reply as [number, number, string[]];
    return { position, size, introduce };
  }

  async leaveGroup(groupId: string, peerId: string, node: string): Promise<GroupLeave | undefined> {
    const member = this.member(groupId, peerId, node);
    const reply = (await this.run(LEAVE_GROUP, this.keys.p2p('group', member[0]), member)) as
      | [number, string?, string?, string?]
      | null;
    if (reply === null) return undefined;
    const [size, successor, node_, older] = reply;
    if (successor === undefined || node_ === undefined || older === undefined) return { size };
    return { size, reconnect: { to: { peerId: successor, node: node_ }, peerId: older } };
  }

  async members(groupId: string, limit = MAX_MEMBERS_LISTED): Promise<GroupMember[]> {
    const g = checkDigest('group ID', groupId);
    checkLimit('members', limit, MAX_MEMBERS_LISTED);
    const [ids, nodes] = (await this.run(MEMBERS, this.keys.p2p('group', g), [g, limit])) as [
      string[],
      (string | null)[],
    ];
    return ids.map((peerId, i) => ({ peerId, node: nodes[i] ?? '' }));
  }

  async group(groupId: string): Promise<GroupInfo> {
    const g = checkDigest('group ID', groupId);
    const reply = (await this.run(GROUP, this.keys.p2p('group', g), [g])) as (string | number)[];
    const nodes: Record<string, number> = {};
    let size = 0;
    for (let i = 0; i < reply.length; i += 2) {
      nodes[String(reply[i])] = Number(reply[i + 1]);
      size += Number(reply[i + 1]);
    }
    return { size, nodes };
  }

  async groups(limit = MAX_GROUPS_LISTED): Promise<GroupSummary[]> {
    checkLimit('groups', limit, MAX_GROUPS_LISTED);
    const key = this.keys.p2p('groups');
    const reply = await this.redis.command((r) => r.zrevrange(key, 0, limit - 1, 'WITHSCORES'));
    const list: GroupSummary[] = [];
    for (let i = 0; i < reply.length; i += 2) list.push({ id: reply[i], size: Number(reply[i + 1]) });
    return list;
  }

  /**
   * Runs a script with the cluster prefix as ARGV[1], from which it builds every key. KEYS[1]
   * is its main key, only to route it: Redis Cluster sends a script to the slot of its keys,
   * and the `{cluster}` hash tag puts every key of the cluster in that slot.
   */
  private run(script: LuaScript, mainKey: string, args: (string | number)[]): Promise<unknown> {
    return this.redis.run(script, [mainKey], [this.keys.prefix, ...args]);
  }

  private member(groupId: string, peerId: string, node: string): [string, string, string] {
    return [checkDigest('group ID', groupId), checkDigest('peer ID', peerId), checkNodeId(node)];
  }
}
