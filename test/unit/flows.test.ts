import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_VLU, Writer } from '../../runtime/rtmfp/binary.ts';
import { DataFlags, type UserData, writeUserData } from '../../runtime/rtmfp/chunks.ts';
import { PacketMode, PacketWriter } from '../../runtime/rtmfp/packet.ts';
import { RECV_BUFFER_BYTES, RecvFlow } from '../../runtime/rtmfp/recv-flow.ts';
import { type AckResult, type Fragment, NAKS_FOR_LOSS, SendFlow } from '../../runtime/rtmfp/send-flow.ts';
import { prng } from '../support/prng.ts';

const FLOW_ID = 5;
const METADATA = Buffer.from('TC\x04\x00', 'latin1');

function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function randomMessage(length: number, random: () => number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = Math.floor(random() * 256);
  return b;
}

/**
 * A SendFlow wired to a RecvFlow with no session in between: `transmit` does what the session's
 * writeData does to each fragment it puts in a packet (one fragment per packet here), and the
 * test decides which chunks arrive, in what order, how often.
 */
class Link {
  readonly send = new SendFlow(
    FLOW_ID,
    METADATA,
    undefined,
    () => {},
    () => 0,
  );
  readonly recv = new RecvFlow(FLOW_ID, METADATA, undefined);
  readonly delivered: Buffer[] = [];
  completions = 0;
  private tsn = 0;

  constructor() {
    this.recv.onMessage = (m) => this.delivered.push(Buffer.from(m));
    this.recv.onComplete = () => this.completions++;
  }

  /** Sends every fragment that needs sending, returning the chunks as the receiver would parse them. */
  transmit(): UserData[] {
    const chunks: UserData[] = [];
    for (const f of this.send.queue) if (f.needsSend) chunks.push(this.transmitOne(f));
    return chunks;
  }

  transmitOne(f: Fragment): UserData {
    this.send.markSent(f, ++this.tsn);
    return {
      flags: f.flags,
      flowId: this.send.id,
      sequenceNumber: f.seq,
      fsnOffset: this.send.fsnOffset(f.seq),
      options: this.send.acknowledged ? undefined : this.send.options,
      data: f.data,
    };
  }

  deliver(chunks: UserData[]): void {
    for (const c of chunks) assert.equal(this.recv.onData(c), true);
  }

  /** The receiver's ack, handed to the sender. */
  ack(): ReturnType<SendFlow['onAck']> {
    return this.send.onAck(this.recv.takeAck(64));
  }
}

function userData(seq: number, flags: number, data: string, fsnOffset = seq): UserData {
  return {
    flags,
    flowId: FLOW_ID,
    sequenceNumber: seq,
    fsnOffset,
    options: undefined,
    data: Buffer.from(data),
  };
}

const SIZES = [10, 5_000, 100_000];

function writeAll(link: Link, seed: number): Buffer[] {
  const random = prng(seed);
  const messages = SIZES.map((n) => randomMessage(n, random));
  for (const m of messages) link.send.write(m);
  return messages;
}

