import { checkIncrement, checkIncrResult, checkKey, checkTtl, type KvStore, notANumber } from './kv.ts';
import { decodeValue, encodeValue } from './value-codec.ts';

interface Entry {
  /** As encoded by value-codec.ts, exactly what Redis would hold. */
  text: string;
  /** 0: never. */
  expiresAt: number;
}

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
