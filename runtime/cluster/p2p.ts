import { parseAddress } from '../rtmfp/address.ts';
import { JOIN_NEWEST_MEMBERS, LEAVE_LOOKBACK } from '../rtmfp/net-group.ts';
import { MAX_REPORTED_ADDRESSES } from '../rtmfp/rendezvous.ts';
import { checkNodeId } from './keys.ts';

/**
 * What the cluster store keeps for P2P (issue 9): connected clients by peer ID, for the
 * rendezvous (RTMFP-NOTES §6), and NetGroup members in cluster-wide join order (§7). Both
 * States check their input here, so they refuse the same things with the same words.
 */

/** A connected client as the rendezvous finds it, from any node. */
export interface PeerRecord {
  /** The node the client is connected to. */
  node: string;
  /** Its observed public address, `host:port` (origin 2 in a Redirect: pitfall 25). */
  address: string;
  /** The LAN addresses it reported with setPeerInfo, in its order (origin 1). */
  lan: string[];
}

/** One member of a group and the node it is connected to. */
export interface GroupMember {
  peerId: string;
  node: string;
}

/** What a join needs, read in the same atomic step as the join. */
export interface GroupJoin {
  /** The member's place in join order, 0 = oldest. A re-assert keeps the place it had. */
  position: number;
  size: number;
  /**
   * Peer IDs to send the new member (RTMFP-NOTES §7, as Cumulus did): the newest
   * INTRODUCE_NEWEST other members, newest first, then one random older member if any.
   */
  introduce: string[];
}

/** What a leave needs to keep the mesh connected (Cumulus `Peer::onUnjoinGroup`). */
export interface GroupLeave {
  /** Members left. */
  size: number;
  /**
   * Tell `to` (the member right after the leaver in join order, on its node) about `peerId`
   * (the member RECONNECT_DISTANCE places before `to`, counting the leaver). Absent when the
   * leaver was the newest member or too few members came before it.
   */
  reconnect?: { to: GroupMember; peerId: string };
}

/** A group's size and how many of its members each node holds (absent nodes hold none). */
export interface GroupInfo {
  size: number;
  nodes: Record<string, number>;
}

/** One group in the cluster's list (`fnhost status`, `/cluster.json`). */
export interface GroupSummary {
  id: string;
  size: number;
}

/**
 * The cluster store's peers and groups (`State.p2p`). Every write is one atomic step and
 * idempotent; every call is one round trip to the store.
 */
export interface P2pStore {
  /**
   * Registers a connected client for the rendezvous (RTMFP-NOTES §6), or updates it: the
   * record replaces the last one (new LAN addresses from setPeerInfo). A client that
   * reconnected to another node moves there. Idempotent.
   */
  putPeer(peerId: string, peer: PeerRecord): Promise<void>;
  /**
   * Removes the peer if `node` still holds it (a client that reconnected elsewhere stays);
   * true if removed.
   */
  removePeer(peerId: string, node: string): Promise<boolean>;
  /** Where a peer is connected and its addresses, in one round trip; undefined if unknown. */
  peer(peerId: string): Promise<PeerRecord | undefined>;

  /**
   * Adds the peer (connected to `node`) to the group in cluster-wide join order and reads what
   * the join needs, in one atomic step. A member joining again (a re-assert after a store
   * reconnect, or from the node it reconnected to) keeps its place. `pick` in [0, 1) chooses
   * the random older member to introduce (default: Math.random()).
   */
  joinGroup(groupId: string, peerId: string, node: string, pick?: number): Promise<GroupJoin>;
  /**
   * Removes the member if `node` still holds it, and reads what keeps the mesh connected, in
   * one atomic step; undefined if it was not a member from that node (nothing changed).
   */
  leaveGroup(groupId: string, peerId: string, node: string): Promise<GroupLeave | undefined>;
  /** The oldest `limit` members (default and most: MAX_MEMBERS_LISTED), in join order. */
  members(groupId: string, limit?: number): Promise<GroupMember[]>;
  /** The group's size and members per node (size 0 for a group nobody is in). */
  group(groupId: string): Promise<GroupInfo>;
  /** Groups with members, largest first (ties: higher ID first); `limit` as for members (MAX_GROUPS_LISTED). */
  groups(limit?: number): Promise<GroupSummary[]>;
}

/**
 * The NetGroup rules are the wire side's (runtime/rtmfp/net-group.ts): others a joining member
 * is sent, newest first, before the one random older member; on a leave, how many places
 * before the successor the member it learns of is. LAN addresses kept per peer are what
 * setPeerInfo keeps (runtime/rtmfp/rendezvous.ts).
 */
export const INTRODUCE_NEWEST = JOIN_NEWEST_MEMBERS;
export const RECONNECT_DISTANCE = LEAVE_LOOKBACK;
export const MAX_LAN_ADDRESSES = MAX_REPORTED_ADDRESSES;

/** `[ipv6]:port` with a zone fits easily. */
const MAX_ADDRESS_LENGTH = 64;
/** The most members one `members()` call returns. */
export const MAX_MEMBERS_LISTED = 1_000;
/** The most groups one `groups()` call returns. */
export const MAX_GROUPS_LISTED = 1_000;

/** Peer IDs and group IDs are SHA-256 digests (RFC 7425 §4.4, RTMFP-NOTES §7): 64 hex digits. */
const DIGEST_HEX = /^[0-9a-f]{64}$/;

/** A peer or group ID, lowercased; throws a usable error for anything else. */
export function checkDigest(what: 'peer ID' | 'group ID', id: string): string {
  const lower = typeof id === 'string' ? id.toLowerCase() : '';
  if (!DIGEST_HEX.test(lower)) {
    throw new Error(`state: a ${what} must be 64 hex digits (SHA-256), got ${JSON.stringify(id)}`);
  }
  return lower;
}

/** A copy of `peer` with its lists bounded; throws on what the rendezvous could not use. */
export function checkPeerRecord(peer: PeerRecord): PeerRecord {
  checkAddress('the observed address', peer.address);
  if (!Array.isArray(peer.lan) || peer.lan.length > MAX_LAN_ADDRESSES) {
    throw new Error(`state: a peer may report at most ${MAX_LAN_ADDRESSES} LAN addresses`);
  }
  for (const a of peer.lan) checkAddress('a LAN address', a);
  checkNodeId(peer.node);
  return { node: peer.node, address: peer.address, lan: [...peer.lan] };
}

function checkAddress(what: string, address: unknown): void {
  if (typeof address !== 'string' || address.length > MAX_ADDRESS_LENGTH || !parseAddress(address)) {
    throw new Error(
      `state: ${what} of a peer must be "host:port" or "[v6]:port" of at most ${MAX_ADDRESS_LENGTH} characters, got ${JSON.stringify(address)}`,
    );
  }
}

/** How many a listing may return: a positive whole number up to `max`. */
export function checkLimit(what: string, limit: number, max: number): number {
  if (!Number.isSafeInteger(limit) || limit <= 0 || limit > max) {
    throw new Error(`state.${what}: limit must be a whole number from 1 to ${max}, got ${limit}`);
  }
  return limit;
}

/** What chooses the random older member of a join: a number in [0, 1). */
export function checkPick(pick: number): number {
  if (!(pick >= 0 && pick < 1)) throw new Error(`state.joinGroup: pick must be in [0, 1), got ${pick}`);
  return pick;
}

/** The random older member's place among `older` candidates (the Lua join does the same). */
export function olderIndex(pick: number, older: number): number {
  return Math.min(older - 1, Math.floor(pick * older));
}
