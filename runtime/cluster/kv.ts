/**
 * `ctx.kv`: the app-scoped key/value store both States offer (MemoryKv, RedisKv), and the
 * argument checks they share, so both refuse the same things alike.
 */

/** App-scoped key/value store behind `ctx.kv`. */
export interface KvStore {
  /** The stored value, or null when missing or expired. */
  get(app: string, key: string): Promise<unknown>;
  /** `ttlMs` 0: no expiry. Replaces the value and its TTL. */
  set(app: string, key: string, value: unknown, ttlMs: number): Promise<void>;
  delete(app: string, key: string): Promise<void>;
  /** Adds `by` to a number (missing counts as 0), keeping its TTL; resolves to the new value. */
  incr(app: string, key: string, by: number): Promise<number>;
}

/** Largest key a handler may use (bytes of UTF-16 code units, as in Redis practice). */
export const MAX_KEY_LENGTH = 1024;

export function checkKey(key: string): void {
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new Error(`kv: keys must be 1..${MAX_KEY_LENGTH} characters, got ${key.length}`);
  }
}

export function checkTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0) {
    throw new Error(`kv.set: ttlMs must be a whole number of ms >= 0 (0: no expiry), got ${ttlMs}`);
  }
}

export function checkIncrement(by: number): void {
  if (!Number.isFinite(by)) throw new Error(`kv.incr: "by" must be a finite number, got ${by}`);
}

export function checkIncrResult(key: string, value: number): number {
  if (!Number.isFinite(value))
    throw new Error(`kv.incr: "${key}" would become ${value}; nothing was changed`);
  return value;
}

export function notANumber(key: string, current: unknown): Error {
  const type = typeof current;
  const what =
    current === null
      ? 'null'
      : Array.isArray(current)
        ? 'an array'
        : `${type === 'object' ? 'an' : 'a'} ${type}`;
  return new Error(`kv.incr: "${key}" holds ${what}, not a number`);
}
