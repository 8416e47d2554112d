import { randomBytes } from 'node:crypto';
import type { KvStore } from './kv.ts';
import type { P2pStore } from './p2p.ts';
import type { PublicationStore } from './publications.ts';

/**
 * Everything cluster-wide goes through this one interface (DESIGN.md "Cluster state"), with
 * two implementations that pass the same contract suite: memory (standalone, `fnhost dev`)
 * and Redis. Local state is the truth; this is a shared copy of it that nodes re-assert
 * after any reconnect.
 */

export type NodeState = 'starting' | 'serving' | 'draining' | 'stopping';

/** Load a node reports with each heartbeat, computed locally. */
export interface NodeLoad {
  clients: number;
  /** Share of one core, 0..1 per core (can exceed 1 on several cores). */
  cpu: number;
  packetsPerSecond: number;
  bytesPerSecond: number;
}

/** What a node says about itself (DESIGN.md: id, epoch, state, addresses, load, versions). */
export interface NodeRecord {
  id: string;
  /** Random per process start: a reference to an older run of the same id is stale. */
  epoch: string;
  state: NodeState;
  /** Address clients are redirected to, `host:port`. */
  publicAddress: string;
  /** RTMFP listen addresses, `host:port`. */
  rtmfp: string[];
  /** HTTP listen address, `host:port`, if any. */
  http: string | undefined;
  load: NodeLoad;
  paused: boolean;
  /** app → bundle hash the node runs. */
  versions: Record<string, string>;
  /** app → why the active version failed to load on this node (it stays on `versions[app]`). */
  errors: Record<string, string>;
  /** app → revision of the app's secrets (AppSecrets) its running version was loaded with. */
  secretRevisions: Record<string, number>;
  /** ms since epoch (node clock, informative only). */
  startedAt: number;
}

/** Hears one store round trip: seconds, and whether it failed (unreachable, timed out, an error reply). */
export type RoundTripListener = (seconds: number, failed: boolean) => void;

/** A live node as the store sees it. */
export interface NodeEntry extends NodeRecord {
  /** Last heartbeat, ms, from the store's clock (Redis TIME), never the node's. */
  heartbeatAt: number;
}

/** One deployed version of an app. */
export interface VersionInfo {
  hash: string;
  /** ms, store clock. */
  deployedAt: number;
  /** App input files, for `fnhost versions`. */
  files: string[];
  /** Who or what deployed it (user@host), informative. */
  by: string;
}

/** A bundle as stored: the script, its source map, and the hash the script must have. */
export interface StoredBundle {
  hash: string;
  code: string;
  map: string;
}

/** Hex digits of a version's hash shown to people, and at the start of a node's load error. */
const SHORT_HASH_DIGITS = 12;

/** How a version is shown (`fnhost versions`, status, node load errors): its hash's first digits. */
export function shortHash(hash: string | undefined): string {
  return hash ? hash.slice(0, SHORT_HASH_DIGITS) : 'none';
}

/**
 * The store cannot be reached (Redis down, hung, or gone during the call). What handlers and
 * CLI users see instead of the driver's text; the driver's error is the `cause`.
 */
export class StoreUnavailableError extends Error {
  constructor(options?: ErrorOptions) {
    super('cluster store unavailable', options);
    this.name = 'StoreUnavailableError';
  }
}

/** An app's secrets (`ctx.env` over `[vars]`) and their revision, which every change raises. */
export interface AppSecrets {
  values: Record<string, string>;
  /** 0 before the first secret. */
  revision: number;
}

/** Versions kept per app; older ones (and their bundles) are dropped. */
export const MAX_VERSIONS = 50;

export interface State {
  readonly kind: 'memory' | 'redis';
  /** App-scoped key/value store behind `ctx.kv`. */
  readonly kv: KvStore;
  /** Connected clients by peer ID and NetGroup members (issue 9), reaped with their node. */
  readonly p2p: P2pStore;
  /** Live publications, one publisher per (app, stream) cluster-wide, and players per node (issue 10). */
  readonly publications: PublicationStore;

  /** The store's clock, ms. */
  time(): Promise<number>;

