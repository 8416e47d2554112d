import { type ClusterKeys, checkAppName, checkNodeId, PUBLICATION_KEYS } from './keys.ts';
import { checkLimit } from './p2p.ts';
import {
  type ClaimResult,
  checkClaim,
  checkPublisher,
  checkStreamName,
  checkSubscribers,
  MAX_PUBLICATIONS_LISTED,
  type PublicationClaim,
  type PublicationInfo,
  type PublicationStore,
} from './publications.ts';
import { LUA_NOW_MS, type LuaScript, luaScript, type RedisConnection } from './redis-connection.ts';

/**
 * Lua for publications (keys.ts PUBLICATION_KEYS), given the cluster prefix in ARGV[`prefixArg`].
 * Every publication script includes it, and so does the node reap (redis-state.ts), which calls
 * `remove_node_publications` for each dead node in the same script. A publication is in three
 * places, always changed together: its `pub:` hash, the index (what list reads) and its node's
 * `pubs-of:` set (what reaping it removes); a player count is in its `players:` hash and its
 * node's `players-of:` set. `info` builds a PublicationInfo, which the scripts answer as JSON:
 * one string crosses the wire and JSON.parse reads it, much cheaper than nested replies.
 */
export function publicationsLua(prefixArg: number): string {
  return `
local P = ARGV[${prefixArg}]
local INDEX = P .. '${PUBLICATION_KEYS.index}'
local function suffix(id)
  local at = string.find(id, '\\0', 1, true)
  return string.sub(id, 1, at - 1) .. ':' .. string.sub(id, at + 1)
end
local function pub_key(id) return P .. '${PUBLICATION_KEYS.pub}' .. suffix(id) end
local function players_key(id) return P .. '${PUBLICATION_KEYS.players}' .. suffix(id) end
local function pubs_of_key(n) return P .. '${PUBLICATION_KEYS.nodePublications}' .. n end
local function players_of_key(n) return P .. '${PUBLICATION_KEYS.nodePlayers}' .. n end
local function info(id)
  local held = redis.call('HMGET', pub_key(id), 'node', 'publisher', 'since')
  if not held[1] then return false end
  local at = string.find(id, '\\0', 1, true)
  local nodes, subscribers = {}, 0
  local players = redis.call('HGETALL', players_key(id))
  for i = 1, #players, 2 do
    local n = tonumber(players[i + 1])
    nodes[players[i]] = n
    subscribers = subscribers + n
  end
  return {
    app = string.sub(id, 1, at - 1),
    name = string.sub(id, at + 1),
    node = held[1],
    publisher = held[2],
    since = tonumber(held[3]),
    subscribers = subscribers,
    nodes = nodes,
  }
end
local function remove_node_publications(node)
  for _, id in ipairs(redis.call('SMEMBERS', pubs_of_key(node))) do
    if redis.call('HGET', pub_key(id), 'node') == node then
      redis.call('DEL', pub_key(id))
      redis.call('ZREM', INDEX, id)
    end
  end
  redis.call('DEL', pubs_of_key(node))
  for _, id in ipairs(redis.call('SMEMBERS', players_of_key(node))) do
    redis.call('HDEL', players_key(id), node)
  end
  redis.call('DEL', players_of_key(node))
end
`;
}

/**
 * ARGV: prefix, id, node, publisher. 1 when the name is (now or still) held by this publisher
 * on this node, `since` kept on a re-claim; the holder's info as JSON when someone else holds it. A
 * re-claim also restores the index entries, as a re-assert after a store restart must.
 */
const CLAIM = luaScript(`${publicationsLua(1)}${LUA_NOW_MS}
local id, node, publisher = ARGV[2], ARGV[3], ARGV[4]
local held = redis.call('HMGET', pub_key(id), 'node', 'publisher')
if held[1] and (held[1] ~= node or held[2] ~= publisher) then return cjson.encode(info(id)) end
if not held[1] then
  redis.call('HSET', pub_key(id), 'node', node, 'publisher', publisher, 'since', now)
end
redis.call('SADD', pubs_of_key(node), id)
redis.call('ZADD', INDEX, 0, id)
return 1
`);

/** ARGV: prefix, id, node, publisher. 1 if that publisher on that node held it (now released). */
const RELEASE = luaScript(`${publicationsLua(1)}
local id, node = ARGV[2], ARGV[3]
local held = redis.call('HMGET', pub_key(id), 'node', 'publisher')
if held[1] ~= node or held[2] ~= ARGV[4] then return 0 end
redis.call('DEL', pub_key(id))
redis.call('ZREM', INDEX, id)
redis.call('SREM', pubs_of_key(node), id)
return 1
`);

