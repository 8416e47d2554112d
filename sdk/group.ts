import { EventEmitter } from 'node:events';
import { decodeGroupMember, encodeGroupJoin, groupIdOfSpecifier } from '../runtime/rtmfp/net-group.ts';
import type { RecvFlow } from '../runtime/rtmfp/recv-flow.ts';
import type { SendFlow } from '../runtime/rtmfp/send-flow.ts';

/** Why a NetGroup ended: we left, the server refused the join (flow exception), or the connection closed. */
export type NetGroupEnd = 'left' | 'refused' | 'closed';

/**
 * One NetGroup membership over a NetConnection (`nc.joinGroup(specifier)`), as librtmfp joins:
 * a flow with "GC" metadata associated to the server's control flow, carrying `01 21 15 <id>`
 * (RTMFP-NOTES §7). The server answers on its return flow with one peer ID per member it
 * introduces. Events: `member` (peer ID, hex) for each one the server sends, which may name a
 * peer again (after a leave the server re-links the mesh); `close` (`NetGroupEnd`) once.
 * `members` holds each peer ID received so far once, in the order first received.
 */
export class NetGroup extends EventEmitter {
  /** The group ID, hex SHA-256 of the specifier (or the ID given). */
  readonly id: string;
  readonly members: string[] = [];
  ended: NetGroupEnd | undefined;
  private readonly flow: SendFlow;
  private readonly seen = new Set<string>();

  /** Sends the join on `flow` (a new "GC" flow of the session). */
  constructor(id: Buffer, flow: SendFlow) {
    super();
    this.id = id.toString('hex');
    this.flow = flow;
    flow.onException = () => this.end('refused');
    flow.write(encodeGroupJoin({ groupId: id }));
  }

  /** The SendFlow's ID, to which the server associates its return flow. */
  get flowId(): number {
    return this.flow.id;
  }

  /** Leaves the group: our flow closes, which is how the server sees a leave. */
  leave(): void {
    if (this.ended) return;
    this.flow.close();
    this.end('left');
  }

  /** Resolves once `n` members were received; rejects if the group ends first. */
  waitForMembers(n: number): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.members.length < n) return false;
        this.off('member', check);
        this.off('close', ended);
        resolve([...this.members]);
        return true;
      };
      const ended = (why: NetGroupEnd) => {
        this.off('member', check);
        reject(new Error(`the group ended (${why}) after ${this.members.length} of ${n} members`));
      };
      if (check()) return;
      if (this.ended) {
        ended(this.ended);
        return;
      }
      this.on('member', check);
      this.once('close', ended);
    });
  }

  /** The server's return flow to our GC flow: member messages. */
  accept(flow: RecvFlow): void {
    flow.onMessage = (m) => {
      let peerId: string;
      try {
        peerId = decodeGroupMember(m).toString('hex');
      } catch {
        return; // other group messages: not ours to read
      }
      if (this.ended) return;
      if (!this.seen.has(peerId)) {
        this.seen.add(peerId);
        this.members.push(peerId);
      }
      this.emit('member', peerId);
    };
  }

  /** The connection is over. */
  closed(): void {
    this.end('closed');
  }

  private end(why: NetGroupEnd): void {
    if (this.ended) return;
    this.ended = why;
    this.emit('close', why);
  }
}

/** A group ID from a specifier as librtmfp builds it ("G:…"), or from 64 hex digits. */
export function groupIdOf(specifier: string): Buffer {
  if (/^[0-9a-f]{64}$/i.test(specifier)) return Buffer.from(specifier, 'hex');
  return groupIdOfSpecifier(specifier);
}
