import { type AckRanges, BUFFER_BLOCK_BYTES, DataFlags, type UserData } from './chunks.ts';

/** Receive buffer per flow: bytes held for reordering and reassembly. */
export const RECV_BUFFER_BYTES = 256 * 1024;
/** Largest message a flow reassembles; a bigger one is an error from the peer. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/**
 * Bytes a held fragment costs beyond its data, so empty fragments cannot be held without
 * limit (rtmfp-cpp's FRAGMENT_SIZE_BIAS).
 */
const FRAGMENT_OVERHEAD = 64;
/** Ranges kept in the received set before the flow is treated as abusive. */
const MAX_RANGES = 1024;

interface Fragment {
  flags: number;
  data: Buffer;
}

export type RecvFlowState = 'open' | 'rejected' | 'complete';

/** The default of the hooks below: one function for every flow, not a closure per flow. */
function ignore(): void {}

/**
 * The receiving side of one flow (RFC 7016 §3.6.3): tracks received sequence numbers as
 * ranges, reorders and reassembles fragments into messages delivered in order, and knows
 * when an acknowledgement is due. Delivery goes to `onMessage`; it never sees a partial or
 * duplicate message.
 */
export class RecvFlow {
  readonly id: number;
  readonly metadata: Buffer;
  /** Our send flow this flow answers (return flow association option), if any. */
  readonly associatedFlowId: number | undefined;
  state: RecvFlowState = 'open';
  /** Exception code to report while rejected (RFC 7016 §2.3.16). */
  exceptionCode = 0;
  onMessage: (message: Buffer) => void = ignore;
  /** Called once when the peer's flow has ended (FIN seen and everything before it received). */
  onComplete: () => void = ignore;

  /** Received (or abandoned) sequence numbers as sorted disjoint inclusive ranges; [0,0] is implied. */
  private ranges: [number, number][] = [[0, 0]];
  private readonly pending = new Map<number, Fragment>();
  private bufferedBytes = 0;
  /** Highest sequence number handed to delivery (delivered or skipped). */
  private delivered = 0;
  private finalSeq = -1;
  private assembly: Buffer[] = [];
  private assemblyBytes = 0;

  /** An ack must go out with the next packet. */
  ackNow = false;
  /** Packets with data since the last ack (RFC 7016 §3.6.3.4.1: ack after 2). */
  packetsSinceAck = 0;
  /** When a delayed ack becomes due, or 0 when none is pending. */
  ackDueAt = 0;

  constructor(id: number, metadata: Buffer, associatedFlowId: number | undefined) {
    this.id = id;
    this.metadata = metadata;
    this.associatedFlowId = associatedFlowId;
  }

  reject(code: number): void {
    if (this.state !== 'open') return;
    this.state = 'rejected';
    this.exceptionCode = code;
    this.pending.clear();
    this.bufferedBytes = 0;
    this.assembly = [];
    this.ackNow = true;
  }

  /**
   * One User Data chunk for this flow. Returns false when the peer broke the protocol badly
   * enough (e.g. unbounded gaps) that the flow is to be rejected (the session rejects it).
   */
  onData(chunk: UserData): boolean {
    const seq = chunk.sequenceNumber;
    const fsn = seq - chunk.fsnOffset;
    const rangesBefore = this.ranges.length;
    let duplicate = this.has(seq);

    if (chunk.flags & DataFlags.final) {
      if (this.finalSeq < 0) this.ackNow = true;
      this.finalSeq = seq;
    }
    if (chunk.flags & DataFlags.abandon) this.ackNow = true;

    if (fsn > 0 && fsn <= seq) this.add(0, fsn);
    if (!duplicate) {
      this.add(seq, seq);
      if (this.state === 'open' && seq > this.delivered && !(chunk.flags & DataFlags.abandon)) {
        const cost = chunk.data.length + FRAGMENT_OVERHEAD;
        // The next fragment in order is always taken: it is delivered at once and frees room.
        if (seq !== this.delivered + 1 && this.bufferedBytes + cost > RECV_BUFFER_BYTES) {
          // Over our advertised window: forget it, the sender retransmits (RFC 7016 §3.6.3.3).
          this.remove(seq);
          duplicate = true;
        } else {
          this.pending.set(seq, { flags: chunk.flags, data: chunk.data });
          this.bufferedBytes += cost;
        }
      }
    } else {
      this.ackNow = true;
    }
    if (this.ranges.length > MAX_RANGES) return false;
    if (this.ranges.length !== rangesBefore || rangesBefore !== 1) this.ackNow = true;
    if (this.state !== 'open') this.ackNow = true;

    this.deliver(fsn);
    return true;
  }

