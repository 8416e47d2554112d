import { ownedCopy, Writer } from './binary.ts';
import {
  type AckRanges,
  BUFFER_BLOCK_BYTES,
  CHUNK_HEADER_BYTES,
  DataFlags,
  DataOption,
  optionsLength,
} from './chunks.ts';
import { deadlineOf, type MessageDeadline, type MessageLifetime } from './message-lifetime.ts';
import type { Option } from './option.ts';
import { MAX_PACKET_BODY } from './packet.ts';

/** Worst-case header of a User Data chunk: chunk header, flags, three 8-byte VLUs. */
const DATA_CHUNK_OVERHEAD = CHUNK_HEADER_BYTES + 1 + 3 * 8;
/** Packet header: flags, timestamp, timestamp echo. */
const PACKET_HEADER = 5;
/** RFC 7016 §3.6.2.2: a fragment is lost after this many acks of later packets. */
export const NAKS_FOR_LOSS = 3;

export type { MessageLifetime };

/** One fragment of a message on a send flow (RFC 7016 §3.6.2). */
export interface Fragment {
  seq: number;
  flags: number;
  /** Emptied when the fragment is abandoned and not in flight: it then goes out as an ABN chunk. */
  data: Buffer;
  /** Counted in the session's bytes in flight. */
  inFlight: boolean;
  /** Must be (re)transmitted: never sent, or lost. */
  needsSend: boolean;
  /** Transmission sequence number of the packet that last carried it. */
  tsn: number;
  naks: number;
  /** Session clock when its message was written. */
  writtenAt: number;
  /** Undefined for a reliable message. */
  deadline: MessageDeadline | undefined;
  /** Given up: the peer may skip it (FSN moves past it) and it is never sent with data again. */
  abandoned: boolean;
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

/** The default of the hooks below: one function for every flow, not a closure per flow. */
function ignore(): void {}

/**
 * The sending side of one flow (RFC 7016 §3.6.2). Messages are cut into fragments when
 * written; the session picks fragments to send (`needsSend`), and acks retire them. The
 * startup options (metadata, return association) ride on the first chunk of each packet
 * until the peer's first acknowledgement (RFC 7016 §3.6.2.3).
 *
 * A message written with a lifetime is abandoned once it expires: its fragments that are not
 * in flight lose their data and go out as empty ABN chunks (rtmfp-cpp `SendFlow::assembleData`;
 * RTMFP-NOTES §8.1), those in flight stay counted until acked or lost, and the forward sequence
 * number moves past all of them so the receiver moves on.
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
  onException: (code: number) => void = ignore;
  /** Called once the flow is over: complete (closed, and all it carried acknowledged) or failed. */
  onEnded: () => void = ignore;

  /** Unacknowledged fragments in sequence order. */
  readonly queue: Fragment[] = [];
  /** Bytes of this flow in flight, kept as fragments change state. */
  private inFlightBytes = 0;
  /** Fragments in flight, empty ABN ones included (they need the retransmission timer too). */
  private inFlightCount = 0;
  /** Fragments with `needsSend` set. */
  private sendable = 0;
  /** Fragments never sent (`tsn` 0), abandoned or not: a suffix of the queue, as flows send in order. */
  private neverSent = 0;
  private unsent = 0;
  private abandoned = 0;
  /** Earliest deadline of a queued message with a lifetime (Infinity: none). */
  private nextExpiry = Number.POSITIVE_INFINITY;
  /** Forward sequence number (RFC 7016 §2.3.11) worked out from the queue, -1 when stale. */
  private fsn = -1;
  /** Peer's receive window in bytes (RFC 7016 §3.6.3.3). */
  peerWindow = 64 * 1024;
  acknowledged = false;
  private nextSeq = 1;
  private readonly wake: () => void;
  private readonly clock: () => number;

  /** `clock` reads the session clock, which lifetimes count from. */
  constructor(
    id: number,
    metadata: Buffer,
    associatedFlowId: number | undefined,
    wake: () => void,
    clock: () => number,
  ) {
    this.id = id;
    this.metadata = ownedCopy(metadata);
    this.associatedFlowId = associatedFlowId;
    this.wake = wake;
    this.clock = clock;
    this.options = [{ type: DataOption.userMetadata, value: this.metadata }];
    if (associatedFlowId !== undefined) {
      this.options.push({
        type: DataOption.returnAssociation,
        value: ownedCopy(new Writer(8).vlu(associatedFlowId).view()),
      });
    }
    this.optionsLength = optionsLength(this.options);
    this.maxFragment = MAX_PACKET_BODY - PACKET_HEADER - DATA_CHUNK_OVERHEAD - this.optionsLength;
  }

