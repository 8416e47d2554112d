import { encodeFlowSync } from './flow-sync.ts';
import type { SendFlow } from './send-flow.ts';
import type { Session } from './session.ts';
import { encodeTCMetadata } from './tc-message.ts';

/** Which of a NetStream's flows a message goes on: audio, video, or data (data messages and commands). */
export type StreamFlowKind = 'audio' | 'video' | 'data';

/**
 * The flows one end of a NetStream sends on (RFC 7425 §5.3; RTMFP-NOTES §5.1), client and node
 * alike: one per kind, so a lost video fragment never holds up audio (rtmfp-cpp's
 * NetStreamTransport, tcserver), each `TC 04 <streamId>` and a return flow of the other end's
 * NetConnection flow (tcconn accepts no other association), opened when first used.
 */
export class StreamFlows {
  private readonly flows: Partial<Record<StreamFlowKind, SendFlow>> = {};
  private readonly session: Session;
  private readonly streamId: number;
  private readonly associatedFlowId: number;
  private readonly opened: ((flow: SendFlow) => void) | undefined;

  /** `opened` sees each flow as it opens (e.g. to hear the other end refuse it). */
  constructor(
    session: Session,
    streamId: number,
    associatedFlowId: number,
    opened?: (flow: SendFlow) => void,
  ) {
    this.session = session;
    this.streamId = streamId;
    this.associatedFlowId = associatedFlowId;
    this.opened = opened;
  }

  /** The flow for `kind`, opened now if it is not yet. */
  get(kind: StreamFlowKind): SendFlow {
    const known = this.flows[kind];
    if (known) return known;
    const flow = this.session.openFlow(encodeTCMetadata({ streamId: this.streamId }), this.associatedFlowId);
    this.flows[kind] = flow;
    this.opened?.(flow);
    return flow;
  }

  /** The flow for `kind` if it was opened. */
  peek(kind: StreamFlowKind): SendFlow | undefined {
    return this.flows[kind];
  }

  /**
   * A Flow Sync barrier on every flow opened, counting them (RFC 7425 §5.2; rtmfp-cpp's
   * NetStreamTransport::sync): the other end delivers nothing written after it on one flow
   * before everything written before it on the others.
   */
  sync(syncId: number): void {
    if (this.session.state !== 'open') return;
    const open = Object.values(this.flows);
    const barrier = encodeFlowSync(syncId, open.length);
    for (const flow of open) flow.write(barrier);
  }

  /**
   * Ends every flow opened (nothing to send when the session is no longer open); `ended` runs
   * once all of them are over: everything they carried acknowledged (RFC 7016 §3.6), or refused.
   */
  close(ended?: () => void): void {
    if (this.session.state !== 'open') return;
    const flows = Object.values(this.flows);
    let open = flows.length;
    const one = () => {
      open--;
      if (open === 0) ended?.();
    };
    if (open === 0) ended?.();
    for (const flow of flows) {
      if (flow.state === 'complete' || flow.state === 'failed') {
        one();
        continue;
      }
      flow.onEnded = one;
      flow.close();
    }
  }
}