describe('SendFlow fragmentation', () => {
  test('a small message is one whole fragment; a large one is begin, middles, end', () => {
    const link = new Link();
    const messages = writeAll(link, 1);
    const max = link.send.maxFragment;
    const counts = SIZES.map((n) => (n <= max ? 1 : Math.ceil(n / max)));
    assert.equal(link.send.queue.length, counts[0] + counts[1] + counts[2]);
    assert.deepEqual(
      link.send.queue.map((f) => f.seq),
      link.send.queue.map((_, i) => i + 1),
    );
    let at = 0;
    for (let m = 0; m < messages.length; m++) {
      const frags = link.send.queue.slice(at, at + counts[m]);
      at += counts[m];
      assert.deepEqual(Buffer.concat(frags.map((f) => f.data)), messages[m]);
      const fra = frags.map((f) => f.flags & DataFlags.fragmentMask);
      if (frags.length === 1) assert.deepEqual(fra, [DataFlags.fragmentWhole]);
      else {
        assert.equal(fra[0], DataFlags.fragmentBegin);
        assert.equal(fra[fra.length - 1], DataFlags.fragmentEnd);
        for (const x of fra.slice(1, -1)) assert.equal(x, DataFlags.fragmentMiddle);
        for (const f of frags.slice(0, -1)) assert.equal(f.data.length, max);
      }
    }
    assert.ok(link.send.queue.every((f) => f.needsSend && !f.inFlight));
    assert.equal(link.send.hasDataToSend(), true);
  });

  test('a full fragment with options and the largest VLUs fits one packet', () => {
    const send = new SendFlow(
      MAX_VLU,
      Buffer.alloc(64),
      2,
      () => {},
      () => 0,
    );
    assert.equal(send.options.length, 2);
    const pw = new PacketWriter().begin(PacketMode.responder, 1, 2);
    const header = {
      flags: DataFlags.fragmentBegin,
      flowId: MAX_VLU,
      sequenceNumber: MAX_VLU,
      fsnOffset: MAX_VLU,
    };
    writeUserData(pw.w, header, send.options, Buffer.alloc(send.maxFragment));
    assert.ok(pw.room >= 0, `over by ${-pw.room}`);
    assert.ok(pw.room < 8, 'and leaves no fragment-sized waste');
  });

  test('keeps its metadata and return association in memory of their own, not in a shared slab', () => {
    const pooled = Buffer.from('TC\x04\x00'); // from Buffer's 64 KiB pool
    const send = new SendFlow(
      5,
      pooled,
      3,
      () => {},
      () => 0,
    );
    assert.deepEqual(send.metadata, pooled);
    for (const o of send.options) assert.equal(o.value.buffer.byteLength, o.value.length, `option ${o.type}`);
  });

  test('write wakes the session', () => {
    let wakes = 0;
    const send = new SendFlow(
      1,
      METADATA,
      undefined,
      () => wakes++,
      () => 0,
    );
    send.write(Buffer.from('x'));
    assert.equal(wakes, 1);
  });
});

describe('SendFlow → RecvFlow delivery', () => {
  test('in order: messages arrive whole, in order, once; the ack retires every fragment', () => {
    const link = new Link();
    const messages = writeAll(link, 2);
    const chunks = link.transmit();
    link.deliver(chunks);
    assert.deepEqual(link.delivered, messages);
    const inFlight = link.send.bytesInFlight();
    const result = link.ack();
    assert.deepEqual(bytesOf(result), { ackedBytes: inFlight, lostBytes: 0 });
    assert.equal(link.send.queue.length, 0);
  });

  test('reversed: nothing is delivered until the first fragment arrives, then everything in order', () => {
    const link = new Link();
    const messages = writeAll(link, 3);
    const chunks = link.transmit().reverse();
    link.deliver(chunks.slice(0, -1));
    assert.equal(link.delivered.length, 0);
    link.deliver(chunks.slice(-1));
    assert.deepEqual(link.delivered, messages);
    link.ack();
    assert.equal(link.send.queue.length, 0);
  });

  test('shuffled with duplicates: each message is delivered exactly once', () => {
    for (const seed of [4, 5, 6]) {
      const random = prng(seed);
      const link = new Link();
      const messages = writeAll(link, seed);
      const chunks = link.transmit();
      const copies = chunks.flatMap((c) => Array.from({ length: 1 + Math.floor(random() * 3) }, () => c));
      link.deliver(shuffle(copies, random));
      assert.deepEqual(link.delivered, messages, `seed ${seed}`);
      link.ack();
      assert.equal(link.send.queue.length, 0);
    }
  });

  test('dropped fragments are retired only once retransmitted and received', () => {
    for (const seed of [7, 8, 9]) {
      const random = prng(seed);
      const link = new Link();
      const messages = writeAll(link, seed);
      let chunks = link.transmit();
      let rounds = 0;
      while (chunks.length > 0) {
        assert.ok(++rounds < 50, 'converges');
        const arriving = chunks.filter(() => random() >= 0.25);
        link.deliver(shuffle(arriving, random));
        const ack = link.recv.takeAck(1000);
        link.send.onAck(ack);
        // Exactly the unreceived fragments stay queued.
        const unreceived = chunks.filter((c) => !arriving.includes(c)).map((c) => c.sequenceNumber);
        assert.deepEqual(
          link.send.queue.map((f) => f.seq),
          unreceived.sort((a, b) => a - b),
        );
        link.send.onTimeout();
        chunks = link.transmit();
      }
      assert.deepEqual(link.delivered, messages, `seed ${seed}`);
      assert.equal(link.send.bytesInFlight(), 0);
    }
  });

  test('retransmissions carry an FSN that lets the receiver trust what was acked', () => {
    const link = new Link();
    writeAll(link, 10);
    const chunks = link.transmit();
    link.deliver(chunks.filter((c) => c.sequenceNumber !== 3));
    link.ack();
    link.send.onTimeout();
    const [again] = link.transmit();
    assert.equal(again.sequenceNumber, 3);
    assert.equal(again.sequenceNumber - again.fsnOffset, 2);
  });

  test('an ack reports the received ranges above the cumulative ack', () => {
    const link = new Link();
    writeAll(link, 11);
    const chunks = link.transmit();
    link.deliver(chunks.filter((c) => ![3, 4, 7].includes(c.sequenceNumber)));
    const ack = link.recv.takeAck(10);
    assert.equal(ack.flowId, FLOW_ID);
    assert.equal(ack.cumulativeAck, 2);
    assert.deepEqual(ack.ranges, [
      [5, 6],
      [8, chunks.length],
    ]);
    assert.deepEqual(link.recv.takeAck(1).ranges, [[5, 6]]);
  });
});

