import type { ClusterKeys } from './keys.ts';
import { checkIncrement, checkIncrResult, checkKey, checkTtl, type KvStore, notANumber } from './kv.ts';
import { luaScript, type RedisConnection } from './redis-connection.ts';
import { decodeValue, encodeValue } from './value-codec.ts';

/**
 * Adds to the number stored at KEYS[1] (missing: 0), keeping its TTL. Values are
 * value-codec JSON, where a finite number is a bare JSON number, so tonumber() reads it and
 * anything else (a string is stored quoted, an object as {…}) is refused. Lua numbers are
 * doubles, as in JS, and '%.17g' prints them exactly, so 0.1 + 0.2 gives what JS gives
 * (INCRBYFLOAT's long doubles would not). Returns {1, new text}, {0, what is stored} when
 * that is not a finite number, or {2, ±Infinity} on overflow (nothing written).
 */
const INCR = luaScript(`
local stored = redis.call('GET', KEYS[1])
local n = 0
if stored then
  n = tonumber(stored)
  if n == nil or not string.match(stored, '^%-?%d') then return {0, stored} end
end
n = n + tonumber(ARGV[1])
if n == math.huge or n == -math.huge then return {2, n > 0 and 'Infinity' or '-Infinity'} end
local text = string.format('%.17g', n)
redis.call('SET', KEYS[1], text, 'KEEPTTL')
return {1, text}
`);

/** `ctx.kv` in Redis: one string key per app key (`kv:<app>:<key>`), TTL as PX. */
export class RedisKv implements KvStore {
  private readonly redis: RedisConnection;
  private readonly keys: ClusterKeys;

  constructor(redis: RedisConnection, keys: ClusterKeys) {
    this.redis = redis;
    this.keys = keys;
  }

  async get(app: string, key: string): Promise<unknown> {
    const text = await this.redis.command((r) => r.get(this.keys.kv(app, key)));
    return text === null ? null : decodeValue(text);
  }

  async set(app: string, key: string, value: unknown, ttlMs: number): Promise<void> {
    checkKey(key);
    checkTtl(ttlMs);
    const text = encodeValue(value);
    if (ttlMs > 0) await this.redis.command((r) => r.set(this.keys.kv(app, key), text, 'PX', ttlMs));
    else await this.redis.command((r) => r.set(this.keys.kv(app, key), text));
  }

  async delete(app: string, key: string): Promise<void> {
    await this.redis.command((r) => r.del(this.keys.kv(app, key)));
  }

  async incr(app: string, key: string, by: number): Promise<number> {
    checkKey(key);
    checkIncrement(by);
    const reply = await this.redis.run(INCR, [this.keys.kv(app, key)], [String(by)]);
    if (!Array.isArray(reply) || reply.length !== 2) throw new Error('kv.incr: unexpected reply from Redis');
    const [status, text] = reply as [number, string];
    if (status === 1) return Number(text);
    if (status === 2) return checkIncrResult(key, Number(text));
    const current = decodeValue(text);
    // A stored NaN or ±Infinity is a number too, and fails as it does in MemoryKv.
    if (typeof current === 'number') return checkIncrResult(key, current + by);
    throw notANumber(key, current);
  }
}
