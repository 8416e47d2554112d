import type { NodeState } from './state.ts';

/**
 * Which node a new client goes to (DESIGN.md "Selection avoids herding"), as pure functions
 * of plain values: the host feeds them its cluster view and the pending seats, handlers and
 * `[balance]` pick the strategy, `/loadbalancer` asks for the least loaded.
 */

/** How handshakes are balanced: by handlers' helpers, `[balance] strategy` and `/loadbalancer`. */
export type Strategy = 'round-robin' | 'least-loaded' | 'all-servers' | 'by-hash';

/** The strategies `[balance] strategy` accepts; `none` leaves handshakes to the handlers. */
export const CONFIG_STRATEGIES = ['round-robin', 'least-loaded', 'all-servers', 'none'] as const;
export type ConfigStrategy = (typeof CONFIG_STRATEGIES)[number];

/** A node as selection sees it. */
export interface Candidate {
  id: string;
  publicAddress: string;
  clients: number;
  /** Redirects handed out to it and not yet in its `clients` (pending seats). */
  seats: number;
  paused: boolean;
  state: NodeState;
}

export interface Eligibility {
  /** This node's id. */
  self: string;
  /** Leave this node out (a handler sending clients away from here). */
  exceptSelf?: boolean;
  /** A node with this many clients plus seats takes no more; undefined: no limit. */
  maxClients?: number;
}

/** The load score two-choice compares: clients, counting the seats on their way. */
export function loadScore(c: Candidate): number {
  return c.clients + c.seats;
}

/**
 * Nodes that may take a new client: serving (not starting, draining or stopping), not paused,
 * under `maxClients`, and not this node when it asks to be left out. Sorted by id, so every
 * node of the cluster walks (round-robin) and hashes (by-hash) the same list.
 */
export function eligible(nodes: readonly Candidate[], o: Eligibility): Candidate[] {
  return nodes
    .filter(
      (c) =>
        !c.paused &&
        c.state === 'serving' &&
        (o.maxClients === undefined || loadScore(c) < o.maxClients) &&
        !(o.exceptSelf && c.id === o.self),
    )
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The better of two distinct nodes drawn at random (ties: the first drawn). With stale load
 * figures, always taking the least loaded sends a whole burst to one node; two random choices
 * spread it while still favouring light nodes (Mitzenmacher's "power of two choices").
 */
export function twoChoice(list: readonly Candidate[], random: () => number = Math.random): Candidate {
  const first = Math.floor(random() * list.length);
  if (list.length < 2) return list[first];
  const second = (first + 1 + Math.floor(random() * (list.length - 1))) % list.length;
  return loadScore(list[second]) < loadScore(list[first]) ? list[second] : list[first];
}

/** The node with the lowest load score (ties: the lowest id): `/loadbalancer`'s answer. */
export function lightest(list: readonly Candidate[]): Candidate {
  return list.reduce((best, c) => (loadScore(c) < loadScore(best) ? c : best));
}

/**
 * The node `key` sticks to: rendezvous hashing (highest hash of key and node id wins), so a
 * node joining or leaving moves only the keys that go to or came from it.
 */
export function byHash(list: readonly Candidate[], key: string): Candidate {
  let best = list[0];
  let bestScore = -1;
  for (const c of list) {
    const score = fnv1a(`${key}\u0000${c.id}`);
    if (score > bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

/** 32-bit FNV-1a: fast, well spread for short keys, and the same on every node. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
