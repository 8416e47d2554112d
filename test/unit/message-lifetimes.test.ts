import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Address } from '../../runtime/rtmfp/address.ts';
import { DataFlags, type UserData } from '../../runtime/rtmfp/chunks.ts';
import { PacketMode, PacketWriter } from '../../runtime/rtmfp/packet.ts';
import { PacketCipher } from '../../runtime/rtmfp/packet-crypto.ts';
import { RecvFlow } from '../../runtime/rtmfp/recv-flow.ts';
import { SendFlow } from '../../runtime/rtmfp/send-flow.ts';
import { SendScheduler } from '../../runtime/rtmfp/send-scheduler.ts';
import { Session, type SessionHooks } from '../../runtime/rtmfp/session.ts';

/**
 * Partial reliability (RTMFP-NOTES §8.1): media written with a lifetime is abandoned once the
 * lifetime passes, never retransmitted, and the receiver moves past it. Two sessions are wired
 * back to back in memory; the test decides which datagrams arrive and what time it is.
 */

const INITIATOR: Address = { address: '127.0.0.1', port: 50_001 };
const RESPONDER: Address = { address: '127.0.0.1', port: 1935 };
const KEY_A = Buffer.alloc(16, 0xa1);
const KEY_B = Buffer.alloc(16, 0xb2);
const METADATA = Buffer.from('TC\x04\x00', 'latin1');
/** Bigger than any datagram that carries no message data (acks, ABN chunks, small messages). */
const SMALL_DATAGRAM = 200;
/** Spans several packets. */
const LARGE = 5_000;
/** Timer runs in one `Wire.run` before it counts as a session that never settles. */
const MAX_STEPS = 10_000;

/** A message named `name`, `size` bytes long: `name|....`. */
function message(name: string, size = 16): Buffer {
  const b = Buffer.alloc(size, 0x2e);
  b.write(`${name}|`, 'latin1');
  return b;
}

function nameOf(m: Buffer): string {
  return m.toString('latin1', 0, m.indexOf(0x7c));
}

interface End {
  session: Session;
  /** Datagrams waiting for the wire. */
  out: Buffer[];
  /** Names of the messages delivered, in order. */
  got: string[];
}

function end(role: 'initiator' | 'responder', now: number, clock?: () => number): End {
  const e: End = { session: undefined as unknown as Session, out: [], got: [] };
  const hooks: SessionHooks = {
    send: (datagram) => e.out.push(Buffer.from(datagram)),
    wake: () => {},
    flow: (_session, flow) => {
      flow.onMessage = (m) => e.got.push(nameOf(m));
    },
    closed: () => {},
    released: () => {},
  };
  const initiator = role === 'initiator';
  e.session = new Session({
    role,
    localId: initiator ? 1 : 2,
    remoteId: initiator ? 2 : 1,
    address: initiator ? RESPONDER : INITIATOR,
    cipher: new PacketCipher({
      encryptKey: initiator ? KEY_A : KEY_B,
      decryptKey: initiator ? KEY_B : KEY_A,
      sendSseq: false,
      recvSseq: false,
    }),
    hooks,
    now,
    clock,
  });
  return e;
}

/** A sender (`a`, one flow to `b`) and a receiver, with a clock and a lossy wire from a to b. */
class Wire {
  readonly a: End;
  readonly b: End;
  readonly flow: SendFlow;
  now = 0;
  /** Every datagram a put on the wire, with when, dropped or not. */
  readonly sent: Array<{ at: number; bytes: number }> = [];
  /** Return true to lose a datagram from a to b. */
  drop: (datagram: Buffer) => boolean = () => false;

  constructor(clock?: () => number) {
    this.a = end('initiator', 0, clock);
    this.b = end('responder', 0);
    this.flow = this.a.session.openFlow(METADATA);
  }

  /** Moves datagrams both ways until neither side has anything more to say. */
  exchange(): void {
    while (this.a.out.length > 0 || this.b.out.length > 0) {
      for (const d of this.a.out.splice(0)) {
        this.sent.push({ at: this.now, bytes: d.length });
        if (!this.drop(d)) this.b.session.receive(d, INITIATOR, this.now);
      }
      for (const d of this.b.out.splice(0)) this.a.session.receive(d, RESPONDER, this.now);
    }
  }