  /**
   * Writes the node's record and marks it alive for `ttlMs` (3 × heartbeat), stamped with
   * the store's clock, in one atomic step. Idempotent; also how a node re-registers.
   */
  heartbeat(record: NodeRecord, ttlMs: number): Promise<void>;
  /**
   * A clean leave: the node and what it owns (peers, group members, publications and player
   * counts) are removed now, in one atomic step. Only if `epoch` still matches.
   */
  leave(id: string, epoch: string): Promise<void>;
  /** Live nodes (record not expired), any order. */
  nodes(): Promise<NodeEntry[]>;
  /**
   * Removes every node whose record expired, and what it owned (its peers, group members,
   * publications and player counts), in one atomic step; returns their ids. Safe to run from every node at once:
   * each dead node is returned to one caller.
   */
  reap(): Promise<string[]>;

  /** Stores a bundle under its hash (idempotent). */
  putBundle(app: string, bundle: StoredBundle): Promise<void>;
  getBundle(app: string, hash: string): Promise<StoredBundle | undefined>;
  /**
   * Appends `version` to the app's history (newest first, at most MAX_VERSIONS, dropping
   * the bundles of versions that fall off) and makes it active, in one atomic step.
   */
  deploy(app: string, version: VersionInfo): Promise<void>;
  /** Makes an existing version active; false if `hash` is not in the history. */
  activate(app: string, hash: string): Promise<boolean>;
  active(app: string): Promise<string | undefined>;
  /** Newest first. */
  versions(app: string): Promise<VersionInfo[]>;
  /** Apps that have an active version. */
  apps(): Promise<string[]>;

  /**
   * A random secret shared by every node of the cluster, created by whichever node asks first
   * (atomically): authenticates node-to-node messages when no `[cluster] secret` is set.
   */
  clusterSecret(): Promise<string>;

  /**
   * Sets a secret and raises the app's secrets revision, in one atomic step; returns the
   * revision. Putting the value a secret already has changes nothing (same revision).
   */
  putSecret(app: string, name: string, value: string): Promise<number>;
  /** Removes a secret and raises the revision, atomically; undefined if there was no such secret. */
  deleteSecret(app: string, name: string): Promise<number | undefined>;
  /** The app's secrets and their revision, read together. */
  secrets(app: string): Promise<AppSecrets>;

  /**
   * A pending seat (DESIGN.md "Selection avoids herding"): `client` (a handshake tag, hex) was
   * sent to node `node` and has not shown in its load yet; the seat lapses after `ttlMs` of
   * the store's clock. Seating the same client at the same node again renews it.
   */
  addSeat(node: string, client: string, ttlMs: number): Promise<void>;
  /** Whether `client` holds a live seat at `node`: the node that sent it there decided for it. */
  hasSeat(node: string, client: string): Promise<boolean>;
  /**
   * Live seats at each of `nodes` (by id); nodes without any are absent. With `lapsingAfter`,
   * a node's seats that lapse by then (store ms) are not counted: the caller leaves out seats
   * old enough to be clients in the node's last heartbeat.
   */
  seats(
    nodes: readonly string[],
    lapsingAfter?: Readonly<Record<string, number>>,
  ): Promise<Record<string, number>>;

  publish(channel: string, message: string): Promise<void>;
  /** Calls `handler` for each message on `channel` until the returned function is called. */
  subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>>;

  /**
   * Tells `handler` when the store becomes unreachable ('down') and reachable again ('up'):
   * after 'up' a node re-asserts everything it owns. Memory never goes down.
   */
  onStatus(handler: (status: 'up' | 'down') => void): void;

  /** Tells `listener` how long each round trip to the store took (`/metrics`); memory has none. */
  onRoundTrip(listener: RoundTripListener): void;

  close(): Promise<void>;
}

/** 256 random bits, hex. */
export function newClusterSecret(): string {
  return randomBytes(32).toString('hex');
}

/** PX needs a positive whole number of ms; both States refuse the same. */
export function checkNodeTtl(ttlMs: number, what = 'state.heartbeat'): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new Error(`${what}: ttlMs must be a positive whole number of ms, got ${ttlMs}`);
  }
}
