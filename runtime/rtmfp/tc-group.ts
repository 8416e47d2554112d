import { ProtocolError } from './errors.ts';
import { decodeGroupJoin, encodeGroupMember, GroupMessageType, PEER_ID_BYTES } from './net-group.ts';
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

/** What a connection's NetGroup flows report to it. */
export interface GroupEvents {
  join(membership: GroupMembership): void;
  /** Once for every membership `join` was given, however it ended. */
  leave(membership: GroupMembership): void;
  failed(error: ProtocolError): void;
}

/**
 * The NetGroup flows of one connection, each with the membership joined on it (RTMFP-NOTES §7).
 * Only a flow's first join counts (one group per flow, as Cumulus's FlowGroup); a malformed
 * join, a join past `limit` or a second join naming another group refuses that flow with a flow
 * exception, and the session goes on. Other message types are ignored, as Cumulus's FlowGroup
 * passes them to its default handler.
 */
export class GroupFlows {
  private readonly flows = new Map<RecvFlow, GroupMembership | undefined>();
  private readonly session: Session;
  private readonly limit: number;
  private readonly events: GroupEvents;

  constructor(session: Session, limit: number, events: GroupEvents) {
    this.session = session;
    this.limit = limit;
    this.events = events;
  }

  get memberships(): GroupMembership[] {
    return [...this.flows.values()].filter((m): m is GroupMembership => m !== undefined);
  }

  /** Takes a flow with "GC" metadata; its join comes as its first message. */
  accept(flow: RecvFlow): void {
    this.flows.set(flow, undefined);
    flow.onMessage = (m) => this.onMessage(flow, m);
    // The client closed its flow: how Cumulus sees a leave (`CU:FlowGroup.cpp` destructor).
    flow.onComplete = () => this.end(flow);
  }

  /** The connection is over: every membership leaves. */
  leaveAll(): void {
    const memberships = this.memberships;
    this.flows.clear();
    for (const m of memberships) m.leave();
  }

  private onMessage(flow: RecvFlow, message: Buffer): void {
    if (message[0] !== GroupMessageType.join || !this.flows.has(flow)) return;
    let groupId: Buffer;
    try {
      groupId = decodeGroupJoin(message).groupId;
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.refuse(flow, e);
      return;
    }
    const current = this.flows.get(flow);
    if (current) {
      if (!current.groupId.equals(groupId))
        this.refuse(flow, new ProtocolError('bad-group-join', 'a second group joined on one flow'));
      return;
    }
    if (this.memberships.length >= this.limit) {
      const limit = `already in ${this.limit} groups ([limits] groups_per_client)`;
      this.refuse(flow, new ProtocolError('groups-per-client', limit));
      return;
    }
    const membership = new GroupMembership(this.session, flow, groupId, (m) => {
      if (this.flows.get(flow) === m) this.flows.delete(flow);
      this.events.leave(m);
    });
    this.flows.set(flow, membership);
    this.events.join(membership);
  }

  private refuse(flow: RecvFlow, error: ProtocolError): void {
    const membership = this.flows.get(flow);
    this.flows.delete(flow);
    flow.reject(0);
    membership?.leave();
    this.events.failed(error);
  }

  private end(flow: RecvFlow): void {
    const membership = this.flows.get(flow);
    this.flows.delete(flow);
    membership?.leave();
  }
}

function peerIdBytes(hex: string): Buffer {
  if (!/^[0-9a-f]*$/i.test(hex) || hex.length !== 2 * PEER_ID_BYTES)
    throw new RangeError(`a peer ID is ${2 * PEER_ID_BYTES} hex digits, got "${hex.slice(0, 80)}"`);
  return Buffer.from(hex, 'hex');
}