  /** Flushes what was written at `now`, then runs both sessions' timers up to `until`. */
  run(until: number): void {
    this.a.session.flush(this.now);
    this.exchange();
    for (let steps = 0; ; steps++) {
      const next = Math.min(this.a.session.deadline, this.b.session.deadline);
      if (next > until) break;
      assert.ok(steps < MAX_STEPS, `the sessions keep asking for service at ${next} ms`);
      this.now = Math.max(this.now, next);
      this.a.session.service(this.now);
      this.b.session.service(this.now);
      this.exchange();
    }
    this.now = until;
  }

  /** Largest datagram a sent at or after `from`. */
  largestSince(from: number): number {
    return Math.max(0, ...this.sent.filter((s) => s.at >= from).map((s) => s.bytes));
  }
}

describe('message lifetimes between two sessions', () => {
  test('a message whose lifetime passes before it is sent is never sent and the receiver gets the next one', () => {
    const w = new Wire();
    w.flow.write(message('stale', LARGE), { lifetimeMs: 100 });
    w.flow.write(message('next'));
    w.now = 150;
    w.run(1_000);
    assert.deepEqual(w.b.got, ['next']);
    assert.ok(
      w.largestSince(0) < SMALL_DATAGRAM,
      `no datagram carried the stale message (${w.largestSince(0)} B)`,
    );
    assert.equal(w.flow.abandonedMessages, 1);
    assert.equal(w.flow.queue.length, 0, 'the ABN chunks and the next message were acknowledged');
    assert.equal(w.a.session.sender.bytesInFlight, 0);
  });

  test('a lost fragment of an expired message is not retransmitted and the receiver moves on', () => {
    const w = new Wire();
    let datagrams = 0;
    // Only the first fragment arrives before the lifetime runs out: the rest, and every
    // retransmission of them in time, are lost.
    w.drop = () => w.now < 100 && ++datagrams >= 2;
    w.flow.write(message('media', LARGE), { lifetimeMs: 100 });
    w.run(10);
    assert.deepEqual(w.b.got, []);
    const expiredAt = w.now;
    w.run(10_000);
    assert.ok(
      w.largestSince(expiredAt) < SMALL_DATAGRAM,
      `nothing was resent with data (${w.largestSince(expiredAt)} B)`,
    );
    assert.equal(w.flow.abandonedMessages, 1);
    assert.equal(w.flow.queue.length, 0, 'the lost fragment was retired as abandoned');
    assert.equal(w.a.session.sender.bytesInFlight, 0);
    w.flow.write(message('after'));
    w.run(11_000);
    assert.deepEqual(w.b.got, ['after'], 'no partial media message, and the flow goes on');
  });

  test('a lost fragment within its lifetime is retransmitted and the message arrives whole', () => {
    const w = new Wire();
    let datagrams = 0;
    w.drop = () => ++datagrams === 2;
    w.flow.write(message('media', LARGE), { lifetimeMs: 60_000 });
    w.run(10_000);
    assert.deepEqual(w.b.got, ['media']);
    assert.equal(w.flow.abandonedMessages, 0);
  });

  test('reliable messages on the same flow still arrive in order around abandoned media', () => {
    const w = new Wire();
    let datagrams = 0;
    w.drop = () => ++datagrams % 3 === 0;
    w.flow.write(message('r1', LARGE));
    w.flow.write(message('m1', LARGE), { lifetimeMs: 50 });
    w.flow.write(message('r2'));
    w.now = 100;
    w.flow.write(message('m2', LARGE), { lifetimeMs: 60_000 });
    w.flow.write(message('r3', LARGE));
    w.flow.write(message('m3', LARGE), { lifetimeMs: 120 });
    w.run(20_000);
    assert.deepEqual(w.b.got, ['r1', 'r2', 'm2', 'r3']);
    assert.equal(w.flow.abandonedMessages, 2);
    assert.equal(w.a.session.sender.bytesInFlight, 0);
  });

  test('expireAll abandons queued media but not reliable messages', () => {
    const w = new Wire();
    w.flow.write(message('r1'));
    w.flow.write(message('gop1-key', LARGE), { lifetimeMs: 60_000 });
    w.flow.write(message('r2'));
    w.flow.write(message('gop1-inter'), { lifetimeMs: 60_000 });
    w.flow.expireAll();
    w.flow.write(message('gop2-key'), { lifetimeMs: 60_000 });
    w.run(1_000);
    assert.deepEqual(w.b.got, ['r1', 'r2', 'gop2-key']);
    assert.equal(w.flow.abandonedMessages, 2);
    assert.ok(w.largestSince(0) < SMALL_DATAGRAM, 'the large keyframe never went out');
  });

  test('an expiry the peer must hear of sets the session deadline, so its ABN chunks go out then', () => {
    const w = new Wire();
    // Nothing reaches the receiver: the window fills with a reliable message that stays unacked.
    w.drop = () => true;
    w.flow.write(message('reliable', 60_000));
    w.flow.write(message('media', LARGE), { lifetimeMs: 200 });
    w.a.session.flush(0);
    w.exchange();
    assert.ok(w.flow.unsentBytes >= LARGE, 'the media waits behind the congestion window');
    assert.ok(w.a.session.deadline <= 200, `deadline ${w.a.session.deadline}`);
    w.now = w.a.session.deadline;
    w.a.session.service(w.now);
    assert.equal(w.flow.abandonedMessages, 1);
    assert.ok(w.flow.unsentBytes < 60_000, 'the media is no longer waiting to be sent');
  });

  test('media fanned out from another session takes its lifetime from the owner clock, not a stale session clock', () => {
    let ownerNow = 0;
    const w = new Wire(() => ownerNow);
    // The session last heard of time at 0; the endpoint has since seen packets up to 5 s.
    ownerNow = 5_000;
    w.flow.write(message('fresh'), { lifetimeMs: 1_000 });
    w.now = 5_010;
    w.run(6_000);
    assert.deepEqual(w.b.got, ['fresh']);
    assert.equal(w.flow.abandonedMessages, 0);
  });
});

