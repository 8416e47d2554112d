import pino, { type Logger } from 'pino';
import { MemoryKv } from './memory-kv.ts';
import { MemoryP2p } from './memory-p2p.ts';
import { MemoryPublications } from './memory-publications.ts';
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

export interface MemoryStateOptions {
  /** The store's clock, ms; tests inject one to move time by hand. */
  now?: () => number;
  /** Where a subscriber's exception is reported (default: pino to stdout). */
  logger?: Logger;
}

interface LiveNode {
  record: NodeRecord;
  expiresAt: number;
}

interface AppHistory {
  /** Newest first. */
  versions: VersionInfo[];
  active: string | undefined;
  bundles: Map<string, StoredBundle>;
  secrets: Map<string, string>;
  secretsRevision: number;
}

/**
 * The standalone node's State (`fnhost dev`, no Redis), held in this process. It mirrors
 * RedisState step for step (same contract suite): the `nodes` index and node records are kept
 * apart, as the sorted set and the expiring keys are in Redis, so reap() behaves the same.
 * Everything stored or returned is a copy, so no caller can alias stored data.
 */
export class MemoryState implements State {
  readonly kind = 'memory';
  readonly kv: MemoryKv;
  readonly p2p = new MemoryP2p();
  readonly publications: MemoryPublications;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly records = new Map<string, LiveNode>();
  /** id → last heartbeat (the sorted set `nodes`). */
  private readonly index = new Map<string, number>();
  private readonly byApp = new Map<string, AppHistory>();
  private readonly channels = new Map<string, Set<(message: string) => void>>();
  /** node → client → when its seat lapses (the sorted sets `seats:<node>`). */
  private readonly seatsAt = new Map<string, Map<string, number>>();
  private lastTime = 0;
  private secret: string | undefined;

  constructor(o: MemoryStateOptions = {}) {
    this.now = o.now ?? Date.now;
    this.logger = o.logger ?? pino({ name: 'fnhost-state' });
    this.kv = new MemoryKv(this.now);
    this.publications = new MemoryPublications(() => (this.lastTime = Math.max(this.lastTime, this.now())));
  }

  async time(): Promise<number> {
    // Monotonic like Redis TIME on one server, even if the injected clock steps back.
    this.lastTime = Math.max(this.lastTime, this.now());
    return this.lastTime;
  }

  async heartbeat(record: NodeRecord, ttlMs: number): Promise<void> {
    checkNodeTtl(ttlMs);
    const now = await this.time();
    this.records.set(record.id, { record: structuredClone(record), expiresAt: now + ttlMs });
    this.index.set(record.id, now);
  }

  async leave(id: string, epoch: string): Promise<void> {
    const live = this.live(id);
    if (live?.record.epoch !== epoch) return;
    this.removeNode(id);
  }

  async nodes(): Promise<NodeEntry[]> {
    const entries: NodeEntry[] = [];
    for (const [id, heartbeatAt] of this.index) {
      const live = this.live(id);
      if (live) entries.push({ ...structuredClone(live.record), heartbeatAt });
    }
    return entries;
  }

  async reap(): Promise<string[]> {
    const dead = [...this.index.keys()].filter((id) => !this.live(id));
    for (const id of dead) this.removeNode(id);
    return dead;
  }

  async putBundle(app: string, bundle: StoredBundle): Promise<void> {
    this.history(app).bundles.set(bundle.hash, structuredClone(bundle));
  }

  async getBundle(app: string, hash: string): Promise<StoredBundle | undefined> {
    const bundle = this.byApp.get(app)?.bundles.get(hash);
    return bundle && structuredClone(bundle);
  }

  async deploy(app: string, version: VersionInfo): Promise<void> {
    const h = this.history(app);
    h.versions.unshift(structuredClone(version));
    const dropped = h.versions.splice(MAX_VERSIONS);
    const kept = new Set(h.versions.map((v) => v.hash));
    for (const v of dropped) if (!kept.has(v.hash)) h.bundles.delete(v.hash);
    h.active = version.hash;
  }

  async activate(app: string, hash: string): Promise<boolean> {
    const h = this.byApp.get(app);
    if (!h?.versions.some((v) => v.hash === hash)) return false;
    h.active = hash;
    return true;
  }

  async active(app: string): Promise<string | undefined> {
    return this.byApp.get(app)?.active;
  }

