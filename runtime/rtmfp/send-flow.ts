import { Writer } from './binary.ts';
import {
  type AckRanges,
  BUFFER_BLOCK_BYTES,
  CHUNK_HEADER_BYTES,
  DataFlags,
  DataOption,
  optionsLength,
} from './chunks.ts';
import type { Option } from './option.ts';
import { MAX_PACKET_BODY } from './packet.ts';

/** Worst-case header of a User Data chunk: chunk header, flags, three 8-byte VLUs. */
const DATA_CHUNK_OVERHEAD = CHUNK_HEADER_BYTES + 1 + 3 * 8;
/** Packet header: flags, timestamp, timestamp echo. */
const PACKET_HEADER = 5;
/** RFC 7016 §3.6.2.2: a fragment is lost after this many acks of later packets. */
export const NAKS_FOR_LOSS = 3;

/** One fragment of a message on a send flow (RFC 7016 §3.6.2). */
export interface Fragment {
  seq: number;
  flags: number;
  data: Buffer;
  /** Counted in the session's bytes in flight. */
  inFlight: boolean;
  /** Must be (re)transmitted: never sent, or lost. */
  needsSend: boolean;
  /** Transmission sequence number of the packet that last carried it. */
  tsn: number;
  naks: number;
}

/** What the session needs back from an acknowledgement. */
export interface AckResult {
  /** Bytes newly acknowledged that were in flight. */
  ackedBytes: number;
  /** Bytes that stopped being in flight because they were declared lost. */
  lostBytes: number;
  /** Newest transmission the ack covered (0: none), for loss detection on the other flows. */
  maxAckedTsn: number;
}

export type SendFlowState = 'open' | 'closing' | 'complete' | 'failed';

/**
 * The sending side of one flow (RFC 7016 §3.6.2). Messages are cut into fragments when
 * written; the session picks fragments to send (`needsSend`), and acks retire them. The
 * startup options (metadata, return association) ride on the first chunk of each packet
 * until the peer's first acknowledgement (RFC 7016 §3.6.2.3).
 */
export class SendFlow {
  readonly id: number;
  readonly metadata: Buffer;
  readonly associatedFlowId: number | undefined;
  readonly options: Option[];
  /** Bytes the options and their marker take in a chunk. */
  readonly optionsLength: number;
  readonly maxFragment: number;
  state: SendFlowState = 'open';
  /** The peer's flow exception code when it rejected this flow. */
  exceptionCode: number | undefined;
  /** Called when the peer rejects the flow (RFC 7016 §2.3.16). */
  onException: (code: number) => void = () => {};

  /** Unacknowledged fragments in sequence order. */
  readonly queue: Fragment[] = [];
  /** Bytes of this flow in flight, kept as fragments change state. */
  private inFlightBytes = 0;
  /** Fragments with `needsSend` set. */
  private sendable = 0;
  /** Peer's receive window in bytes (RFC 7016 §3.6.3.3). */
  peerWindow = 64 * 1024;
  acknowledged = false;
  private nextSeq = 1;
  private readonly wake: () => void;

  constructor(id: number, metadata: Buffer, associatedFlowId: number | undefined, wake: () => void) {
    this.id = id;
    this.metadata = metadata;
    this.associatedFlowId = associatedFlowId;
    this.wake = wake;
    this.options = [{ type: DataOption.userMetadata, value: metadata }];
    if (associatedFlowId !== undefined) {
      this.options.push({
        type: DataOption.returnAssociation,
        value: new Writer(8).vlu(associatedFlowId).toBuffer(),
      });
    }
    this.optionsLength = optionsLength(this.options);
    this.maxFragment = MAX_PACKET_BODY - PACKET_HEADER - DATA_CHUNK_OVERHEAD - this.optionsLength;
  }

  /** Queues one message; it arrives whole and in order, or the flow fails. */
  write(message: Uint8Array): void {
    if (this.state !== 'open') return;
    const data = Buffer.isBuffer(message) ? message : Buffer.from(message);
    if (data.length <= this.maxFragment) {
      this.push(DataFlags.fragmentWhole, data);
    } else {
      for (let at = 0; at < data.length; at += this.maxFragment) {
        const end = Math.min(at + this.maxFragment, data.length);
        const fra =
          at === 0
            ? DataFlags.fragmentBegin
            : end === data.length
              ? DataFlags.fragmentEnd
              : DataFlags.fragmentMiddle;
        this.push(fra, data.subarray(at, end));
      }
    }
    this.wake();
  }

