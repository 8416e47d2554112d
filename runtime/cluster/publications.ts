import { checkAppName, checkNodeId } from './keys.ts';

/**
 * The cluster's live publications (issue 10, DESIGN.md `pub:<app>:<stream>`): one publisher
 * per (app, stream name) cluster-wide, the node it publishes on (the origin), and how many
 * players each node has of it. Both States check their input here, so they refuse the same
 * things with the same words, and pass the same contract suite.
 */

/** Who publishes a stream, as `claim` records it. */
export interface PublicationClaim {
  app: string;
  /** The stream name as published, without its `?query`. */
  name: string;
  /** The origin: the node the publisher is connected to. */
  node: string;
  /** The publisher's peer ID (64 hex digits); with `node`, who holds the name. */
  publisher: string;
}

/** A live publication as any node sees it. */
export interface PublicationInfo extends PublicationClaim {
  /** When it was claimed, ms of the store's clock. */
  since: number;
  /** Players across the cluster: the sum of `nodes`. */
  subscribers: number;
  /** node id → players there (nodes with none are absent). */
  nodes: Record<string, number>;
}

/** `claim`'s answer: the name is ours now, or someone else publishes it (`holder`). */
export type ClaimResult = { ok: true } | { ok: false; holder: PublicationInfo };

/**
 * The publication registry (`State.publications`). Every write is one atomic step and
 * idempotent; every call is one round trip to the store.
 */
export interface PublicationStore {
  /**
   * Claims (app, name) for `claim.publisher` on `claim.node`, unless another publisher (or the
   * same publisher on another node) holds it. Claiming again what one already holds succeeds
   * and keeps `since`: that is how a node re-asserts after a store reconnect.
   */
  claim(claim: PublicationClaim): Promise<ClaimResult>;
  /** Releases (app, name) if `publisher` on `node` holds it; true if it did. Subscriber counts stay. */
  release(app: string, name: string, node: string, publisher: string): Promise<boolean>;
  /** The publication and its players, or undefined when nobody publishes it. */
  get(app: string, name: string): Promise<PublicationInfo | undefined>;
  /**
   * Sets how many players `node` has of (app, name): an absolute count, never an increment
   * (DESIGN.md), 0 removes it. Counts are kept whether or not the name is published (players
   * wait for a publisher).
   */
  setSubscribers(app: string, name: string, node: string, count: number): Promise<void>;
  /** Live publications, by app then name; `app` narrows to one app; at most `limit` (MAX_PUBLICATIONS_LISTED). */
  list(app?: string, limit?: number): Promise<PublicationInfo[]>;
}

/** The most publications one `list()` call returns. */
export const MAX_PUBLICATIONS_LISTED = 1_000;
/** Longest stream name kept (tcserver names are `name[?query]`; the query is not part of it). */
export const MAX_STREAM_NAME_LENGTH = 1_024;
/** Players one node may report for one stream. */
const MAX_SUBSCRIBERS = 1_000_000_000;
const PEER_ID = /^[0-9a-f]{64}$/;

/** A stream name: non-empty, bounded, no control characters. Throws a usable error otherwise. */
export function checkStreamName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_STREAM_NAME_LENGTH) {
    throw new Error(
      `state: a stream name must be 1-${MAX_STREAM_NAME_LENGTH} characters, got ${JSON.stringify(name)}`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new Error(`state: a stream name must not hold control characters, got ${JSON.stringify(name)}`);
  }
  // The Redis store keeps names as UTF-8, which has no lone surrogates: refused, not mangled.
  if (!name.isWellFormed()) {
    throw new Error(
      `state: a stream name must be valid Unicode, without lone surrogates, got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** A publisher's peer ID, lowercased; throws a usable error for anything else. */
export function checkPublisher(publisher: string): string {
  const lower = typeof publisher === 'string' ? publisher.toLowerCase() : '';
  if (!PEER_ID.test(lower)) {
    throw new Error(
      `state: a publisher must be a peer ID of 64 hex digits, got ${JSON.stringify(publisher)}`,
    );
  }
  return lower;
}

export function checkClaim(claim: PublicationClaim): PublicationClaim {
  return {
    app: checkAppName(claim.app),
    name: checkStreamName(claim.name),
    node: checkNodeId(claim.node),
    publisher: checkPublisher(claim.publisher),
  };
}

export function checkSubscribers(count: number): number {
  if (!Number.isInteger(count) || count < 0 || count > MAX_SUBSCRIBERS) {
    throw new Error(`state: a subscriber count must be an integer 0-${MAX_SUBSCRIBERS}, got ${count}`);
  }
  return count;
}