describe('SendFlow loss detection', () => {
  test(`a fragment is lost after ${NAKS_FOR_LOSS} acks of later packets`, () => {
    const link = new Link();
    link.send.write(Buffer.alloc(5_000, 1));
    const chunks = link.transmit();
    assert.equal(chunks.length, 5);
    const first = link.send.queue[0];
    for (let i = 1; i < NAKS_FOR_LOSS; i++) {
      link.deliver([chunks[i]]);
      assert.deepEqual(bytesOf(link.ack()), { ackedBytes: chunks[i].data.length, lostBytes: 0 });
      assert.equal(first.needsSend, false);
      assert.equal(first.inFlight, true);
    }
    link.deliver([chunks[NAKS_FOR_LOSS]]);
    assert.deepEqual(bytesOf(link.ack()), {
      ackedBytes: chunks[NAKS_FOR_LOSS].data.length,
      lostBytes: first.data.length,
    });
    assert.equal(first.needsSend, true);
    assert.equal(first.inFlight, false);
    // The fragment sent after the acked ones is not suspected.
    const last = link.send.queue[link.send.queue.length - 1];
    assert.equal(last.seq, 5);
    assert.equal(last.naks, 0);
    assert.equal(last.inFlight, true);

    link.deliver([...link.transmit(), chunks[4]]);
    assert.equal(link.delivered.length, 1);
    assert.deepEqual(link.delivered[0], Buffer.alloc(5_000, 1));
    link.ack();
    assert.equal(link.send.queue.length, 0);
  });

  test('an ack that retires nothing new counts no NAK', () => {
    const link = new Link();
    link.send.write(Buffer.alloc(5_000, 1));
    const chunks = link.transmit();
    link.deliver([chunks[1]]);
    link.ack();
    link.ack();
    link.ack();
    assert.equal(link.send.queue[0].naks, 1);
    assert.equal(link.send.queue[0].inFlight, true);
  });

  test('an ack beyond what was sent never makes an FSN offset negative', () => {
    const link = new Link();
    link.send.write(Buffer.from('a'));
    link.transmit();
    link.send.onAck({ flowId: FLOW_ID, bufferBlocks: 64, cumulativeAck: 1000, ranges: [] });
    link.send.write(Buffer.from('b'));
    const [chunk] = link.transmit();
    assert.ok(chunk.fsnOffset >= 0, `fsnOffset ${chunk.fsnOffset}`);
    assert.doesNotThrow(() => writeUserData(new Writer(), chunk, undefined, chunk.data));
  });

  test('a timeout makes everything in flight lost', () => {
    const link = new Link();
    link.send.write(Buffer.alloc(3_000, 2));
    link.transmit();
    const bytes = link.send.bytesInFlight();
    assert.equal(link.send.onTimeout(), bytes);
    assert.equal(link.send.bytesInFlight(), 0);
    assert.ok(link.send.queue.every((f) => f.needsSend));
  });
});