  /** Ends the flow after what was written (RFC 7016 §3.6.2.3.2: FIN on the last fragment). */
  close(): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    const last = this.queue[this.queue.length - 1];
    if (last?.needsSend && !last.inFlight && last.tsn === 0) last.flags |= DataFlags.final;
    else this.push(DataFlags.abandon | DataFlags.final, EMPTY);
    this.wake();
    this.checkComplete();
  }

  /** The peer rejected the flow: stop sending. Returns the bytes that were in flight. */
  fail(code: number): number {
    if (this.state === 'failed' || this.state === 'complete') return 0;
    this.state = 'failed';
    this.exceptionCode = code;
    const inFlight = this.dropQueue();
    this.onException(code);
    return inFlight;
  }

  /** Drops every queued fragment, sent or not; returns the bytes that were in flight. */
  dropQueue(): number {
    const inFlight = this.inFlightBytes;
    this.queue.length = 0;
    this.inFlightBytes = 0;
    this.sendable = 0;
    return inFlight;
  }

  hasDataToSend(): boolean {
    return this.sendable > 0 && this.state !== 'failed' && this.state !== 'complete';
  }

  /** Records that `f` went out in the packet with transmission sequence number `tsn`. */
  markSent(f: Fragment, tsn: number): void {
    if (f.needsSend) this.sendable--;
    if (!f.inFlight) this.inFlightBytes += f.data.length;
    f.tsn = tsn;
    f.naks = 0;
    f.needsSend = false;
    f.inFlight = true;
  }

  /**
   * FSN offset for a chunk of `seq` (RFC 7016 §2.3.11). The forward sequence number is worked
   * out from our own queue (everything below its head is acknowledged), never from the peer's
   * acks, which a broken peer could make run ahead of what we sent.
   */
  fsnOffset(seq: number): number {
    return seq - ((this.queue[0]?.seq ?? this.nextSeq) - 1);
  }

  /** Bytes of this flow that are in flight (for the peer's receive window). */
  bytesInFlight(): number {
    return this.inFlightBytes;
  }

  /**
   * Applies an acknowledgement (RFC 7016 §3.6.2.4): retires what it covers, then counts a NAK
   * against every fragment in flight that was sent before the newest one it acknowledged.
   */
  onAck(ack: AckRanges): AckResult {
    const result: AckResult = { ackedBytes: 0, lostBytes: 0, maxAckedTsn: 0 };
    this.acknowledged = true;
    this.peerWindow = ack.bufferBlocks * BUFFER_BLOCK_BYTES;
    let kept = 0;
    for (const f of this.queue) {
      if (f.tsn > 0 && isAcked(f.seq, ack)) {
        if (f.inFlight) result.ackedBytes += f.data.length;
        if (f.needsSend) this.sendable--;
        if (f.tsn > result.maxAckedTsn) result.maxAckedTsn = f.tsn;
        continue;
      }
      this.queue[kept++] = f;
    }
    this.queue.length = kept;
    this.inFlightBytes -= result.ackedBytes;
    result.lostBytes = this.detectLoss(result.maxAckedTsn);
    this.checkComplete();
    return result;
  }

  /**
   * RFC 7016 §3.6.2.4: a fragment sent before one the peer has acknowledged (on any flow of
   * the session) collects a NAK; after NAKS_FOR_LOSS it is lost. Returns the bytes lost.
   */
  detectLoss(ackedTsn: number): number {
    let lost = 0;
    for (const f of this.queue) {
      if (!f.inFlight || f.tsn >= ackedTsn) continue;
      if (++f.naks >= NAKS_FOR_LOSS) lost += this.markLost(f);
    }
    return lost;
  }

  /** Retransmission timeout: everything in flight is lost. Returns those bytes. */
  onTimeout(): number {
    let lost = 0;
    for (const f of this.queue) if (f.inFlight) lost += this.markLost(f);
    return lost;
  }

  private markLost(f: Fragment): number {
    f.inFlight = false;
    if (!f.needsSend) this.sendable++;
    f.needsSend = true;
    this.inFlightBytes -= f.data.length;
    return f.data.length;
  }

  private push(flags: number, data: Buffer): void {
    this.queue.push({ seq: this.nextSeq++, flags, data, inFlight: false, needsSend: true, tsn: 0, naks: 0 });
    this.sendable++;
  }

  private checkComplete(): void {
    if (this.state === 'closing' && this.queue.length === 0) this.state = 'complete';
  }
}

function isAcked(seq: number, ack: AckRanges): boolean {
  if (seq <= ack.cumulativeAck) return true;
  for (const [from, to] of ack.ranges) {
    if (seq < from) return false;
    if (seq <= to) return true;
  }
  return false;
}

const EMPTY = Buffer.alloc(0);
