import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChunkType, readUserData, type UserData } from '../../runtime/rtmfp/chunks.ts';
import { MSS } from '../../runtime/rtmfp/congestion.ts';
import { PacketMode, PacketReader, PacketWriter } from '../../runtime/rtmfp/packet.ts';
import { SendFlow } from '../../runtime/rtmfp/send-flow.ts';
import { SendScheduler } from '../../runtime/rtmfp/send-scheduler.ts';

const META = Buffer.from('54430400', 'hex');

function flowOf(s: SendScheduler, id: number): SendFlow {
  const flow = new SendFlow(
    id,
    META,
    undefined,
    () => {},
    () => 0,
  );
  s.add(flow);
  return flow;
}

/** Assembles one packet and says which (flow, seq) it carried. */
function sendOne(s: SendScheduler, now: number): Array<[number, number]> {
  const pw = new PacketWriter().begin(PacketMode.responder, 0, undefined);
  const before = new Map(
    [...s.flows.values()].map((f) => [f.id, f.queue.filter((x) => x.inFlight).map((x) => x.seq)]),
  );
  s.write(pw, now);
  const sent: Array<[number, number]> = [];
  for (const f of s.flows.values()) {
    for (const x of f.queue) if (x.inFlight && !before.get(f.id)?.includes(x.seq)) sent.push([f.id, x.seq]);
  }
  return sent;
}

describe('send scheduler', () => {
  test("every new flow in a packet carries its metadata, not only the packet's first chunk", () => {
    const s = new SendScheduler();
    for (let id = 1; id <= 3; id++) flowOf(s, id).write(Buffer.from([id]));
    const pw = new PacketWriter().begin(PacketMode.responder, 0, undefined);
    s.write(pw, 0);
    const packet = new PacketReader(Buffer.from(pw.view()));
    const chunks: UserData[] = [];
    while (packet.nextChunk()) {
      if (packet.chunkType === ChunkType.userData) chunks.push(readUserData(packet.chunk));
    }
    assert.deepEqual(
      chunks.map((c) => [c.flowId, c.options?.find((o) => o.type === 0)?.value.toString('hex')]),
      [
        [1, META.toString('hex')],
        [2, META.toString('hex')],
        [3, META.toString('hex')],
      ],
    );
  });

  test('a fragment is lost after acks of three later packets on another flow of the session', () => {
    const s = new SendScheduler();
    const a = flowOf(s, 1);
    const b = flowOf(s, 2);
    a.write(Buffer.alloc(100, 1));
    assert.deepEqual(sendOne(s, 0), [[1, 1]]);
    for (let i = 1; i <= 3; i++) {
      b.write(Buffer.alloc(100, 2));
      assert.deepEqual(sendOne(s, i), [[2, i]]);
      s.onAck({ flowId: 2, bufferBlocks: 64, cumulativeAck: i, ranges: [] }, i);
    }
    assert.equal(a.queue[0].needsSend, true, 'flow 1 fragment declared lost');
    assert.equal(s.bytesInFlight, 0);
    assert.deepEqual(sendOne(s, 10), [[1, 1]], 'and retransmitted');
  });

  test('the congestion window bounds what is in flight; acks open it again', () => {
    const s = new SendScheduler();
    const a = flowOf(s, 1);
    for (let i = 0; i < 10; i++) a.write(Buffer.alloc(1000, i));
    let sent = 0;
    for (let i = 0; i < 10; i++) sent += sendOne(s, 0).length;
    assert.ok(s.bytesInFlight <= s.congestion.cwnd + 1000, 'at most one fragment past the window');
    assert.ok(sent < 10, 'not everything went out at once');
    s.onAck({ flowId: 1, bufferBlocks: 64, cumulativeAck: sent, ranges: [] }, 1);
    assert.equal(s.bytesInFlight, 0);
    assert.ok(sendOne(s, 2).length > 0);
  });

  test('the retransmission timer marks everything in flight lost and shrinks the window', () => {
    const s = new SendScheduler();
    const a = flowOf(s, 1);
    a.write(Buffer.alloc(500));
    sendOne(s, 0);
    assert.ok(s.rtoAt > 0);
    s.service(s.rtoAt);
    assert.equal(s.bytesInFlight, 0);
    assert.equal(a.queue[0].needsSend, true);
    assert.equal(s.congestion.cwnd, 2 * MSS);
  });

  test('a flow exception from the peer fails the flow and frees its bytes in flight', () => {
    const s = new SendScheduler();
    const a = flowOf(s, 1);
    let code = -1;
    a.onException = (c) => {
      code = c;
    };
    a.write(Buffer.alloc(300));
    sendOne(s, 0);
    s.onException(1, 7);
    assert.equal(code, 7);
    assert.equal(s.bytesInFlight, 0);
    assert.equal(s.flows.size, 0);
  });

  test('a closed peer window sends Buffer Probes, not data', () => {
    const s = new SendScheduler();
    const a = flowOf(s, 1);
    a.write(Buffer.alloc(100));
    sendOne(s, 0);
    s.onAck({ flowId: 1, bufferBlocks: 0, cumulativeAck: 1, ranges: [] }, 0);
    a.write(Buffer.alloc(100));
    const pw = new PacketWriter().begin(PacketMode.responder, 0, undefined);
    s.write(pw, 1);
    assert.equal(pw.view()[3], 0x18, 'Buffer Probe chunk');
    assert.equal(a.queue[0].inFlight, false);
    assert.equal(s.deadline(), 1 + 1_000);
  });
});