const META = Buffer.from('54430400', 'hex');

/** A flow under a scheduler, on a clock the test sets. */
function scheduled(): { s: SendScheduler; flow: SendFlow; clock: { now: number } } {
  const clock = { now: 0 };
  const s = new SendScheduler();
  const flow = new SendFlow(
    1,
    META,
    undefined,
    () => {},
    () => clock.now,
  );
  s.add(flow);
  return { s, flow, clock };
}

function sendPacket(s: SendScheduler, now: number): void {
  s.write(new PacketWriter().begin(PacketMode.responder, 0, undefined), now);
}

describe('SendFlow lifetimes', () => {
  test('unsentBytes and unsentAge track what is written and not yet sent', () => {
    const { s, flow, clock } = scheduled();
    assert.equal(flow.unsentBytes, 0);
    assert.equal(flow.unsentAge(100), 0);
    flow.write(Buffer.alloc(100), { lifetimeMs: 1_000 });
    clock.now = 10;
    flow.write(Buffer.alloc(200));
    assert.equal(flow.unsentBytes, 300);
    assert.equal(flow.unsentAge(50), 50);
    s.congestion.cwnd = 150;
    sendPacket(s, 50);
    assert.equal(flow.queue.filter((f) => f.inFlight).length, 1, 'the window takes only the first');
    assert.equal(flow.unsentBytes, 200);
    assert.equal(flow.unsentAge(50), 40);
    s.onAck({ flowId: 1, bufferBlocks: 64, cumulativeAck: 1, ranges: [] }, 60);
    assert.equal(flow.unsentBytes, 200, 'an ack of sent data changes nothing unsent');
    sendPacket(s, 60);
    assert.equal(flow.unsentBytes, 0);
    assert.equal(flow.unsentAge(60), 0);
  });

  test('abandoning unsent media takes it off unsentBytes and frees its data', () => {
    const { flow } = scheduled();
    flow.write(Buffer.alloc(5_000, 1), { lifetimeMs: 1_000 });
    flow.write(Buffer.alloc(10, 2));
    flow.expireAll();
    assert.equal(flow.unsentBytes, 10);
    const abandoned = flow.queue.filter((f) => f.abandoned);
    assert.ok(abandoned.length > 1);
    for (const f of abandoned) {
      assert.equal(f.data.length, 0);
      assert.equal(f.flags, DataFlags.abandon);
    }
  });

  test('in-flight media stays counted until acked, then bytes in flight return to 0', () => {
    const { s, flow } = scheduled();
    flow.write(Buffer.alloc(1_000), { lifetimeMs: 100 });
    sendPacket(s, 0);
    assert.equal(s.bytesInFlight, 1_000);
    sendPacket(s, 200);
    assert.equal(flow.abandonedMessages, 1);
    assert.equal(s.bytesInFlight, 1_000, 'the packet is still on the wire');
    s.onAck({ flowId: 1, bufferBlocks: 64, cumulativeAck: 1, ranges: [] }, 210);
    assert.equal(s.bytesInFlight, 0);
    assert.equal(flow.queue.length, 0);
  });

  test('media that expires in flight and is then lost goes out again only as an empty ABN chunk', () => {
    const { s, flow } = scheduled();
    flow.write(Buffer.alloc(1_000), { lifetimeMs: 100 });
    sendPacket(s, 0);
    sendPacket(s, 200);
    const [f] = flow.queue;
    assert.equal(f.abandoned, true);
    assert.equal(s.bytesInFlight, 1_000);
    const late = s.rtoAt;
    s.service(late);
    assert.equal(s.bytesInFlight, 0);
    assert.equal(f.data.length, 0);
    assert.equal(f.flags, DataFlags.abandon);
    sendPacket(s, late);
    assert.equal(f.inFlight, true, 'the ABN chunk went out');
    assert.equal(s.bytesInFlight, 0);
  });

  test('in-flight media lost before it expired is resent as an empty ABN chunk once it has', () => {
    const { s, flow } = scheduled();
    flow.write(Buffer.alloc(1_000), { lifetimeMs: 100 });
    sendPacket(s, 0);
    const late = s.rtoAt + 100;
    s.service(late);
    assert.equal(s.bytesInFlight, 0);
    sendPacket(s, late);
    const [f] = flow.queue;
    assert.equal(f.abandoned, true);
    assert.equal(f.data.length, 0);
    assert.equal(f.inFlight, true, 'the ABN chunk went out');
    assert.equal(s.bytesInFlight, 0);
    assert.ok(s.rtoAt > 0, 'and the retransmission timer covers it');
  });

  test('the FSN moves past abandoned fragments to the first one that is not', () => {
    const { s, flow } = scheduled();
    flow.write(Buffer.alloc(5_000), { lifetimeMs: 100 });
    flow.write(Buffer.alloc(10));
    const next = flow.queue[flow.queue.length - 1].seq;
    assert.equal(flow.fsnOffset(next), next);
    sendPacket(s, 200);
    assert.equal(flow.fsnOffset(next), 1, 'FSN = the last abandoned sequence number');
  });

  test('a message not started within startWithinMs is abandoned; one started in time keeps its lifetime', () => {
    const { s, flow } = scheduled();
    flow.write(Buffer.alloc(100), { lifetimeMs: 1_000, startWithinMs: 10 });
    sendPacket(s, 5);
    s.congestion.cwnd = 0;
    flow.write(Buffer.alloc(100), { lifetimeMs: 1_000, startWithinMs: 10 });
    s.bytesInFlight = 100;
    sendPacket(s, 20);
    assert.equal(flow.abandonedMessages, 1);
    assert.deepEqual(
      flow.queue.map((f) => f.abandoned),
      [false, true],
    );
  });

  test('a lifetime that is not a finite number of ms ≥ 0 is refused, naming the field', () => {
    const { flow } = scheduled();
    assert.throws(() => flow.write(Buffer.alloc(1), { lifetimeMs: Number.NaN }), /lifetimeMs/);
    assert.throws(() => flow.write(Buffer.alloc(1), { lifetimeMs: 10, startWithinMs: -1 }), /startWithinMs/);
    assert.equal(flow.queue.length, 0);
  });
});

