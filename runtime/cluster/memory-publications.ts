import { checkAppName, checkNodeId } from './keys.ts';
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

interface Held extends PublicationClaim {
  since: number;
}

/**
 * MemoryState's publication registry (`state.publications`), step for step what the Redis
 * one does (same contract suite). Keys are `app` NUL `name`: neither may hold a NUL. list()
 * orders them by their UTF-8 bytes, as Redis orders its index (JS string order differs past
 * U+FFFF).
 */
export class MemoryPublications implements PublicationStore {
  private readonly held = new Map<string, Held>();
  /** key → node → players there. */
  private readonly players = new Map<string, Map<string, number>>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  async claim(claim: PublicationClaim): Promise<ClaimResult> {
    const c = checkClaim(claim);
    const key = keyOf(c.app, c.name);
    const holder = this.held.get(key);
    if (holder && (holder.publisher !== c.publisher || holder.node !== c.node)) {
      return { ok: false, holder: this.info(key, holder) };
    }
    if (!holder) this.held.set(key, { ...c, since: this.now() });
    return { ok: true };
  }

  async release(app: string, name: string, node: string, publisher: string): Promise<boolean> {
    const key = keyOf(checkAppName(app), checkStreamName(name));
    checkNodeId(node);
    const lower = checkPublisher(publisher);
    const holder = this.held.get(key);
    if (!holder || holder.node !== node || holder.publisher !== lower) return false;
    return this.held.delete(key);
  }

  async get(app: string, name: string): Promise<PublicationInfo | undefined> {
    const key = keyOf(checkAppName(app), checkStreamName(name));
    const holder = this.held.get(key);
    return holder && this.info(key, holder);
  }

  async setSubscribers(app: string, name: string, node: string, count: number): Promise<void> {
    const key = keyOf(checkAppName(app), checkStreamName(name));
    checkNodeId(node);
    checkSubscribers(count);
    let nodes = this.players.get(key);
    if (count === 0) {
      nodes?.delete(node);
      if (nodes?.size === 0) this.players.delete(key);
      return;
    }
    if (!nodes) {
      nodes = new Map();
      this.players.set(key, nodes);
    }
    nodes.set(node, count);
  }

  async list(app?: string, limit = MAX_PUBLICATIONS_LISTED): Promise<PublicationInfo[]> {
    checkLimit('publications', limit, MAX_PUBLICATIONS_LISTED);
    if (app !== undefined) checkAppName(app);
    return [...this.held]
      .filter(([, h]) => app === undefined || h.app === app)
      .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .slice(0, limit)
      .map(([key, h]) => this.info(key, h));
  }

  /** A node died or left: its publications and its player counts go. */
  removeNode(node: string): void {
    for (const [key, h] of this.held) if (h.node === node) this.held.delete(key);
    for (const [key, nodes] of this.players) {
      nodes.delete(node);
      if (nodes.size === 0) this.players.delete(key);
    }
  }

  private info(key: string, h: Held): PublicationInfo {
    const nodes: Record<string, number> = {};
    let subscribers = 0;
    for (const [node, n] of this.players.get(key) ?? []) {
      nodes[node] = n;
      subscribers += n;
    }
    return {
      app: h.app,
      name: h.name,
      node: h.node,
      publisher: h.publisher,
      since: h.since,
      subscribers,
      nodes,
    };
  }
}

function keyOf(app: string, name: string): string {
  return `${app}\u0000${name}`;
}