/** ARGV: prefix, id. The publication's info as JSON, or nil. */
const GET = luaScript(`${publicationsLua(1)}
local found = info(ARGV[2])
if not found then return false end
return cjson.encode(found)
`);

/** ARGV: prefix, id, node, count. Sets the node's count; 0 removes it. */
const SET_PLAYERS = luaScript(`${publicationsLua(1)}
local id, node = ARGV[2], ARGV[3]
if tonumber(ARGV[4]) == 0 then
  redis.call('HDEL', players_key(id), node)
  redis.call('SREM', players_of_key(node), id)
else
  redis.call('HSET', players_key(id), node, ARGV[4])
  redis.call('SADD', players_of_key(node), id)
end
return 1
`);

/**
 * ARGV: prefix, app ('' for every app), limit. A JSON array of the infos of the first `limit`
 * publications in id order (cjson would write an empty table as {}): a range of the index (ids are `<app>` NUL `<stream>`, so one app is one range).
 */
const LIST = luaScript(`${publicationsLua(1)}
local app, limit = ARGV[2], tonumber(ARGV[3])
local ids
if app == '' then
  ids = redis.call('ZRANGE', INDEX, 0, limit - 1)
else
  ids = redis.call('ZRANGEBYLEX', INDEX, '[' .. app .. '\\0', '(' .. app .. '\\1', 'LIMIT', 0, limit)
end
local out = {}
for _, id in ipairs(ids) do
  local found = info(id)
  if found then out[#out + 1] = cjson.encode(found) end
end
return '[' .. table.concat(out, ',') .. ']'
`);

/** RedisState's publication registry (`state.publications`): one round trip per call, each write one script. */
export class RedisPublications implements PublicationStore {
  private readonly redis: RedisConnection;
  private readonly keys: ClusterKeys;

  constructor(redis: RedisConnection, keys: ClusterKeys) {
    this.redis = redis;
    this.keys = keys;
  }

  async claim(claim: PublicationClaim): Promise<ClaimResult> {
    const c = checkClaim(claim);
    const reply = await this.run(CLAIM, c.app, c.name, [c.node, c.publisher]);
    return reply === 1 ? { ok: true } : { ok: false, holder: infoOf(reply) };
  }

  async release(app: string, name: string, node: string, publisher: string): Promise<boolean> {
    const [a, n] = [checkAppName(app), checkStreamName(name)];
    const reply = await this.run(RELEASE, a, n, [checkNodeId(node), checkPublisher(publisher)]);
    return reply === 1;
  }

  async get(app: string, name: string): Promise<PublicationInfo | undefined> {
    const reply = await this.run(GET, checkAppName(app), checkStreamName(name), []);
    return reply === null ? undefined : infoOf(reply);
  }

  async setSubscribers(app: string, name: string, node: string, count: number): Promise<void> {
    const [a, n] = [checkAppName(app), checkStreamName(name)];
    await this.run(SET_PLAYERS, a, n, [checkNodeId(node), checkSubscribers(count)]);
  }

  async list(app?: string, limit = MAX_PUBLICATIONS_LISTED): Promise<PublicationInfo[]> {
    checkLimit('publications', limit, MAX_PUBLICATIONS_LISTED);
    const only = app === undefined ? '' : checkAppName(app);
    const key = this.keys.publication('index');
    const reply = await this.redis.run(LIST, [key], [this.keys.prefix, only, limit]);
    return JSON.parse(String(reply)) as PublicationInfo[];
  }

  /**
   * Runs a script on one publication with the cluster prefix as ARGV[1] and its id as ARGV[2].
   * KEYS[1], its `pub:` key, only routes it (see RedisP2p.run): the scripts build every key.
   */
  private run(script: LuaScript, app: string, name: string, args: (string | number)[]): Promise<unknown> {
    const key = this.keys.publication('pub', `${app}:${name}`);
    return this.redis.run(script, [key], [this.keys.prefix, `${app}\u0000${name}`, ...args]);
  }
}

/** The info a script wrote as JSON (only these scripts write it: its shape is PublicationInfo). */
function infoOf(reply: unknown): PublicationInfo {
  if (typeof reply !== 'string') throw new Error('state: unexpected reply from a publication script');
  return JSON.parse(reply) as PublicationInfo;
}