  /** Delivers what is in order; skips what the peer abandoned (at or below `fsn`, or received empty). */
  private deliver(fsn: number): void {
    for (;;) {
      const next = this.delivered + 1;
      const fragment = this.pending.get(next);
      if (fragment) {
        this.pending.delete(next);
        this.bufferedBytes -= fragment.data.length + FRAGMENT_OVERHEAD;
        this.delivered = next;
        if (this.state === 'open') this.reassemble(fragment);
        continue;
      }
      // Skip a whole run at once (a peer can put the FSN far ahead), stopping before anything held.
      let skipTo = next <= fsn ? fsn : this.state === 'open' ? this.rangeEnd(next) : -1;
      if (skipTo < next) break;
      for (const seq of this.pending.keys()) if (seq <= skipTo) skipTo = seq - 1;
      this.delivered = skipTo;
      this.assembly = [];
      this.assemblyBytes = 0;
    }
    if (this.finalSeq >= 0 && this.state !== 'complete' && this.cumulativeAck() >= this.finalSeq) {
      this.state = 'complete';
      this.pending.clear();
      this.ackNow = true;
      this.onComplete();
    }
  }

  private reassemble(fragment: Fragment): void {
    const fra = fragment.flags & DataFlags.fragmentMask;
    if (fra === DataFlags.fragmentWhole) {
      this.assembly = [];
      this.assemblyBytes = 0;
      this.onMessage(fragment.data);
      return;
    }
    if (fra === DataFlags.fragmentBegin) {
      this.assembly = [fragment.data];
      this.assemblyBytes = fragment.data.length;
      return;
    }
    if (this.assembly.length === 0) return; // middle or end without its beginning: lost to abandonment
    this.assembly.push(fragment.data);
    this.assemblyBytes += fragment.data.length;
    if (this.assemblyBytes > MAX_MESSAGE_BYTES) {
      this.reject(0);
      return;
    }
    if (fra === DataFlags.fragmentEnd) {
      const message = Buffer.concat(this.assembly, this.assemblyBytes);
      this.assembly = [];
      this.assemblyBytes = 0;
      this.onMessage(message);
    }
  }

  /** Highest sequence number of the first contiguous range. */
  cumulativeAck(): number {
    return this.ranges[0][1];
  }

  /** The acknowledgement to send now (RFC 7016 §2.3.14), clearing what made it due. */
  takeAck(maxRanges: number): AckRanges {
    this.ackNow = false;
    this.packetsSinceAck = 0;
    this.ackDueAt = 0;
    const free = this.state === 'open' ? RECV_BUFFER_BYTES - this.bufferedBytes : RECV_BUFFER_BYTES;
    return {
      flowId: this.id,
      bufferBlocks: free > 0 ? Math.max(1, Math.ceil(free / BUFFER_BLOCK_BYTES)) : 0,
      cumulativeAck: this.ranges[0][1],
      ranges: this.ranges.slice(1, 1 + maxRanges),
    };
  }

  /** End of the received range holding `seq`, or -1. */
  private rangeEnd(seq: number): number {
    for (const [from, to] of this.ranges) {
      if (seq < from) return -1;
      if (seq <= to) return to;
    }
    return -1;
  }

  private has(seq: number): boolean {
    for (const [from, to] of this.ranges) {
      if (seq < from) return false;
      if (seq <= to) return true;
    }
    return false;
  }

  /** Adds [from, to] to the received set, merging neighbours. */
  private add(from: number, to: number): void {
    const rs = this.ranges;
    let i = 0;
    while (i < rs.length && rs[i][1] + 1 < from) i++;
    let j = i;
    while (j < rs.length && rs[j][0] <= to + 1) {
      from = Math.min(from, rs[j][0]);
      to = Math.max(to, rs[j][1]);
      j++;
    }
    rs.splice(i, j - i, [from, to]);
  }

  private remove(seq: number): void {
    const rs = this.ranges;
    for (let i = 0; i < rs.length; i++) {
      const [from, to] = rs[i];
      if (seq < from || seq > to) continue;
      const parts: [number, number][] = [];
      if (from < seq) parts.push([from, seq - 1]);
      if (seq < to) parts.push([seq + 1, to]);
      rs.splice(i, 1, ...parts);
      return;
    }
  }
}
