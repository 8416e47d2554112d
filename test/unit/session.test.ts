import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Address, AddressOrigin } from '../../runtime/rtmfp/address.ts';
import { ChunkType } from '../../runtime/rtmfp/chunks.ts';
import { PacketMode, PacketReader } from '../../runtime/rtmfp/packet.ts';
import { PacketCipher } from '../../runtime/rtmfp/packet-crypto.ts';
import type { RecvFlow } from '../../runtime/rtmfp/recv-flow.ts';
import { type CloseReason, MAX_RECV_FLOWS, Session, type SessionHooks } from '../../runtime/rtmfp/session.ts';
import { PAIR_CLIENT, pairedSession } from '../support/session-pair.ts';
import { loadVectors } from '../support/vectors.ts';

/** RFC 7016 §3.5.5 as rtmfp-cpp applies it: a closed session answers Close Requests for 19 s. */
const LINGER_MS = 19_000;
const CLOSE_RESEND_MS = 5_000;

const INITIATOR: Address = { address: '127.0.0.1', port: 50_001 };
const RESPONDER: Address = { address: '127.0.0.1', port: 1935 };
const KEY_A = Buffer.alloc(16, 0xa1);
const KEY_B = Buffer.alloc(16, 0xb2);

/** One end of an in-memory session pair: what it sent and what it told its owner. */
interface End {
  session: Session;
  sent: Buffer[];
  closed: CloseReason[];
  released: number;
  flows: number;
  dropped: string[];
}

function end(role: 'initiator' | 'responder', now: number): End {
  const e: End = {
    session: undefined as unknown as Session,
    sent: [],
    closed: [],
    released: 0,
    flows: 0,
    dropped: [],
  };
  const hooks: SessionHooks = {
    send: (datagram) => e.sent.push(Buffer.from(datagram)),
    wake: () => {},
    flow: (_session, flow) => {
      e.flows++;
      flow.onMessage = () => {};
    },
    closed: (_session, reason) => e.closed.push(reason),
    released: () => e.released++,
    dropped: (_session, reason) => e.dropped.push(reason),
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
  });
  return e;
}

/** Hands everything `from` sent so far to `to`. */
function deliver(from: End, to: End, address: Address, now: number): number {
  const datagrams = from.sent.splice(0);
  for (const d of datagrams) to.session.receive(d, address, now);
  return datagrams.length;
}

describe('Session close', () => {
  test('a peer Close Request is acked; the session lingers answering repeats, then is released', () => {
    const t0 = 1_000;
    const initiator = end('initiator', t0);
    const responder = end('responder', t0);

    initiator.session.close(t0);
    initiator.session.flush(t0);
    assert.equal(deliver(initiator, responder, INITIATOR, t0), 1);
    assert.deepEqual(responder.closed, ['closed-by-peer']);
    assert.equal(responder.session.state, 'closed');
    assert.equal(responder.sent.length, 1, 'Close Ack');

    // The Close Ack is lost: the initiator asks again, and is answered again.
    responder.sent.length = 0;
    initiator.session.service(t0 + CLOSE_RESEND_MS);
    assert.equal(deliver(initiator, responder, INITIATOR, t0 + CLOSE_RESEND_MS), 1);
    assert.equal(responder.sent.length, 1, 'a second Close Ack');
    deliver(responder, initiator, RESPONDER, t0 + CLOSE_RESEND_MS);
    assert.deepEqual(initiator.closed, ['closed']);
    assert.equal(initiator.session.state, 'closed');

    assert.equal(responder.released, 0);
    responder.session.service(t0 + LINGER_MS - 1);
    assert.equal(responder.released, 0);
    responder.session.service(t0 + LINGER_MS);
    assert.equal(responder.released, 1);
    assert.deepEqual(responder.closed, ['closed-by-peer'], 'closed is reported once');
  });

  test('a flow the peer opens keeps its metadata, not the datagram it came in', () => {
    const t0 = 1_000;
    const opened: RecvFlow[] = [];
    const responder = pairedSession('responder', [], (f) => opened.push(f));
    const out: Buffer[] = [];
    const client = pairedSession('initiator', out, () => {});
    client.openFlow(Buffer.from('TC\x04\x00')).write(Buffer.from('hello'));
    client.flush(t0);
    for (const d of out) responder.receive(d, PAIR_CLIENT, t0);
    assert.equal(opened.length, 1);
    assert.deepEqual(opened[0].metadata, Buffer.from('TC\x04\x00'));
    assert.equal(opened[0].metadata.buffer.byteLength, 4);
  });

  test('a lingering closed session ignores data: no flow, no ack', () => {
    const t0 = 1_000;
    const initiator = end('initiator', t0);
    const responder = end('responder', t0);
    // A second initiator with the same keys and IDs, still open, stands for data in flight.
    const late = end('initiator', t0);

    initiator.session.close(t0);
    initiator.session.flush(t0);
    deliver(initiator, responder, INITIATOR, t0);
    responder.sent.length = 0;

    late.session.openFlow(Buffer.from('TC\x04\x00')).write(Buffer.from('hello'));
    late.session.flush(t0 + 10);
    assert.ok(deliver(late, responder, INITIATOR, t0 + 10) > 0);
    assert.equal(responder.flows, 0);
    assert.equal(responder.sent.length, 0);
    responder.session.service(t0 + 1_000);
    assert.equal(responder.sent.length, 0, 'no delayed ack either');
  });

  test('a released session answers nothing', () => {
    const t0 = 1_000;
    const initiator = end('initiator', t0);
    const responder = end('responder', t0);
    initiator.session.close(t0);
    initiator.session.flush(t0);
    const [closeRequest] = initiator.sent;
    deliver(initiator, responder, INITIATOR, t0);
    responder.session.service(t0 + LINGER_MS);
    assert.equal(responder.released, 1);
    responder.sent.length = 0;
    responder.session.receive(closeRequest, INITIATOR, t0 + LINGER_MS + 1);
    assert.equal(responder.sent.length, 0);
  });

  test('an unsolicited Close Ack closes an open session at once (RFC 7016 §3.5.5.2)', () => {
    const t0 = 1_000;
    const initiator = end('initiator', t0);
    const responder = end('responder', t0);
    initiator.session.abort({ tellPeer: true });
    assert.deepEqual(initiator.closed, ['aborted']);
    const [closeAck] = initiator.sent;
    assert.equal(deliver(initiator, responder, INITIATOR, t0 + 5), 1, 'one Close Ack, nothing else');
    assert.deepEqual(responder.closed, ['closed-by-peer']);
    assert.equal(responder.session.state, 'closed');
    assert.equal(responder.released, 1, 'released at once: the peer expects nothing more');
    assert.equal(responder.sent.length, 1, 'one Close Ack back, as rtmfp-cpp answers');
    responder.session.receive(closeAck, INITIATOR, t0 + 10);
    assert.equal(responder.sent.length, 1, 'a released session answers nothing');
  });

  test('a Close Ack ends the lingering of a session the peer closed', () => {
    const t0 = 1_000;
    const initiator = end('initiator', t0);
    const responder = end('responder', t0);
    initiator.session.close(t0);
    initiator.session.flush(t0);
    deliver(initiator, responder, INITIATOR, t0);
    assert.equal(responder.released, 0, 'lingering');
    // Our Close Ack is lost; the peer gives up waiting and aborts, telling us so.
    const again = end('initiator', t0);
    again.session.abort({ tellPeer: true });
    deliver(again, responder, INITIATOR, t0 + 5);
    assert.equal(responder.released, 1);
    assert.deepEqual(responder.closed, ['closed-by-peer']);
  });
});