describe('flow completion', () => {
  test('close marks the last unsent fragment FIN; both sides complete', () => {
    const link = new Link();
    const messages = writeAll(link, 12);
    link.send.close();
    assert.equal(link.send.state, 'closing');
    const chunks = link.transmit();
    assert.equal(chunks[chunks.length - 1].flags & DataFlags.final, DataFlags.final);
    assert.equal(chunks.filter((c) => c.flags & DataFlags.final).length, 1);
    link.deliver(shuffle(chunks, prng(12)));
    assert.deepEqual(link.delivered, messages);
    assert.equal(link.completions, 1);
    assert.equal(link.recv.state, 'complete');
    assert.equal(link.recv.ackNow, true);
    link.ack();
    assert.equal(link.send.state, 'complete');
    assert.equal(link.send.hasDataToSend(), false);
  });

  test('close after everything was sent adds an empty abandoned FIN fragment', () => {
    const link = new Link();
    const messages = writeAll(link, 13);
    link.deliver(link.transmit());
    link.send.close();
    const [fin] = link.transmit();
    assert.equal(fin.flags, DataFlags.abandon | DataFlags.final);
    assert.equal(fin.data.length, 0);
    link.deliver([fin]);
    assert.equal(link.completions, 1);
    link.ack();
    assert.equal(link.send.state, 'complete');
    assert.deepEqual(link.delivered, messages);
  });

  test('a FIN that arrives first completes the flow only when the rest has arrived', () => {
    const link = new Link();
    writeAll(link, 14);
    link.send.close();
    const chunks = link.transmit();
    link.deliver(chunks.slice(-1));
    assert.equal(link.completions, 0);
    assert.equal(link.recv.state, 'open');
    link.deliver(chunks.slice(0, -1));
    assert.equal(link.completions, 1);
    assert.equal(link.delivered.length, 3);
  });

  test('duplicates after completion deliver nothing and complete nothing again', () => {
    const link = new Link();
    writeAll(link, 15);
    link.send.close();
    const chunks = link.transmit();
    link.deliver(chunks);
    link.deliver(chunks);
    assert.equal(link.completions, 1);
    assert.equal(link.delivered.length, 3);
  });

  test('a closing send flow is not complete while fragments are unacked, and takes no more writes', () => {
    const link = new Link();
    writeAll(link, 16);
    link.send.close();
    const queued = link.send.queue.length;
    link.send.write(Buffer.from('late'));
    assert.equal(link.send.queue.length, queued);
    const chunks = link.transmit();
    link.deliver(chunks.slice(0, -1));
    link.ack();
    assert.equal(link.send.state, 'closing');
    link.deliver(chunks.slice(-1));
    link.ack();
    assert.equal(link.send.state, 'complete');
  });
});

describe('RecvFlow abandonment', () => {
  test('an abandoned fragment loses its message but not the next one', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    const got: string[] = [];
    recv.onMessage = (m) => got.push(m.toString());
    recv.onData(userData(3, DataFlags.fragmentEnd, 'C'));
    recv.onData(userData(1, DataFlags.fragmentBegin, 'A'));
    assert.equal(recv.ackNow, true);
    recv.onData(userData(4, DataFlags.fragmentWhole, 'next'));
    recv.onData(userData(2, DataFlags.abandon, ''));
    assert.deepEqual(got, ['next']);
    assert.equal(recv.cumulativeAck(), 4);
  });

  test('an abandoned chunk makes an ack due at once', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    recv.onData(userData(1, DataFlags.abandon, ''));
    assert.equal(recv.ackNow, true);
  });

  test('numbers at or below the FSN that never arrived are skipped', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    const got: string[] = [];
    recv.onMessage = (m) => got.push(m.toString());
    recv.onData(userData(1, DataFlags.fragmentWhole, 'one'));
    recv.onData(userData(2, DataFlags.fragmentBegin, 'two-'));
    // The sender abandoned 3..6 without sending them: FSN 6 on seq 7.
    recv.onData(userData(7, DataFlags.fragmentWhole, 'seven', 1));
    assert.deepEqual(got, ['one', 'seven']);
    assert.equal(recv.cumulativeAck(), 7);
    // A late copy of a skipped number changes nothing.
    recv.onData(userData(4, DataFlags.fragmentEnd, 'x', 4));
    assert.deepEqual(got, ['one', 'seven']);
  });

  test('the rtmfp-cpp abandoned FIN (ABN|FIN, FSN = seq) completes the flow', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    let completions = 0;
    recv.onComplete = () => completions++;
    recv.onData(userData(8, DataFlags.abandon | DataFlags.final, '', 0));
    assert.equal(completions, 1);
    assert.equal(recv.state, 'complete');
    assert.equal(recv.cumulativeAck(), 8);
  });
});

