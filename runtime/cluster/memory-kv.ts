/** App-scoped key/value store behind `ctx.kv`. */
export interface KvStore {
  get(app: string, key: string): Promise<unknown>;
  /** `ttlMs` 0: no expiry. */
  set(app: string, key: string, value: unknown, ttlMs: number): Promise<void>;
  delete(app: string, key: string): Promise<void>;
  /** Adds `by` to a number (missing counts as 0); resolves to the new value. */
  incr(app: string, key: string, by: number): Promise<number>;
}

interface Entry {
  value: unknown;
  /** 0: never. */
  expiresAt: number;
}

/** Largest key a handler may use (bytes of UTF-16 code units, as in Redis practice). */
export const MAX_KEY_LENGTH = 1024;

/**
 * The standalone node's KV (`fnhost dev`, no Redis): one map per app, expiry checked on
 * read and swept now and then. Values are kept as handed in (the sandbox copies them).
 */
export class MemoryKv implements KvStore {
  private readonly apps = new Map<string, Map<string, Entry>>();
  private readonly now: () => number;
  private sets = 0;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  async get(app: string, key: string): Promise<unknown> {
    return this.live(app, key)?.value ?? null;
  }

  async set(app: string, key: string, value: unknown, ttlMs: number): Promise<void> {
    checkKey(key);
    this.table(app).set(key, { value, expiresAt: ttlMs > 0 ? this.now() + ttlMs : 0 });
    if (++this.sets % 1024 === 0) this.sweep();
  }

  async delete(app: string, key: string): Promise<void> {
    this.apps.get(app)?.delete(key);
  }

  async incr(app: string, key: string, by: number): Promise<number> {
    checkKey(key);
    if (!Number.isFinite(by)) throw new Error(`kv.incr: "by" must be a finite number, got ${by}`);
    const entry = this.live(app, key);
    const current = entry?.value ?? 0;
    if (typeof current !== 'number')
      throw new Error(`kv.incr: "${key}" holds a ${typeof current}, not a number`);
    const value = current + by;
    this.table(app).set(key, { value, expiresAt: entry?.expiresAt ?? 0 });
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

function checkKey(key: string): void {
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new Error(`kv: keys must be 1..${MAX_KEY_LENGTH} characters, got ${key.length}`);
  }
}