  async versions(app: string): Promise<VersionInfo[]> {
    return structuredClone(this.byApp.get(app)?.versions ?? []);
  }

  async apps(): Promise<string[]> {
    return [...this.byApp].filter(([, h]) => h.active !== undefined).map(([name]) => name);
  }

  async clusterSecret(): Promise<string> {
    this.secret ??= newClusterSecret();
    return this.secret;
  }

  async putSecret(app: string, name: string, value: string): Promise<number> {
    const h = this.history(app);
    if (h.secrets.get(name) !== value) {
      h.secrets.set(name, value);
      h.secretsRevision++;
    }
    return h.secretsRevision;
  }

  async deleteSecret(app: string, name: string): Promise<number | undefined> {
    const h = this.byApp.get(app);
    if (!h?.secrets.delete(name)) return undefined;
    return ++h.secretsRevision;
  }

  async secrets(app: string): Promise<AppSecrets> {
    const h = this.byApp.get(app);
    return { values: Object.fromEntries(h?.secrets ?? []), revision: h?.secretsRevision ?? 0 };
  }

  async addSeat(node: string, client: string, ttlMs: number): Promise<void> {
    checkNodeTtl(ttlMs, 'state.addSeat');
    const now = await this.time();
    let seats = this.seatsAt.get(node);
    if (!seats) {
      seats = new Map();
      this.seatsAt.set(node, seats);
    }
    for (const [c, until] of seats) if (until <= now) seats.delete(c);
    seats.set(client, now + ttlMs);
  }

  async hasSeat(node: string, client: string): Promise<boolean> {
    return (this.seatsAt.get(node)?.get(client) ?? 0) > (await this.time());
  }

  async seats(
    nodes: readonly string[],
    lapsingAfter: Readonly<Record<string, number>> = {},
  ): Promise<Record<string, number>> {
    const now = await this.time();
    const counts: Record<string, number> = {};
    for (const node of nodes) {
      const after = Math.max(now, lapsingAfter[node] ?? 0);
      let n = 0;
      for (const until of this.seatsAt.get(node)?.values() ?? []) if (until > after) n++;
      if (n > 0) counts[node] = n;
    }
    return counts;
  }

  async publish(channel: string, message: string): Promise<void> {
    const handlers = this.channels.get(channel);
    if (!handlers) return;
    // Delivered after publish() returns, as over Redis, to the handlers subscribed now.
    for (const handler of [...handlers]) {
      queueMicrotask(() => {
        if (!handlers.has(handler)) return;
        try {
          handler(message);
        } catch (err) {
          this.reportHandlerError(channel, err);
        }
      });
    }
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    let handlers = this.channels.get(channel);
    if (!handlers) {
      handlers = new Set();
      this.channels.set(channel, handlers);
    }
    // A wrapper, so subscribing the same function twice gives two independent subscriptions.
    const entry = (message: string) => handler(message);
    handlers.add(entry);
    return async () => {
      handlers.delete(entry);
      if (handlers.size === 0 && this.channels.get(channel) === handlers) this.channels.delete(channel);
    };
  }

  onStatus(_handler: (status: 'up' | 'down') => void): void {
    // Memory is never unreachable.
  }

  onRoundTrip(_listener: RoundTripListener): void {
    // Memory has no round trips.
  }

  async close(): Promise<void> {
    this.channels.clear();
  }

  private live(id: string): LiveNode | undefined {
    const live = this.records.get(id);
    if (!live) return undefined;
    if (live.expiresAt <= this.now()) {
      this.records.delete(id);
      return undefined;
    }
    return live;
  }

  /** A node and what it owns: peers, group members, publications and player counts. */
  private removeNode(id: string): void {
    this.records.delete(id);
    this.index.delete(id);
    this.p2p.removeNode(id);
    this.publications.removeNode(id);
  }

  private history(app: string): AppHistory {
    let h = this.byApp.get(app);
    if (!h) {
      h = { versions: [], active: undefined, bundles: new Map(), secrets: new Map(), secretsRevision: 0 };
      this.byApp.set(app, h);
    }
    return h;
  }

  private reportHandlerError(channel: string, err: unknown): void {
    this.logger.error({ err, channel }, 'state: a subscriber threw; the message is lost for it');
  }
}
