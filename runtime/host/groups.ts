import type { Logger } from 'pino';
import type { GroupIntroduction } from '../cluster/group-introduce.ts';
import { checkDigest, MAX_MEMBERS_LISTED, type P2pStore } from '../cluster/p2p.ts';
import { errorText } from '../error-text.ts';
import { groupIdOfSpecifier } from '../rtmfp/net-group.ts';
import type { GroupMembership } from '../rtmfp/tc-group.ts';
import type { GroupView } from '../sandbox/sandbox.ts';

export interface NodeGroupsOptions {
  /** The cluster store's groups (memory on a standalone node). */
  p2p: P2pStore;
  /** This node's ID, as the store records members' nodes. */
  node: () => string;
  logger: Logger;
  /**
   * Asks another node to tell one of its members about another (a signed `group-introduce`
   * message); false when that node is not live. Absent: standalone, every member is here.
   */
  introduce?: (node: string, request: GroupIntroduction) => Promise<boolean>;
}

/**
 * The NetGroups of one node across the cluster (issue 9, RTMFP-NOTES §7): each membership an app
 * let in is put in the cluster store in join order, and the member is sent the peer IDs the
 * store picked (the newest 5 others and one random older one, from every node); a leave
 * tells the leaver's successor about an older member, on whichever node it is. The
 * memberships held here are the truth: they are put in the store again after it comes back.
 */
export class NodeGroups {
  private readonly o: NodeGroupsOptions;
  private readonly log: Logger;
  /** group ID → peer ID → that peer's memberships of the group here (a client may join on two flows). */
  private readonly local = new Map<string, Map<string, Set<GroupMembership>>>();
  /** Joins refused, by reason: `bad-group-join`, `groups-per-client`, `refused` (onJoinGroup). */
  readonly joinsFailed: Record<string, number> = {};

  constructor(o: NodeGroupsOptions) {
    this.o = o;
    this.log = o.logger.child({ component: 'groups' });
  }

  /** Memberships held on this node. */
  get memberships(): number {
    let n = 0;
    for (const peers of this.local.values()) for (const set of peers.values()) n += set.size;
    return n;
  }

  /** Counts (and logs at debug) a join refused before or by the app. */
  failed(reason: string, peerId: string, message: string): void {
    this.joinsFailed[reason] = (this.joinsFailed[reason] ?? 0) + 1;
    this.log.debug({ reason, client: peerId.slice(0, 16) }, `group join refused: ${message}`);
  }

  /** `peerId` joined: recorded in the store, and sent the members the store picked. Never rejects. */
  async join(peerId: string, membership: GroupMembership): Promise<void> {
    const group = membership.groupIdHex;
    const peers = this.local.get(group) ?? new Map<string, Set<GroupMembership>>();
    this.local.set(group, peers);
    const set = peers.get(peerId) ?? new Set<GroupMembership>();
    peers.set(peerId, set);
    set.add(membership);
    try {
      const joined = await this.o.p2p.joinGroup(group, peerId, this.o.node());
      for (const other of joined.introduce) membership.sendMember(other);
    } catch (e) {
      // Kept here; put in the store again when it is back (reassert).
      this.log.warn(
        { group, client: peerId.slice(0, 16), err: errorText(e) },
        'could not record a group join',
      );
    }
  }

  /** `peerId`'s membership ended: out of the store, and its successor told of an older member. Never rejects. */
  async leave(peerId: string, membership: GroupMembership): Promise<void> {
    const group = membership.groupIdHex;
    const peers = this.local.get(group);
    const set = peers?.get(peerId);
    if (!peers || !set?.delete(membership)) return;
    if (set.size > 0) return; // still a member on another flow
    peers.delete(peerId);
    if (peers.size === 0) this.local.delete(group);
    try {
      const left = await this.o.p2p.leaveGroup(group, peerId, this.o.node());
      const reconnect = left?.reconnect;
      if (!reconnect) return;
      const request = { group, to: reconnect.to.peerId, peer: reconnect.peerId };
      if (reconnect.to.node === this.o.node() || !this.o.introduce) this.introduced(request);
      else if (!(await this.o.introduce(reconnect.to.node, request)))
        this.log.debug({ group, node: reconnect.to.node }, "a leaver's successor is on a node that is gone");
    } catch (e) {
      this.log.warn(
        { group, client: peerId.slice(0, 16), err: errorText(e) },
        'could not record a group leave',
      );
    }
  }

  /** Tells this node's member `request.to` about `request.peer`; false if it is not a member here. */
  introduced(request: GroupIntroduction): boolean {
    const set = this.local.get(request.group)?.get(request.to);
    if (!set || set.size === 0) return false;
    for (const m of set) m.sendMember(request.peer);
    return true;
  }

  /** Puts every membership held here in the store again (after it came back); each keeps its place. */
  async reassert(): Promise<void> {
    let failed = 0;
    for (const [group, peers] of this.local) {
      for (const peerId of peers.keys()) {
        await this.o.p2p.joinGroup(group, peerId, this.o.node()).catch(() => failed++);
      }
    }
    if (failed > 0) this.log.warn({ failed }, 'could not re-assert some group memberships');
  }

  /** `ctx.groups.get(id)`: by ID (hex) or specifier ("G:…"), its size and oldest members across the cluster. */
  async view(idOrSpecifier: string): Promise<GroupView> {
    const id = idOrSpecifier.startsWith('G:')
      ? groupIdOfSpecifier(idOrSpecifier).toString('hex')
      : checkDigest('group ID', idOrSpecifier);
    const [info, members] = await Promise.all([
      this.o.p2p.group(id),
      this.o.p2p.members(id, MAX_MEMBERS_LISTED),
    ]);
    return { id, size: info.size, members };
  }
}