describe('RecvFlow acknowledgement', () => {
  test('in-order data does not force an immediate ack', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    recv.onData(userData(1, DataFlags.fragmentWhole, 'a'));
    recv.onData(userData(2, DataFlags.fragmentWhole, 'b', 1));
    assert.equal(recv.ackNow, false);
  });

  test('a gap, a filled gap, a duplicate and a FIN each make an ack due', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    recv.onData(userData(2, DataFlags.fragmentWhole, 'b'));
    assert.equal(recv.ackNow, true, 'gap');
    recv.takeAck(8);
    recv.onData(userData(1, DataFlags.fragmentWhole, 'a'));
    assert.equal(recv.ackNow, true, 'gap filled');
    recv.takeAck(8);
    recv.onData(userData(1, DataFlags.fragmentWhole, 'a'));
    assert.equal(recv.ackNow, true, 'duplicate');
    recv.takeAck(8);
    recv.onData(userData(3, DataFlags.final, 'c', 1));
    assert.equal(recv.ackNow, true, 'FIN');
  });

  test('takeAck clears what made the ack due and advertises the free buffer in 1024-byte blocks', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    recv.ackDueAt = 1234;
    recv.packetsSinceAck = 2;
    recv.onData(userData(3, DataFlags.fragmentWhole, 'x'.repeat(1500)));
    const ack = recv.takeAck(8);
    assert.deepEqual(ack, {
      flowId: FLOW_ID,
      bufferBlocks: Math.ceil((RECV_BUFFER_BYTES - 1500) / 1024),
      cumulativeAck: 0,
      ranges: [[3, 3]],
    });
    assert.equal(recv.ackNow, false);
    assert.equal(recv.ackDueAt, 0);
    assert.equal(recv.packetsSinceAck, 0);
  });
});

describe('RecvFlow rejection', () => {
  test('rejecting sets the state and code, makes an ack due and stops delivery', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    const got: Buffer[] = [];
    recv.onMessage = (m) => got.push(m);
    recv.onData(userData(2, DataFlags.fragmentWhole, 'held'));
    recv.takeAck(8);
    recv.reject(0x10);
    assert.equal(recv.state, 'rejected');
    assert.equal(recv.exceptionCode, 0x10);
    assert.equal(recv.ackNow, true);
    recv.takeAck(8);
    recv.onData(userData(1, DataFlags.fragmentWhole, 'first'));
    assert.equal(recv.ackNow, true);
    assert.deepEqual(got, []);
    // Still acked, so the sender can retire what it sent.
    assert.equal(recv.takeAck(8).cumulativeAck, 2);
  });

  test('a second reject keeps the first code', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    recv.reject(1);
    recv.reject(2);
    assert.equal(recv.exceptionCode, 1);
  });

  test('the sender fails on the exception: reports it, drops its queue and returns the bytes in flight', () => {
    const link = new Link();
    const codes: number[] = [];
    link.send.onException = (c) => codes.push(c);
    writeAll(link, 17);
    link.transmit();
    const inFlight = link.send.bytesInFlight();
    assert.equal(link.send.fail(0x10), inFlight);
    assert.equal(link.send.state, 'failed');
    assert.equal(link.send.exceptionCode, 0x10);
    assert.deepEqual(codes, [0x10]);
    assert.equal(link.send.queue.length, 0);
    assert.equal(link.send.hasDataToSend(), false);
    link.send.write(Buffer.from('ignored'));
    assert.equal(link.send.queue.length, 0);
    assert.equal(link.send.fail(0x11), 0);
    assert.deepEqual(codes, [0x10]);
  });
});

