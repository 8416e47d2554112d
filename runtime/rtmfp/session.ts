import { randomBytes } from 'node:crypto';
import { type Address, sameAddress } from './address.ts';
import { ownedCopy, Reader } from './binary.ts';
import {
  CHUNK_HEADER_BYTES,
  ChunkType,
  DataOption,
  type ForwardedIHello,
  MANDATORY_OPTION_CUTOFF,
  readAckBitmap,
  readAckRanges,
  readFlowException,
  readForwardedIHello,
  readUserData,
  type UserData,
  writeAckRanges,
  writeFlowException,
  writeForwardedIHello,
} from './chunks.ts';
import { MAX_BURST_PACKETS } from './congestion.ts';
import { ProtocolError } from './errors.ts';
import { PacketMode, PacketReader, PacketWriter, TIMESTAMP_TICK_MS, timestampOf } from './packet.ts';
import type { PacketCipher } from './packet-crypto.ts';
import { RecvFlow } from './recv-flow.ts';
import { SendFlow } from './send-flow.ts';
import { SendScheduler } from './send-scheduler.ts';

export interface SessionConfig {
  /** Ping the peer after this long without hearing from it. */
  keepaliveMs: number;
  /** Give the session up after this long without hearing from it. */
  timeoutMs: number;
}

/** tcserver's keepalive; a peer silent for three keepalives is gone. */
export const DEFAULT_SESSION_CONFIG: SessionConfig = { keepaliveMs: 10_000, timeoutMs: 30_000 };

/** RFC 7016 §3.6.3.4.1: delayed acknowledgement, and the packet count that forces one. */
const DELAYED_ACK_MS = 200;
const PACKETS_BEFORE_ACK = 2;
/** RFC 7016 §3.5.5: resend Close Request every 5 s; stop after this (we are not waiting 90 s). */
const CLOSE_RESEND_MS = 5_000;
const CLOSE_GIVE_UP_MS = 15_000;
/** Answer repeated Close Requests for a while after closing (rtmfp-cpp lingers 19 s). */
const CLOSE_LINGER_MS = 19_000;
/** Stop echoing a peer timestamp this old (rtmfp-cpp: 128 s). */
const TIMESTAMP_ECHO_MAX_MS = 128_000;
/** RFC 7016 §3.5.2.2: RTT samples at or above half the 16-bit clock are bogus. */
const MAX_RTT_TICKS = 32_768;
/** Completed receive flows are kept this long to keep acking a retransmitted FIN (rtmfp-cpp 120 s). */
const RECV_FLOW_LINGER_MS = 120_000;
/** Bounds on what one peer can make us hold. */
export const MAX_RECV_FLOWS = 256;
const MAX_ACK_RANGES = 64;
/** Min interval between address-change challenges (RFC 7016 §3.5.4.2). */
const MOBILITY_CHALLENGE_MS = 1_000;
const MOBILITY_MARK = 0x4d; // 'M'

/**
 * Where every session builds its packets: a packet is begun, filled and sealed within one
 * synchronous call (seal copies it out), so one writer serves them all instead of 1.5 kB each.
 */
const writer = new PacketWriter();

export type SessionState = 'open' | 'closing' | 'closed';
export type CloseReason = 'closed' | 'closed-by-peer' | 'timeout' | 'aborted';

/** What a session needs from whoever runs it. Called synchronously. */
export interface SessionHooks {
  /** Put a datagram on the wire. */
  send(datagram: Buffer, to: Address): void;
  /** Data was queued outside of receive/service: call `flush` soon. */
  wake(session: Session): void;
  /** The peer opened a flow; set `flow.onMessage` or `flow.reject(code)`. */
  flow(session: Session, flow: RecvFlow): void;
  /** The session is over for its users (once). */
  closed(session: Session, reason: CloseReason): void;
  /** The session's ID may be forgotten: nothing more will arrive for it. */
  released(session: Session): void;
  /** The peer proved it moved to a new address (RFC 7016 §3.5.4.2). */
  moved?(session: Session, from: Address): void;
  /** `deadline` moved earlier: `service` is due by then (a host that sleeps until deadlines). */
  rescheduled?(session: Session): void;
  /** Part of a packet was refused (e.g. 'flow-limit'); the host counts it. */
  dropped?(session: Session, reason: string): void;
  /** The peer (a rendezvous server) relayed an IHello for us (RFC 7016 §2.3.3, §3.5.1.5). */
  forwardedHello?(session: Session, hello: ForwardedIHello, now: number): void;
}

