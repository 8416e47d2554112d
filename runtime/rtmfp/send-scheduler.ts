import { vluLength } from './binary.ts';
import { type AckRanges, writeBufferProbe, writeUserData } from './chunks.ts';
import { Congestion, MSS } from './congestion.ts';
import type { PacketWriter } from './packet.ts';
import type { Fragment, SendFlow } from './send-flow.ts';

/** Buffer probe interval while the peer's window is closed (RFC 7016 §3.6.2.6). */
const PROBE_MS = 1_000;

/**
 * The sending half of a session (RFC 7016 §3.6.2): its send flows, one congestion window and
 * retransmission timer across them, and the transmission sequence numbers that loss
 * detection counts NAKs by.
 */
export class SendScheduler {
  readonly flows = new Map<number, SendFlow>();
  readonly congestion = new Congestion();
  bytesInFlight = 0;
  /** When the retransmission timer fires, or 0 when nothing is in flight. */
  rtoAt = 0;
  private tsn = 0;
  private readonly probeAt = new Map<number, number>();

  add(flow: SendFlow): void {
    this.flows.set(flow.id, flow);
  }

  hasDataToSend(): boolean {
    for (const flow of this.flows.values()) if (flow.hasDataToSend()) return true;
    return false;
  }

  /** Anything written and not yet acknowledged. */
  hasUnacknowledged(): boolean {
    for (const flow of this.flows.values()) if (flow.queue.length > 0) return true;
    return false;
  }

  onAck(ack: AckRanges, now: number): void {
    const flow = this.flows.get(ack.flowId);
    if (!flow) return;
    const windowFull = this.bytesInFlight + MSS >= this.congestion.cwnd;
    const result = flow.onAck(ack);
    let lost = result.lostBytes;
    if (result.maxAckedTsn > 0) {
      for (const other of this.flows.values())
        if (other !== flow) lost += other.detectLoss(result.maxAckedTsn);
    }
    this.bytesInFlight -= result.ackedBytes + lost;
    if (result.ackedBytes > 0) this.congestion.onAck(result.ackedBytes, windowFull);
    // Empty ABN chunks carry no bytes but must arrive: the timer runs while any fragment flies.
    if (result.maxAckedTsn > 0) this.rtoAt = this.hasInFlight() ? now + this.congestion.erto : 0;
    if (lost > 0) this.congestion.onLoss(now);
    if (flow.state === 'complete') this.remove(flow);
  }

  /** The peer rejected one of our flows (RFC 7016 §2.3.16). */
  onException(flowId: number, code: number): void {
    const flow = this.flows.get(flowId);
    if (!flow) return;
    this.bytesInFlight -= flow.fail(code);
    this.remove(flow);
  }

  /** Runs the retransmission timer: everything in flight is lost, the window restarts small. */
  service(now: number): void {
    if (this.rtoAt === 0 || now < this.rtoAt) return;
    for (const flow of this.flows.values()) this.bytesInFlight -= flow.onTimeout();
    this.congestion.onTimeout();
    this.rtoAt = 0;
  }

  /**
   * Adds data chunks while the packet, the congestion window and each flow's peer window allow.
   * True when the packet filled up with more data waiting, so another packet should follow.
   */
  write(pw: PacketWriter, now: number): boolean {
    // Expired media is abandoned before anything is picked, so none of it is (re)sent.
    for (const flow of this.flows.values()) flow.expire(now);
    let wrote = false;
    let full = false;
    const tsn = this.tsn + 1;
    let last: Fragment | undefined;
    let lastFlow: SendFlow | undefined;
    flows: for (const flow of this.flows.values()) {
      if (!flow.hasDataToSend()) continue;
      if (flow.peerWindow === 0) {
        this.probe(pw, flow, now);
        continue;
      }
      for (const f of flow.queue) {
        if (!f.needsSend) continue;
        if (this.bytesInFlight > 0 && this.bytesInFlight + f.data.length > this.congestion.cwnd) break flows;
        const flowInFlight = flow.bytesInFlight();
        if (flowInFlight > 0 && flowInFlight + f.data.length > flow.peerWindow) break;
        // Consecutive fragments of one flow use the short Next User Data chunk (RFC 7016 §2.3.12).
        const next = last !== undefined && lastFlow === flow && last.seq + 1 === f.seq;
        // Until the flow is acknowledged, its first chunk in every packet carries the metadata
        // (rtmfp-cpp and Cumulus repeat it until the first ack), so whichever packet arrives
        // first opens the flow.
        const options = !flow.acknowledged && lastFlow !== flow ? flow.options : undefined;
        if (chunkSize(flow, f, options !== undefined, next) > pw.room) {
          full = true;
          break flows;
        }
        const header = {
          flags: f.flags,
          flowId: flow.id,
          sequenceNumber: f.seq,
          fsnOffset: flow.fsnOffset(f.seq),
        };
        writeUserData(pw.w, header, options, f.data, next);
        flow.markSent(f, tsn);
        this.bytesInFlight += f.data.length;
        wrote = true;
        last = f;
        lastFlow = flow;
      }
    }
    if (wrote) {
      this.tsn = tsn;
      if (this.rtoAt === 0) this.rtoAt = now + this.congestion.erto;
    }
    return full;
  }

  /**
   * Earliest timer: retransmission, a buffer probe, or a message lifetime running out (its ABN
   * chunks then go out at once, not with whatever is sent next). Infinity when none.
   */
  deadline(): number {
    let d = this.rtoAt === 0 ? Number.POSITIVE_INFINITY : this.rtoAt;
    for (const at of this.probeAt.values()) d = Math.min(d, at);
    for (const flow of this.flows.values()) d = Math.min(d, flow.expiryDeadline());
    return d;
  }

  private hasInFlight(): boolean {
    for (const flow of this.flows.values()) if (flow.hasInFlight()) return true;
    return false;
  }

  clear(): void {
    for (const flow of this.flows.values()) flow.dropQueue();
    this.flows.clear();
    this.probeAt.clear();
    this.bytesInFlight = 0;
    this.rtoAt = 0;
  }

  private remove(flow: SendFlow): void {
    this.flows.delete(flow.id);
    this.probeAt.delete(flow.id);
  }

  /** RFC 7016 §3.6.2.6: while the peer advertises no room, ask it for a fresh ack now and then. */
  private probe(pw: PacketWriter, flow: SendFlow, now: number): void {
    if (now < (this.probeAt.get(flow.id) ?? 0) || pw.room < 16) return;
    this.probeAt.set(flow.id, now + PROBE_MS);
    writeBufferProbe(pw.w, flow.id);
  }
}

function chunkSize(flow: SendFlow, f: Fragment, withOptions: boolean, next: boolean): number {
  let n = 3 + 1 + f.data.length;
  if (!next) n += vluLength(flow.id) + vluLength(f.seq) + vluLength(flow.fsnOffset(f.seq));
  if (withOptions) n += flow.optionsLength;
  return n;
}