  /**
   * Queues one message. Without a lifetime it arrives whole and in order, or the flow fails;
   * with one it arrives whole and in order, or not at all once the lifetime has passed.
   */
  write(message: Uint8Array, lifetime?: MessageLifetime): void {
    if (this.state !== 'open') return;
    const data = Buffer.isBuffer(message) ? message : Buffer.from(message);
    const now = this.clock();
    const deadline = lifetime && deadlineOf(lifetime, now);
    if (deadline) this.nextExpiry = Math.min(this.nextExpiry, deadline.abandonAt, deadline.startBy);
    if (data.length <= this.maxFragment) {
      this.push(DataFlags.fragmentWhole, data, now, deadline);
    } else {
      for (let at = 0; at < data.length; at += this.maxFragment) {
        const end = Math.min(at + this.maxFragment, data.length);
        const fra =
          at === 0
            ? DataFlags.fragmentBegin
            : end === data.length
              ? DataFlags.fragmentEnd
              : DataFlags.fragmentMiddle;
        this.push(fra, data.subarray(at, end), now, deadline);
      }
    }
    this.wake();
  }

  /** Abandons every message written so far that has a lifetime and is not fully acknowledged
   *  (tcserver's "expire the previous GOP" when a new keyframe starts). Reliable messages stay. */
  expireAll(): void {
    let any = false;
    for (const f of this.queue) {
      if (!f.deadline || f.abandoned) continue;
      this.abandon(f);
      any = true;
    }
    if (!any) return;
    this.nextExpiry = Number.POSITIVE_INFINITY;
    this.wake();
  }

  /**
   * Abandons the messages whose lifetime has passed at `now`, or whose first fragment was not
   * sent in time. Cheap until the earliest deadline: the scheduler calls it before every packet.
   */
  expire(now: number): void {
    if (now < this.nextExpiry) return;
    let next = Number.POSITIVE_INFINITY;
    for (const f of this.queue) {
      const d = f.deadline;
      if (!d || f.abandoned) continue;
      if (now >= d.abandonAt || now >= d.startBy) this.abandon(f);
      else next = Math.min(next, d.abandonAt, d.startBy);
    }
    this.nextExpiry = next;
  }

  /** When `expire` next has work (Infinity: no message with a lifetime is queued). */
  expiryDeadline(): number {
    return this.nextExpiry;
  }

  /** Bytes written and not yet sent (not in flight, not acked): a bound for slow receivers. */
  get unsentBytes(): number {
    return this.unsent;
  }

  /** ms the oldest unsent message has waited (0 if none): tcserver drops new frames past 2 × lifetime. */
  unsentAge(now: number): number {
    for (let i = this.queue.length - this.neverSent; i < this.queue.length; i++) {
      const f = this.queue[i];
      if (f.tsn === 0 && !f.abandoned) return Math.max(0, now - f.writtenAt);
    }
    return 0;
  }

  /** Messages abandoned so far (for counters). */
  get abandonedMessages(): number {
    return this.abandoned;
  }

