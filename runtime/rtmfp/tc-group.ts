import { encodeGroupMember, PEER_ID_BYTES } from './net-group.ts';
import type { RecvFlow } from './recv-flow.ts';
import type { SendFlow } from './send-flow.ts';
import type { Session } from './session.ts';
import { GROUP_METADATA } from './tc-message.ts';

/** Groups one client may be in at once (`[limits] groups_per_client`). */
export const DEFAULT_GROUPS_PER_CLIENT = 64;

export type GroupMembershipState = 'joined' | 'left';

/**
 * One NetGroup membership of a client: its "GC" flow, the group it joined on it, and our
 * return flow to it, opened with the same metadata on the first member we send, as Cumulus's
 * FlowWriter for a FlowGroup does (`CU:CumulusLib/sources/FlowGroup.cpp`), and associated to
 * the client's flow so librtmfp hands it to its GroupStream (`LR:RTMFPSession.cpp`, "GC"
 * signature).
 */
export class GroupMembership {
  readonly groupId: Buffer;
  /** Lower-case hex of `groupId`, as the cluster store keys groups. */
  readonly groupIdHex: string;
  state: GroupMembershipState = 'joined';
  private readonly session: Session;
  private readonly flow: RecvFlow;
  private readonly end: (m: GroupMembership) => void;
  private reply: SendFlow | undefined;

  /** `end` runs once, when the membership ends for any reason. */
  constructor(session: Session, flow: RecvFlow, groupId: Buffer, end: (m: GroupMembership) => void) {
    this.session = session;
    this.flow = flow;
    this.groupId = groupId;
    this.groupIdHex = groupId.toString('hex');
    this.end = end;
  }

  /** Tells the member about another one: `0B` + its peer ID (hex or bytes) on our return flow. */
  sendMember(peerId: string | Buffer): void {
    if (this.state !== 'joined' || this.session.state !== 'open') return;
    const bytes = typeof peerId === 'string' ? peerIdBytes(peerId) : peerId;
    this.reply ??= this.session.openFlow(GROUP_METADATA, this.flow.id);
    this.reply.write(encodeGroupMember(bytes));
  }

  /** Refuses or ends the membership: a flow exception on the client's GC flow (its session stays). */
  refuse(): void {
    this.flow.reject(0);
    this.leave();
  }

  /** The membership is over (the client closed its flow, or the session ended): close ours. */
  leave(): void {
    if (this.state === 'left') return;
    this.state = 'left';
    if (this.session.state === 'open') this.reply?.close();
    this.end(this);
  }
}

function peerIdBytes(hex: string): Buffer {
  if (!/^[0-9a-f]*$/i.test(hex) || hex.length !== 2 * PEER_ID_BYTES)
    throw new RangeError(`a peer ID is ${2 * PEER_ID_BYTES} hex digits, got "${hex.slice(0, 80)}"`);
  return Buffer.from(hex, 'hex');
}