export interface SessionOptions {
  role: 'initiator' | 'responder';
  /** Session ID the peer puts in packets to us. */
  localId: number;
  /** Session ID we put in packets to the peer. */
  remoteId: number;
  address: Address;
  cipher: PacketCipher;
  hooks: SessionHooks;
  now: number;
  config?: SessionConfig;
  /**
   * The freshest `now` the owner has seen (e.g. the endpoint's, moved by every datagram), for
   * what is written outside this session's own calls: media fanned out from another session's
   * packet takes its lifetime from it, not from this session's last packet.
   */
  clock?: () => number;
}

/**
 * One established RTMFP session (RFC 7016 §3.5 onwards): decrypts its packets, dispatches
 * chunks to flows, assembles outgoing packets under the congestion window, and runs its own
 * timers from the `now` it is handed. It does no I/O: datagrams leave through `hooks.send`.
 */
export class Session {
  readonly role: 'initiator' | 'responder';
  readonly localId: number;
  readonly remoteId: number;
  address: Address;
  state: SessionState = 'open';
  /** Earliest time `service` has work to do. */
  deadline = 0;
  /** Free for the layer above (e.g. the TC connection). */
  context: unknown;
  /** Datagram bytes this session sent and was handed, on the wire (e.g. a relay link's cost). */
  bytesSent = 0;
  bytesReceived = 0;

  readonly recvFlows = new Map<number, RecvFlow>();
  /** Our flows to the peer, under one congestion window. */
  readonly sender = new SendScheduler();

  private readonly cipher: PacketCipher;
  private readonly hooks: SessionHooks;
  private readonly config: SessionConfig;
  private readonly ownMode: number;
  private nextFlowId = 1;
  private lastReceivedAt: number;
  private lastPingAt = 0;
  private pingDue = false;
  private peerTimestamp = -1;
  private peerTimestampAt = 0;
  private closeStartedAt = 0;
  private closeSentAt = 0;
  private releaseAt = 0;
  private wakeRequested = false;
  /** Inside receive(), which flushes before it returns. */
  private receiving = false;
  private candidate: Address | undefined;
  private challenge: Buffer | undefined;
  private challengeAt = 0;
  private readonly recvFlowDoneAt = new Map<number, number>();
  private closedNotified = false;
  /** The latest `now` handed in, for calls made from outside a receive/service/flush. */
  private clock: number;
  private readonly ownerClock: (() => number) | undefined;

  constructor(o: SessionOptions) {
    this.role = o.role;
    this.localId = o.localId;
    this.remoteId = o.remoteId;
    this.address = o.address;
    this.cipher = o.cipher;
    this.hooks = o.hooks;
    this.config = o.config ?? DEFAULT_SESSION_CONFIG;
    this.ownMode = o.role === 'initiator' ? PacketMode.initiator : PacketMode.responder;
    this.lastReceivedAt = o.now;
    this.clock = o.now;
    this.ownerClock = o.clock;
    this.deadline = o.now + this.config.keepaliveMs;
  }

  /** Opens a flow to the peer (RFC 7016 §3.6.2.1), optionally as a return flow of one of its flows. */
  openFlow(metadata: Buffer, associatedFlowId?: number): SendFlow {
    const flow = new SendFlow(
      this.nextFlowId++,
      metadata,
      associatedFlowId,
      () => this.requestFlush(),
      () => this.now(),
    );
    this.sender.add(flow);
    return flow;
  }