  /** Ends the flow after what was written (RFC 7016 §3.6.2.3.2: FIN on the last fragment). */
  close(): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    const last = this.queue[this.queue.length - 1];
    if (last?.needsSend && !last.inFlight && last.tsn === 0) last.flags |= DataFlags.final;
    else this.push(DataFlags.abandon | DataFlags.final, EMPTY, this.clock(), undefined);
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
    this.onEnded();
    return inFlight;
  }

  /** Drops every queued fragment, sent or not; returns the bytes that were in flight. */
  dropQueue(): number {
    const inFlight = this.inFlightBytes;
    this.queue.length = 0;
    this.inFlightBytes = 0;
    this.inFlightCount = 0;
    this.sendable = 0;
    this.neverSent = 0;
    this.unsent = 0;
    this.nextExpiry = Number.POSITIVE_INFINITY;
    this.fsn = -1;
    return inFlight;
  }

  hasDataToSend(): boolean {
    return this.sendable > 0 && this.state !== 'failed' && this.state !== 'complete';
  }

  /** Records that `f` went out in the packet with transmission sequence number `tsn`. */
  markSent(f: Fragment, tsn: number): void {
    if (f.needsSend) this.sendable--;
    if (f.tsn === 0) {
      this.neverSent--;
      if (!f.abandoned) this.unsent -= f.data.length;
      // The message has started: only its lifetime can abandon it now.
      const fra = f.flags & DataFlags.fragmentMask;
      if (f.deadline && (fra === DataFlags.fragmentWhole || fra === DataFlags.fragmentBegin))
        f.deadline.startBy = Number.POSITIVE_INFINITY;
    }
    if (!f.inFlight) {
      this.inFlightBytes += f.data.length;
      this.inFlightCount++;
    }
    f.tsn = tsn;
    f.naks = 0;
    f.needsSend = false;
    f.inFlight = true;
  }

  /**
   * FSN offset for a chunk of `seq` (RFC 7016 §2.3.11). The forward sequence number is worked
   * out from our own queue (everything below its first fragment not abandoned is acknowledged
   * or abandoned), never from the peer's acks, which a broken peer could make run ahead of
   * what we sent. An abandoned fragment below it names itself as the FSN: all up to it is done.
   */
  fsnOffset(seq: number): number {
    if (this.fsn < 0) {
      let i = 0;
      while (i < this.queue.length && this.queue[i].abandoned) i++;
      this.fsn = (this.queue[i]?.seq ?? this.nextSeq) - 1;
    }
    return seq - Math.min(seq, this.fsn);
  }

  /** Bytes of this flow that are in flight (for the peer's receive window). */
  bytesInFlight(): number {
    return this.inFlightBytes;
  }

  /** Any fragment in flight, even an empty one. */
  hasInFlight(): boolean {
    return this.inFlightCount > 0;
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
        if (f.inFlight) {
          result.ackedBytes += f.data.length;
          this.inFlightCount--;
        }
        if (f.needsSend) this.sendable--;
        if (f.tsn > result.maxAckedTsn) result.maxAckedTsn = f.tsn;
        continue;
      }
      this.queue[kept++] = f;
    }
    if (kept !== this.queue.length) this.fsn = -1;
    this.queue.length = kept;
    if (kept === 0) this.nextExpiry = Number.POSITIVE_INFINITY;
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
    const bytes = f.data.length;
    f.inFlight = false;
    this.inFlightCount--;
    if (!f.needsSend) this.sendable++;
    f.needsSend = true;
    this.inFlightBytes -= bytes;
    // RTMFP-NOTES §8.1: never retransmit expired media, only the news that it is gone.
    if (f.abandoned) emptyOut(f);
    return bytes;
  }

  /** Gives up a fragment of an expired message: the whole message goes with it. */
  private abandon(f: Fragment): void {
    const d = f.deadline;
    if (d && !d.abandoned) {
      d.abandoned = true;
      this.abandoned++;
    }
    if (f.tsn === 0) this.unsent -= f.data.length;
    f.abandoned = true;
    // In flight, its bytes stay counted until acked or lost (the congestion window is right).
    if (!f.inFlight) emptyOut(f);
    this.fsn = -1;
  }

  private push(flags: number, data: Buffer, writtenAt: number, deadline: MessageDeadline | undefined): void {
    this.queue.push({
      seq: this.nextSeq++,
      flags,
      data,
      inFlight: false,
      needsSend: true,
      tsn: 0,
      naks: 0,
      writtenAt,
      deadline,
      abandoned: false,
    });
    this.sendable++;
    this.neverSent++;
    this.unsent += data.length;
    this.fsn = -1;
  }

  private checkComplete(): void {
    if (this.state !== 'closing' || this.queue.length > 0) return;
    this.state = 'complete';
    this.onEnded();
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

/**
 * An abandoned fragment goes out with ABN and no data, FIN kept (RFC 7016 §2.3.11 flags), as
 * rtmfp-cpp's `SendFlow::assembleData` does: moving the FSN alone (§3.6.2.3) would leave the
 * receiver waiting whenever nothing follows on the flow.
 */
function emptyOut(f: Fragment): void {
  f.flags = DataFlags.abandon | (f.flags & DataFlags.final);
  f.data = EMPTY;
}

const EMPTY = Buffer.alloc(0);