describe('RecvFlow receive buffer', () => {
  /** Queues a 10-byte message then `count` messages of one full fragment each. */
  function fillLink(count: number, random: () => number): { link: Link; messages: Buffer[] } {
    const link = new Link();
    const messages = [randomMessage(10, random)];
    for (let i = 0; i < count; i++) messages.push(randomMessage(link.send.maxFragment, random));
    for (const m of messages) link.send.write(m);
    return { link, messages };
  }

  test('data beyond the buffer is refused, never delivered early or corrupted, and arrives after retransmission', () => {
    const random = prng(18);
    const count = Math.ceil((RECV_BUFFER_BYTES * 1.5) / 1150);
    const { link, messages } = fillLink(count, random);
    const chunks = link.transmit();
    link.deliver(chunks.slice(1));
    assert.equal(link.delivered.length, 0);
    const ack = link.recv.takeAck(64);
    assert.equal(ack.cumulativeAck, 0);
    assert.equal(ack.ranges.length, 1);
    const [[from, to]] = ack.ranges;
    assert.equal(from, 2);
    assert.ok(to < chunks.length, 'some fragments were refused');
    assert.ok((to - 1) * link.send.maxFragment <= RECV_BUFFER_BYTES);
    assert.ok(ack.bufferBlocks <= 1 + Math.ceil(link.send.maxFragment / 1024));
    link.send.onAck(ack);

    link.deliver(chunks.slice(0, 1));
    assert.deepEqual(link.delivered, messages.slice(0, to));
    link.ack();
    assert.equal(link.send.queue[0].seq, to + 1);

    link.send.onTimeout();
    link.deliver(shuffle(link.transmit(), random));
    assert.equal(link.delivered.length, messages.length);
    assert.ok(link.delivered.every((m, i) => m.equals(messages[i])));
    link.ack();
    assert.equal(link.send.queue.length, 0);
  });

  test('the fragment filling the hole is accepted even when later fragments fill the buffer', () => {
    const random = prng(19);
    const link = new Link();
    const count = Math.ceil((RECV_BUFFER_BYTES * 1.2) / link.send.maxFragment);
    const messages = Array.from({ length: count }, () => randomMessage(link.send.maxFragment, random));
    for (const m of messages) link.send.write(m);
    const chunks = link.transmit();
    link.deliver(chunks.slice(1));
    for (let attempt = 0; attempt < 3; attempt++) link.deliver(chunks.slice(0, 1));
    assert.ok(link.delivered.length > 1, `delivered ${link.delivered.length} messages`);
    assert.ok(link.delivered.every((m, i) => m.equals(messages[i])));
  });

  test('empty fragments held for reordering use up the receive window', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    for (let seq = 2; seq <= 10_001; seq++) recv.onData(userData(seq, DataFlags.fragmentMiddle, '', seq));
    assert.ok(recv.takeAck(1).bufferBlocks < RECV_BUFFER_BYTES / 1024);
  });

  // Stepping one sequence number at a time to 2^50 would never end: the watchdog fails it.
  test('a sequence number far ahead with FSN = seq is skipped to in one step', { timeout: 10_000 }, () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    const got: string[] = [];
    recv.onMessage = (m) => got.push(m.toString());
    recv.onData(userData(2 ** 50, DataFlags.fragmentWhole, 'far', 0));
    assert.deepEqual(got, ['far']);
    assert.equal(recv.cumulativeAck(), 2 ** 50);
  });

  test('a peer opening more than 1024 gaps is reported as breaking the protocol', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    let seq = 2;
    while (recv.onData(userData(seq, DataFlags.fragmentWhole, 'g'))) {
      seq += 2;
      assert.ok(seq < 10_000);
    }
    // [0,0] plus one range per even number: the 1024th even number makes 1025 ranges.
    assert.equal(seq, 2 * 1024);
  });

  test('a message larger than the reassembly limit rejects the flow instead of growing without bound', () => {
    const recv = new RecvFlow(FLOW_ID, METADATA, undefined);
    const got: Buffer[] = [];
    recv.onMessage = (m) => got.push(m);
    const piece = 'x'.repeat(64 * 1024);
    recv.onData(userData(1, DataFlags.fragmentBegin, piece));
    let seq = 2;
    while (recv.state === 'open' && seq < 200) {
      recv.onData(userData(seq, DataFlags.fragmentMiddle, piece, 1));
      seq++;
    }
    assert.equal(recv.state, 'rejected');
    assert.ok(seq * piece.length > 4 * 1024 * 1024);
    assert.deepEqual(got, []);
  });
});

/** The byte counts of an ack result (its newest acknowledged TSN aside). */
function bytesOf(r: AckResult): { ackedBytes: number; lostBytes: number } {
  return { ackedBytes: r.ackedBytes, lostBytes: r.lostBytes };
}

describe('SendFlow abandoned fragments and the FSN', () => {
  test('an abandoned fragment going out again below the FSN carries offset 0, never a negative one', () => {
    const send = new SendFlow(
      1,
      METADATA,
      undefined,
      () => {},
      () => 0,
    );
    for (const [i, m] of ['a', 'b', 'c'].entries()) {
      send.write(Buffer.from(m), { lifetimeMs: 100 });
      send.markSent(send.queue[i], i + 1);
    }
    send.write(Buffer.from('d'));
    send.expireAll();
    send.onTimeout(); // the abandoned ones are lost: they go out again, empty, with ABN
    const first = send.queue[0];
    assert.ok(first.abandoned && first.needsSend);
    assert.equal(send.fsnOffset(first.seq), 0);
    assert.equal(send.fsnOffset(send.queue[3].seq), 1);
  });
});