describe('RecvFlow and abandoned messages', () => {
  function chunk(seq: number, flags: number, data: string, fsn = 0): UserData {
    return {
      flags,
      flowId: 1,
      sequenceNumber: seq,
      fsnOffset: seq - fsn,
      options: undefined,
      data: Buffer.from(data),
    };
  }

  test('a message whose later fragments were abandoned after its first arrived is delivered to nobody', () => {
    const recv = new RecvFlow(1, METADATA, undefined);
    const got: string[] = [];
    recv.onMessage = (m) => got.push(m.toString());
    recv.onData(chunk(1, DataFlags.fragmentBegin, 'a'));
    recv.onData(chunk(2, DataFlags.fragmentMiddle, 'b'));
    recv.onData(chunk(4, DataFlags.fragmentEnd, 'd'));
    recv.onData(chunk(3, DataFlags.abandon, ''));
    recv.onData(chunk(5, DataFlags.fragmentWhole, 'next'));
    assert.deepEqual(got, ['next']);
  });

  test('an FSN past a half-received message drops it, and a late fragment of it delivers nothing', () => {
    const recv = new RecvFlow(1, METADATA, undefined);
    const got: string[] = [];
    recv.onMessage = (m) => got.push(m.toString());
    recv.onData(chunk(1, DataFlags.fragmentBegin, 'a'));
    recv.onData(chunk(4, DataFlags.fragmentWhole, 'next', 3));
    recv.onData(chunk(3, DataFlags.fragmentEnd, 'c'));
    assert.deepEqual(got, ['next']);
  });
});