  /**
   * One datagram addressed to this session. Throws ProtocolError when it does not decrypt or
   * authenticate, or breaks the protocol; the caller drops and counts it.
   */
  receive(datagram: Buffer, from: Address, now: number): void {
    if (this.state === 'closed' && this.releaseAt === 0) return;
    this.bytesReceived += datagram.length;
    this.receiving = true;
    try {
      this.receivePacket(datagram, from, now);
    } finally {
      this.receiving = false;
      // What was written while receiving went out with receivePacket's final flush, unless it
      // ended early (a protocol error, a close): then the host is asked for a flush as usual.
      if (this.wakeRequested) this.hooks.wake(this);
    }
  }

  private receivePacket(datagram: Buffer, from: Address, now: number): void {
    this.clock = now;
    const packet = new PacketReader(this.cipher.open(datagram));
    const { mode, timestamp, timestampEcho } = packet.header;
    // RFC 7016 §2.2.4: a packet in our own mode, or a startup packet, is not from our peer.
    if (mode === this.ownMode || mode === PacketMode.startup) throw new ProtocolError('bad-mode');
    if (this.state === 'closed') {
      this.answerCloseRequest(packet, from, now);
      return;
    }
    this.lastReceivedAt = now;
    if (timestamp !== undefined && timestamp !== this.peerTimestamp) {
      this.peerTimestamp = timestamp;
      this.peerTimestampAt = now;
    }
    if (timestampEcho !== undefined) {
      const ticks = (timestampOf(now) - timestampEcho) & 0xffff;
      if (ticks < MAX_RTT_TICKS) this.sender.congestion.onRttSample(ticks * TIMESTAMP_TICK_MS);
    }

    const r = packet.chunk;
    let previous: UserData | undefined;
    let dataFlows: Set<RecvFlow> | undefined;
    while (packet.nextChunk()) {
      const type = packet.chunkType;
      if (type !== ChunkType.nextUserData) previous = undefined;
      switch (type) {
        case ChunkType.userData:
        case ChunkType.nextUserData: {
          if (type === ChunkType.nextUserData && !previous)
            throw new ProtocolError('bad-chunk', 'Next User Data first');
          previous = readUserData(r, previous);
          const flow = this.onUserData(previous, now);
          if (flow) {
            dataFlows ??= new Set();
            dataFlows.add(flow);
          }
          break;
        }
        case ChunkType.ackRanges:
          this.sender.onAck(readAckRanges(r), now);
          break;
        case ChunkType.ackBitmap:
          this.sender.onAck(readAckBitmap(r), now);
          break;
        case ChunkType.bufferProbe: {
          const flow = this.recvFlows.get(r.vlu());
          if (flow) flow.ackNow = true;
          break;
        }
        case ChunkType.flowException: {
          const e = readFlowException(r);
          this.sender.onException(e.flowId, e.code);
          break;
        }
        case ChunkType.ping:
          this.sendControl(ChunkType.pingReply, r.rest(), from, now);
          break;
        case ChunkType.pingReply:
          this.onPingReply(r.rest(), from);
          break;
        case ChunkType.closeRequest:
          this.sendControl(ChunkType.closeAck, undefined, from, now);
          this.finish('closed-by-peer', now + CLOSE_LINGER_MS);
          return;
        case ChunkType.closeAck:
          // RFC 7016 §3.5.5.2: unsolicited, it is an abrupt close (rtmfp-cpp's shutdown sends
          // only this); answered once, as rtmfp-cpp does, then nothing lingers.
          if (this.state === 'open') this.sendControl(ChunkType.closeAck, undefined, from, now);
          this.finish(this.state === 'closing' ? 'closed' : 'closed-by-peer', now);
          return;
        case ChunkType.forwardedIHello:
          this.hooks.forwardedHello?.(this, readForwardedIHello(r), now);
          break;
        default:
          break; // RFC 7016 §2.3: unknown chunks are ignored
      }
    }
    // A flow hook may have aborted the session.
    if ((this.state as SessionState) === 'closed') return;
    if (dataFlows) {
      for (const flow of dataFlows) {
        if (++flow.packetsSinceAck >= PACKETS_BEFORE_ACK) flow.ackNow = true;
        if (flow.ackDueAt === 0) flow.ackDueAt = now + DELAYED_ACK_MS;
      }
    }
    if (!sameAddress(from, this.address)) this.challengeAddress(from, now);
    this.flush(now);
  }

