import { leaveIntroduction, membersToIntroduce } from '../rtmfp/net-group.ts';
import { checkNodeId } from './keys.ts';
import {
  checkDigest,
  checkLimit,
  checkPeerRecord,
  checkPick,
  type GroupInfo,
  type GroupJoin,
  type GroupLeave,
  type GroupMember,
  type GroupSummary,
  MAX_GROUPS_LISTED,
  MAX_MEMBERS_LISTED,
  olderIndex,
  type P2pStore,
  type PeerRecord,
} from './p2p.ts';

/**
 * MemoryState's peers and groups (`state.p2p`), step for step what redis-p2p.ts does (same
 * contract suite). A group is a Map of peer ID → node: a Map keeps insertion order, and
 * setting an existing member keeps its place, which is the join order a re-assert must not
 * change.
 */
export class MemoryP2p implements P2pStore {
  private readonly peers = new Map<string, PeerRecord>();
  private readonly groupsById = new Map<string, Map<string, string>>();

  async putPeer(peerId: string, peer: PeerRecord): Promise<void> {
    this.peers.set(checkDigest('peer ID', peerId), checkPeerRecord(peer));
  }

  async removePeer(peerId: string, node: string): Promise<boolean> {
    const id = checkDigest('peer ID', peerId);
    if (this.peers.get(id)?.node !== node) return false;
    return this.peers.delete(id);
  }

  async peer(peerId: string): Promise<PeerRecord | undefined> {
    const peer = this.peers.get(checkDigest('peer ID', peerId));
    return peer && structuredClone(peer);
  }

  async joinGroup(groupId: string, peerId: string, node: string, pick = Math.random()): Promise<GroupJoin> {
    const g = checkDigest('group ID', groupId);
    const p = checkDigest('peer ID', peerId);
    checkNodeId(node);
    checkPick(pick);
    let members = this.groupsById.get(g);
    if (!members) {
      members = new Map();
      this.groupsById.set(g, members);
    }
    members.set(p, node);
    const order = [...members.keys()];
    const introduce = membersToIntroduce(
      order,
      (m) => m === p,
      (n) => olderIndex(pick, n),
    );
    return { position: order.indexOf(p), size: order.length, introduce };
  }

  async leaveGroup(groupId: string, peerId: string, node: string): Promise<GroupLeave | undefined> {
    const g = checkDigest('group ID', groupId);
    const p = checkDigest('peer ID', peerId);
    const members = this.groupsById.get(g);
    if (members?.get(p) !== node) return undefined;
    const reconnect = leaveIntroduction([...members.keys()], (m) => m === p);
    members.delete(p);
    if (members.size === 0) this.groupsById.delete(g);
    const leave: GroupLeave = { size: members.size };
    if (reconnect) {
      const to = reconnect.successor;
      leave.reconnect = { to: { peerId: to, node: members.get(to) ?? '' }, peerId: reconnect.introduce };
    }
    return leave;
  }

  async members(groupId: string, limit = MAX_MEMBERS_LISTED): Promise<GroupMember[]> {
    checkLimit('members', limit, MAX_MEMBERS_LISTED);
    const members = this.groupsById.get(checkDigest('group ID', groupId)) ?? new Map<string, string>();
    return [...members].slice(0, limit).map(([peerId, node]) => ({ peerId, node }));
  }

  async group(groupId: string): Promise<GroupInfo> {
    const members = this.groupsById.get(checkDigest('group ID', groupId)) ?? new Map<string, string>();
    const nodes: Record<string, number> = {};
    for (const node of members.values()) nodes[node] = (nodes[node] ?? 0) + 1;
    return { size: members.size, nodes };
  }

  async groups(limit = MAX_GROUPS_LISTED): Promise<GroupSummary[]> {
    checkLimit('groups', limit, MAX_GROUPS_LISTED);
    return [...this.groupsById]
      .map(([id, members]) => ({ id, size: members.size }))
      .sort((a, b) => b.size - a.size || (a.id < b.id ? 1 : -1))
      .slice(0, limit);
  }

  /** A dead or departed node's peers and memberships go with it (called with its record). */
  removeNode(node: string): void {
    for (const [id, peer] of this.peers) if (peer.node === node) this.peers.delete(id);
    for (const [g, members] of this.groupsById) {
      for (const [p, owner] of members) if (owner === node) members.delete(p);
      if (members.size === 0) this.groupsById.delete(g);
    }
  }
}
