import type { NodeEntry } from '../cluster/state.ts';

/** A link with no user lingers this long, so players coming and going do not reopen it each time. */
export const LINK_IDLE_MS = 10_000;

/**
 * States in which a node serves links. A draining node still serves its publications until its
 * deadline sends its clients elsewhere (DESIGN.md "Drain has a deadline"), so relays from it go
 * on and new ones may start; a stopping node is leaving now.
 */
const LINKABLE: ReadonlySet<NodeEntry['state']> = new Set(['serving', 'draining']);

/** Whether links may be opened to, and kept to, a node in `state`. */
export function linkable(state: NodeEntry['state']): boolean {
  return LINKABLE.has(state);
}

/** What the table needs of a link: the far node's epoch once it answered (undefined while opening). */
export interface TableLink {
  readonly farEpoch: string | undefined;
}

interface Entry<L> {
  link: L;
  users: number;
  /** When the last user left; Infinity while it has users. */
  idleSince: number;
}

/**
 * This node's media links to other nodes, one per far node (issue 10: one copy per (stream,
 * node) needs one link per pair of nodes), with how many relays use each, and which ones are
 * due to close: idle past `idleMs`, or to a node that is gone, stopping or restarted.
 * Pure: time and the cluster's live nodes come in; the host opens and closes the sessions.
 */
export class LinkTable<L extends TableLink> {
  private readonly entries = new Map<string, Entry<L>>();
  private readonly idleMs: number;

  constructor(idleMs = LINK_IDLE_MS) {
    this.idleMs = idleMs;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The link to `node`, if one is open or opening. */
  get(node: string): L | undefined {
    return this.entries.get(node)?.link;
  }

  links(): L[] {
    return [...this.entries.values()].map((e) => e.link);
  }

  /** A new link to `node` (replacing none: check `get` first). It starts with no user. */
  add(node: string, link: L, now: number): void {
    if (this.entries.has(node)) throw new Error(`relay link: a link to node ${node} is already open`);
    this.entries.set(node, { link, users: 0, idleSince: now });
  }

  /** One more relay uses the link to `node`. */
  acquire(node: string): void {
    const e = this.entries.get(node);
    if (!e) throw new Error(`relay link: no link to node ${node} to use`);
    e.users++;
    e.idleSince = Number.POSITIVE_INFINITY;
  }

  /** A relay stopped using `link` to `node`; the last one starts its idle time. */
  release(node: string, link: L, now: number): void {
    const e = this.entries.get(node);
    if (!e || e.link !== link || e.users === 0) return;
    if (--e.users === 0) e.idleSince = now;
  }

  users(node: string): number {
    return this.entries.get(node)?.users ?? 0;
  }

  /** Forgets the link to `node` if it is `link` (it closed). */
  remove(node: string, link: L): void {
    if (this.entries.get(node)?.link === link) this.entries.delete(node);
  }

  /** Links unused for `idleMs` by `now`: removed from the table, for the caller to close. */
  takeIdle(now: number): L[] {
    const idle: L[] = [];
    for (const [node, e] of this.entries) {
      if (now - e.idleSince < this.idleMs) continue;
      this.entries.delete(node);
      idle.push(e.link);
    }
    return idle;
  }

  /** When the next idle link is due to close, or Infinity. */
  nextIdleAt(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const e of this.entries.values()) next = Math.min(next, e.idleSince + this.idleMs);
    return next;
  }

  /**
   * Links whose far node does not serve them any more, as the store sees it (`live`): gone
   * (died or left), stopping, or another process now (epoch changed). Removed from the
   * table, for the caller to close.
   */
  takeUnserved(live: readonly NodeEntry[]): L[] {
    const byId = new Map(live.map((n) => [n.id, n]));
    const out: L[] = [];
    for (const [node, e] of this.entries) {
      const n = byId.get(node);
      const epoch = e.link.farEpoch;
      if (n && linkable(n.state) && (epoch === undefined || epoch === n.epoch)) continue;
      this.entries.delete(node);
      out.push(e.link);
    }
    return out;
  }
}