  /** Every datagram of the session leaves here, counted. */
  private transmit(datagram: Buffer, to: Address): void {
    this.bytesSent += datagram.length;
    this.hooks.send(datagram, to);
  }

  /** Runs timers that are due: keepalive, timeout, retransmission, delayed acks, close. */
  service(now: number): void {
    this.clock = now;
    if (this.state === 'closed') {
      if (now >= this.releaseAt) this.release();
      return;
    }
    if (now - this.lastReceivedAt >= this.config.timeoutMs) {
      this.finish('timeout', now);
      return;
    }
    if (this.state === 'closing') {
      if (now - this.closeStartedAt >= CLOSE_GIVE_UP_MS) {
        this.finish('closed', now);
        return;
      }
    }
    this.sender.service(now);
    if (
      now - this.lastReceivedAt >= this.config.keepaliveMs &&
      now - this.lastPingAt >= this.config.keepaliveMs
    ) {
      this.pingDue = true;
    }
    for (const [id, at] of this.recvFlowDoneAt) {
      if (now - at < RECV_FLOW_LINGER_MS) continue;
      this.recvFlows.delete(id);
      this.recvFlowDoneAt.delete(id);
    }
    this.flush(now);
  }

  /** Sends whatever is ready: control chunks, acks, then data within the congestion window. */
  flush(now: number): void {
    this.clock = now;
    this.wakeRequested = false;
    if (this.state === 'closed') return;
    let burst = 0;
    // Acks not yet due ride along when data goes out anyway (RFC 7016 §3.6.3.4.1).
    const piggyback = this.sender.hasDataToSend();
    for (;;) {
      const pw = writer.begin(this.ownMode, timestampOf(now), this.echoOf(now));
      this.writeControl(pw, now, piggyback);
      const more = burst < MAX_BURST_PACKETS && this.sender.write(pw, now);
      if (pw.empty) break;
      this.transmit(this.cipher.seal(pw.view(), this.remoteId), this.address);
      if (!more) break;
      burst++;
    }
    this.updateDeadline(now);
  }

