import { decodeValue, encodeValue } from './value-codec.ts';

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

interface Entry {
  /** As encoded by value-codec.ts, exactly what Redis would hold. */
  text: string;
  /** 0: never. */
  expiresAt: number;
}

/** Largest key a handler may use (bytes of UTF-16 code units, as in Redis practice). */
export const MAX_KEY_LENGTH = 1024;

/**
 * The standalone node's KV (`fnhost dev`, no Redis): one map per app, expiry checked on
 * read and swept now and then. Values are stored encoded, as RedisKv stores them, so what a
 * handler can store and what it reads back is the same in dev and in a cluster (and no
 * caller can alias a stored value).
 */
export class MemoryKv implements KvStore {
  private readonly apps = new Map<string, Map<string, Entry>>();
  private readonly now: () => number;
  private sets = 0;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  async get(app: string, key: string): Promise<unknown> {
    const entry = this.live(app, key);
    return entry ? decodeValue(entry.text) : null;
  }

  async set(app: string, key: string, value: unknown, ttlMs: number): Promise<void> {
    checkKey(key);
    checkTtl(ttlMs);
    this.table(app).set(key, { text: encodeValue(value), expiresAt: ttlMs > 0 ? this.now() + ttlMs : 0 });
    if (++this.sets % 1024 === 0) this.sweep();
  }

  async delete(app: string, key: string): Promise<void> {
    this.apps.get(app)?.delete(key);
  }

  async incr(app: string, key: string, by: number): Promise<number> {
    checkKey(key);
    checkIncrement(by);
    const entry = this.live(app, key);
    const current = entry ? decodeValue(entry.text) : 0;
    if (typeof current !== 'number') throw notANumber(key, current);
    const value = checkIncrResult(key, current + by);
    this.table(app).set(key, { text: encodeValue(value), expiresAt: entry?.expiresAt ?? 0 });
    return value;
  }

  private live(app: string, key: string): Entry | undefined {
    const table = this.apps.get(app);
    const entry = table?.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== 0 && entry.expiresAt <= this.now()) {
      table?.delete(key);
      return undefined;
    }
    return entry;
  }

  private table(app: string): Map<string, Entry> {
    let t = this.apps.get(app);
    if (!t) {
      t = new Map();
      this.apps.set(app, t);
    }
    return t;
  }

  private sweep(): void {
    const now = this.now();
    for (const table of this.apps.values()) {
      for (const [key, e] of table) if (e.expiresAt !== 0 && e.expiresAt <= now) table.delete(key);
    }
  }
}

/* Argument checks and errors shared with RedisKv, so both refuse the same things alike. */

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