describe('Session bounds', () => {
  test('flows past the per-session cap are refused and counted, the open ones unharmed', () => {
    const t0 = 1_000;
    const initiator = end('initiator', t0);
    const responder = end('responder', t0);
    const extra = 3;
    for (let i = 0; i < MAX_RECV_FLOWS + extra; i++)
      initiator.session.openFlow(Buffer.from('TC\x04\x00')).write(Buffer.from([i & 0xff]));
    for (
      let t = t0;
      t < t0 + 60_000 && responder.flows + responder.dropped.length < MAX_RECV_FLOWS + extra;
      t += 50
    ) {
      initiator.session.service(t);
      deliver(initiator, responder, INITIATOR, t);
      responder.session.service(t);
      deliver(responder, initiator, RESPONDER, t);
    }
    assert.equal(responder.flows, MAX_RECV_FLOWS);
    assert.ok(responder.dropped.length >= extra, 'every chunk of a refused flow is counted');
    assert.ok(responder.dropped.every((r) => r === 'flow-limit'));
    assert.equal(responder.session.state, 'open');
  });
});

describe('Session rendezvous', () => {
  test("a Forwarded IHello goes out at once in the target's session, the chunk byte for byte as Cumulus writes it", () => {
    const v = loadVectors<{ tag: string; targetPeerId: string; forwardedIHelloChunk: { hex: string } }>(
      'rendezvous',
    );
    const target = end('initiator', 1_000);
    const node = end('responder', 1_000);
    node.session.forwardIHello({
      epd: Buffer.from(`210f${v.targetPeerId}`, 'hex'),
      replyAddress: { address: '203.0.113.7', port: 40_001, origin: AddressOrigin.observed },
      tag: Buffer.from(v.tag, 'hex'),
    });
    assert.equal(node.sent.length, 1);
    const opened = new PacketCipher({
      encryptKey: KEY_A,
      decryptKey: KEY_B,
      sendSseq: false,
      recvSseq: false,
    });
    const packet = new PacketReader(opened.open(node.sent[0]));
    assert.equal(packet.header.mode, PacketMode.responder);
    assert.notEqual(packet.header.timestamp, undefined, 'librtmfp drops packets without a timestamp');
    assert.ok(packet.nextChunk());
    assert.equal(packet.chunkType, ChunkType.forwardedIHello);
    const { buf, pos, end: stop } = packet.chunk;
    assert.equal(buf.subarray(pos - 3, stop).toString('hex'), v.forwardedIHelloChunk.hex);
    deliver(node, target, RESPONDER, 1_000);
    assert.equal(target.session.state, 'open', 'the peer reads past a chunk it does not act on');

    node.session.abort();
    node.sent.length = 0;
    node.session.forwardIHello({
      epd: Buffer.alloc(34),
      replyAddress: { ...INITIATOR, origin: 2 },
      tag: Buffer.alloc(16),
    });
    assert.equal(node.sent.length, 0, 'nothing from a closed session');
  });
});