  /**
   * Graceful close (RFC 7016 §3.5.5): data already written is delivered, then Close Request is
   * sent until acknowledged. Users see the session closed at once.
   */
  close(now = this.clock): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.closeStartedAt = now;
    this.closeSentAt = -CLOSE_RESEND_MS;
    this.notifyClosed('closed');
    this.flush(now);
  }

  /**
   * Ends the session at once. By default the peer is told nothing; with `tellPeer` it gets an
   * unsolicited Close Ack (RFC 7016 §3.5.5.2), as rtmfp-cpp's `RTMFP::shutdown(true)` sends.
   */
  abort(o: { tellPeer?: boolean } = {}): void {
    if (o.tellPeer && this.state !== 'closed')
      this.sendControl(ChunkType.closeAck, undefined, this.address, this.clock);
    this.finish('aborted', 0);
  }

  /**
   * RFC 7016 §2.3.3: relays an IHello to this session's peer for a P2P introduction, in a
   * packet of its own, at once (rtmfp-cpp `Flow::forwardIHello`, Cumulus `ServerSession::
   * p2pHandshake`). Not retransmitted: the initiator repeats its IHello instead.
   */
  forwardIHello(c: ForwardedIHello): void {
    if (this.state !== 'open') return;
    const pw = writer.begin(this.ownMode, timestampOf(this.clock), this.echoOf(this.clock));
    writeForwardedIHello(pw.w, c);
    this.transmit(this.cipher.seal(pw.view(), this.remoteId), this.address);
  }

  /** The session clock as fresh as known: the owner's, never behind the last `now` handed in. */
  now(): number {
    return this.ownerClock ? Math.max(this.clock, this.ownerClock()) : this.clock;
  }

  /** Queue a flush through `hooks.wake` (coalesced). */
  requestFlush(): void {
    if (this.wakeRequested || this.state === 'closed') return;
    this.wakeRequested = true;
    // During receive, its own flush follows: no need for the host's (a setImmediate per reply).
    if (!this.receiving) this.hooks.wake(this);
  }

  private onUserData(chunk: UserData, now: number): RecvFlow | undefined {
    let flow = this.recvFlows.get(chunk.flowId);
    if (!flow) {
      if (this.recvFlows.size >= MAX_RECV_FLOWS) {
        this.hooks.dropped?.(this, 'flow-limit');
        return undefined;
      }
      flow = this.newRecvFlow(chunk);
      this.recvFlows.set(flow.id, flow);
      if (flow.state === 'open') this.hooks.flow(this, flow);
    }
    if (flow.state === 'complete') {
      flow.ackNow = true;
      return flow;
    }
    if (!flow.onData(chunk)) flow.reject(0);
    if ((flow.state as RecvFlow['state']) === 'complete') this.recvFlowDoneAt.set(flow.id, now);
    return flow;
  }

  /** RFC 7016 §3.6.3.1: a new flow needs its metadata; unknown mandatory options reject it. */
  private newRecvFlow(chunk: UserData): RecvFlow {
    let metadata: Buffer | undefined;
    let associated: number | undefined;
    let acceptable = true;
    for (const o of chunk.options ?? []) {
      if (o.type === DataOption.userMetadata) metadata = o.value;
      else if (o.type === DataOption.returnAssociation) associated = new Reader(o.value).vlu();
      else if (o.type < MANDATORY_OPTION_CUTOFF) acceptable = false;
    }
    // The options are views into the datagram: the flow keeps a copy of its own.
    const flow = new RecvFlow(chunk.flowId, ownedCopy(metadata ?? Buffer.alloc(0)), associated);
    if (!acceptable || !metadata || (associated !== undefined && !this.sender.flows.has(associated)))
      flow.reject(0);
    return flow;
  }

  private onPingReply(body: Buffer, from: Address): void {
    if (
      !this.challenge ||
      !this.candidate ||
      !sameAddress(from, this.candidate) ||
      !body.equals(this.challenge)
    )
      return;
    this.address = this.candidate;
    this.candidate = undefined;
    this.challenge = undefined;
    this.hooks.moved?.(this, from);
  }

  /** RFC 7016 §3.5.4.2: switch to a new address only once it echoes a ping we sent there. */
  private challengeAddress(from: Address, now: number): void {
    if (this.candidate && sameAddress(this.candidate, from) && now - this.challengeAt < MOBILITY_CHALLENGE_MS)
      return;
    this.candidate = from;
    this.challengeAt = now;
    this.challenge = Buffer.concat([Buffer.from([MOBILITY_MARK]), randomBytes(8)]);
    this.sendControl(ChunkType.ping, this.challenge, from, now);
  }

  /** A packet with one control chunk, sent at once to `to` (which may differ from the session address). */
  private sendControl(type: number, body: Buffer | undefined, to: Address, now: number): void {
    const pw = writer.begin(this.ownMode, timestampOf(now), this.echoOf(now));
    const s = pw.startChunk(type);
    if (body) pw.w.bytes(body.subarray(0, Math.max(0, pw.room - CHUNK_HEADER_BYTES)));
    pw.endChunk(s);
    this.transmit(this.cipher.seal(pw.view(), this.remoteId), to);
  }

  private writeControl(pw: PacketWriter, now: number, piggyback: boolean): void {
    // RFC 7016 §3.5.5: what was written before close() is delivered first, then Close Request.
    if (this.state === 'closing' && !this.sender.hasUnacknowledged()) {
      if (now - this.closeSentAt >= CLOSE_RESEND_MS) {
        pw.endChunk(pw.startChunk(ChunkType.closeRequest));
        this.closeSentAt = now;
      }
    }
    if (this.pingDue) {
      pw.endChunk(pw.startChunk(ChunkType.ping));
      this.pingDue = false;
      this.lastPingAt = now;
    }
    for (const flow of this.recvFlows.values()) {
      const due = flow.ackNow || (flow.ackDueAt !== 0 && (piggyback || now >= flow.ackDueAt));
      if (!due) continue;
      if (pw.room < 32) return; // the rest go in the next packet
      if (flow.state === 'rejected') writeFlowException(pw.w, { flowId: flow.id, code: flow.exceptionCode });
      const maxRanges = Math.min(MAX_ACK_RANGES, Math.floor((pw.room - 24) / 10));
      writeAckRanges(pw.w, flow.takeAck(maxRanges));
    }
  }

  private echoOf(now: number): number | undefined {
    if (this.peerTimestamp < 0 || now - this.peerTimestampAt > TIMESTAMP_ECHO_MAX_MS) return undefined;
    return (this.peerTimestamp + Math.floor((now - this.peerTimestampAt) / TIMESTAMP_TICK_MS)) & 0xffff;
  }

  private updateDeadline(now: number): void {
    let d = Math.min(
      this.lastReceivedAt + this.config.keepaliveMs,
      this.lastReceivedAt + this.config.timeoutMs,
    );
    if (now - this.lastPingAt < this.config.keepaliveMs)
      d = Math.max(d, this.lastPingAt + this.config.keepaliveMs);
    d = Math.min(d, this.lastReceivedAt + this.config.timeoutMs);
    d = Math.min(d, this.sender.deadline());
    if (this.state === 'closing')
      d = Math.min(d, this.closeSentAt + CLOSE_RESEND_MS, this.closeStartedAt + CLOSE_GIVE_UP_MS);
    for (const flow of this.recvFlows.values()) {
      if (flow.ackNow) d = Math.min(d, now);
      else if (flow.ackDueAt !== 0) d = Math.min(d, flow.ackDueAt);
    }
    this.setDeadline(d);
  }

  private setDeadline(d: number): void {
    const earlier = d < this.deadline;
    this.deadline = d;
    if (earlier) this.hooks.rescheduled?.(this);
  }

  /**
   * A closed session lingers only to answer a repeated Close Request (our Close Ack was lost);
   * a Close Ack ends the lingering (RFC 7016 §3.5.5.2); everything else is ignored.
   */
  private answerCloseRequest(packet: PacketReader, from: Address, now: number): void {
    while (packet.nextChunk()) {
      if (packet.chunkType === ChunkType.closeRequest) {
        this.sendControl(ChunkType.closeAck, undefined, from, now);
        return;
      }
      if (packet.chunkType === ChunkType.closeAck) {
        this.release();
        return;
      }
    }
  }

  private finish(reason: CloseReason, releaseAt: number): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.releaseAt = releaseAt;
    this.setDeadline(releaseAt);
    // What lingers (CLOSE_LINGER_MS) is only what a Close Ack needs: ids, address, keys.
    this.sender.clear();
    this.recvFlows.clear();
    this.recvFlowDoneAt.clear();
    this.notifyClosed(reason);
    if (releaseAt <= this.clock) this.release();
  }

  private notifyClosed(reason: CloseReason): void {
    if (this.closedNotified) return;
    this.closedNotified = true;
    this.hooks.closed(this, reason);
  }

  private release(): void {
    this.releaseAt = 0;
    this.recvFlows.clear();
    this.hooks.released(this);
  }
}
