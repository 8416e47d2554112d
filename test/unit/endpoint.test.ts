import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Address, AddressOrigin, addressKey, sameAddress } from '../../runtime/rtmfp/address.ts';
import { makeEPD } from '../../runtime/rtmfp/certificate.ts';
import { ChunkType, type ForwardedIHello } from '../../runtime/rtmfp/chunks.ts';
import { Endpoint, nearWinsGlare } from '../../runtime/rtmfp/endpoint.ts';
import { type KeyingAdapter, keyInline } from '../../runtime/rtmfp/handshake.ts';
import type { Opening } from '../../runtime/rtmfp/opening.ts';
import { PacketReader } from '../../runtime/rtmfp/packet.ts';
import { PacketCipher } from '../../runtime/rtmfp/packet-crypto.ts';
import type { CloseReason, Session, SessionConfig } from '../../runtime/rtmfp/session.ts';
import { prng } from '../support/prng.ts';

/** DH group 2 keeps each handshake under a millisecond. */
const GROUPS = [2];
const T0 = 1_000_000;

interface Datagram {
  from: Address;
  to: Address;
  bytes: Buffer;
}

/** One endpoint on a plain array "wire", with what it told its host. */
interface Peer {
  address: Address;
  endpoint: Endpoint;
  opened: { session: Session; role: 'initiator' | 'responder'; peerId: string; replaces?: Opening }[];
  closed: { session: Session; reason: CloseReason }[];
  messages: string[];
  drops: string[];
  forwarded: ForwardedIHello[];
  woken: boolean;
}

class Net {
  readonly wire: Datagram[] = [];
  readonly peers: Peer[] = [];
  now = T0;
  private readonly random = prng(9);

  peer(
    port: number,
    o: {
      accepts?: boolean;
      keying?: KeyingAdapter;
      session?: SessionConfig;
      failOpen?: boolean;
      /** Answers IHellos naming another peer with its own RHello (a rendezvous that lies). */
      impersonates?: boolean;
    } = {},
  ): Peer {
    const address = { address: '127.0.0.1', port };
    const p = {
      address,
      opened: [],
      closed: [],
      messages: [],
      drops: [],
      forwarded: [],
      woken: false,
    } as unknown as Peer;
    p.endpoint = new Endpoint({
      session: o.session,
      platform: {
        send: (bytes, to) => this.wire.push({ from: address, to, bytes: Buffer.from(bytes) }),
        rescheduled: () => {},
        wake: () => {
          p.woken = true;
        },
        keying: o.keying ?? keyInline,
        randomSessionId: () => 1 + Math.floor(this.random() * 0xfffffffe),
      },
      events: {
        hello: o.accepts ? (tag, _uri, from, now) => p.endpoint.rHello(tag, from, now) : undefined,
        rendezvous: o.impersonates ? (_epd, tag, from, now) => p.endpoint.rHello(tag, from, now) : undefined,
        forwardedHello: (_session, hello) => p.forwarded.push(hello),
        opened: (session, how) => {
          if (o.failOpen) throw new Error('the host failed');
          if (how.role === 'responder')
            p.opened.push({ session, role: how.role, peerId: how.peerId, replaces: how.replaces });
          else p.opened.push({ session, role: how.role, peerId: how.farFingerprint.toString('hex') });
        },
        flow: (_session, flow) => {
          flow.onMessage = (m) => p.messages.push(m.toString());
        },
        closed: (session, reason) => p.closed.push({ session, reason }),
        dropped: (reason) => p.drops.push(reason),
        fault: (err) => p.drops.push(`fault: ${(err as Error).message}`),
      },
    });
    this.peers.push(p);
    return p;
  }

  /** Delivers datagrams (and what they cause) until the wire is quiet; `lose` drops some. */
  run(lose: (d: Datagram) => boolean = () => false): Datagram[] {
    const delivered: Datagram[] = [];
    for (let rounds = 0; rounds < 100; rounds++) {
      for (const p of this.peers) {
        if (!p.woken) continue;
        p.woken = false;
        p.endpoint.flush(this.now);
      }
      const d = this.wire.shift();
      if (!d) return delivered;
      if (lose(d)) continue;
      const to = this.peers.find((p) => sameAddress(p.address, d.to));
      if (!to) continue;
      delivered.push(d);
      to.endpoint.receive(d.bytes, d.from, this.now);
    }
    throw new Error('the endpoints never went quiet');
  }

  /** Moves the clock on in ticks, servicing every endpoint as its host's timer would. */
  advance(ms: number): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + 20);
      for (const p of this.peers) if (p.endpoint.nextDeadline() <= this.now) p.endpoint.service(this.now);
    }
  }
}

function open(net: Net, from: Peer, to: Peer, localId?: number): Opening {
  return from.endpoint.open(
    { uri: `rtmfp://${addressKey(to.address)}/app`, targets: [to.address], groups: GROUPS, localId },
    net.now,
  );
}

/** Sends `text` on a new flow of `session`. */
function say(net: Net, session: Session, text: string): void {
  session.openFlow(Buffer.from('test')).write(Buffer.from(text));
  session.flush(net.now);
}

/** The first chunk type of a startup datagram (default key); undefined for a session's. */
function startupChunk(d: Datagram): number | undefined {
  try {
    const packet = new PacketReader(PacketCipher.startup().open(d.bytes));
    return packet.nextChunk() ? packet.chunkType : undefined;
  } catch {
    return undefined;
  }
}

describe('one RTMFP endpoint, initiator and responder (RFC 7016 §3.5)', () => {
  test('two endpoints open a session over a plain array and exchange a message', () => {
    const net = new Net();
    const server = net.peer(1935, { accepts: true });
    const client = net.peer(50_000);
    const opening = open(net, client, server);
    net.run();
    assert.equal(client.opened.length, 1);
    assert.equal(server.opened.length, 1);
    const [c] = client.opened;
    const [s] = server.opened;
    assert.equal(c.role, 'initiator');
    assert.equal(s.role, 'responder');
    assert.equal(c.peerId, server.endpoint.identity.fingerprint.toString('hex'), 'the server certificate');
    assert.equal(s.peerId, opening.peerId, "the client's peer ID");
    assert.equal(c.session.remoteId, s.session.localId);
    assert.equal(s.session.remoteId, c.session.localId);
    assert.equal(c.session.localId, opening.localId);
    say(net, c.session, 'hello server');
    say(net, s.session, 'hello client');
    net.run();
    assert.deepEqual(server.messages, ['hello server']);
    assert.deepEqual(client.messages, ['hello client']);
    assert.deepEqual(server.drops, []);
    assert.equal(server.endpoint.keyings, 1);
  });

  test('an opening retransmits its IHello on its deadline until cancelled', () => {
    const net = new Net();
    const nobody = { address: '127.0.0.1', port: 9 };
    const client = net.peer(50_000);
    const opening = client.endpoint.open({ uri: 'rtmfp://127.0.0.1:9/app', targets: [nobody] }, net.now);
    assert.equal(net.wire.length, 1, 'the first IHello');
    net.advance(480);
    assert.equal(net.wire.length, 1, 'not before 500 ms');
    net.advance(40);
    assert.equal(net.wire.length, 2, 'again after 500 ms');
    assert.deepEqual(net.wire.map(startupChunk), [ChunkType.iHello, ChunkType.iHello]);
    client.endpoint.cancel(opening);
    assert.equal(client.endpoint.nextDeadline(), Number.POSITIVE_INFINITY);
    net.advance(5_000);
    assert.equal(net.wire.length, 2, 'nothing after cancel');
  });

  test('a retransmitted IIKeying gets the same RIKeying without a second keying, until the session is used', () => {
    const net = new Net();
    const server = net.peer(1935, { accepts: true });
    const client = net.peer(50_000);
    open(net, client, server);
    let riKeying: Datagram | undefined;
    // The RIKeying is lost the first time.
    const delivered = net.run((d) => {
      if (riKeying || startupChunk(d) !== ChunkType.riKeying) return false;
      riKeying = d;
      return true;
    });
    assert.ok(riKeying, 'an RIKeying was sent');
    assert.equal(server.opened.length, 1, 'keyed once');
    const iiKeying = delivered.find((d) => startupChunk(d) === ChunkType.iiKeying)!;

    server.endpoint.receive(iiKeying.bytes, iiKeying.from, net.now);
    assert.equal(net.wire.length, 1);
    assert.deepEqual(net.wire[0].bytes, riKeying.bytes, 'the same RIKeying again');
    assert.equal(server.endpoint.keyings, 1, 'no second DH');
    net.run();
    assert.equal(client.opened.length, 1);
    say(net, client.opened[0].session, 'in use');
    net.run();

    server.endpoint.receive(iiKeying.bytes, iiKeying.from, net.now);
    assert.equal(net.wire.length, 0, 'a stale duplicate gets nothing');
    assert.ok(server.drops.includes('iikeying-late'));
    assert.equal(server.opened.length, 1);
  });

  test('an IIKeying with a new SKIC while the first is keyed supersedes it', () => {
    const net = new Net();
    const jobs: (() => void)[] = [];
    const deferred: KeyingAdapter = (job, _now, done) => {
      jobs.push(() => keyInline(job, net.now, done));
      return true;
    };
    const server = net.peer(1935, { accepts: true, keying: deferred });
    const first = net.peer(50_000);
    open(net, first, server, 1);
    net.run();
    assert.equal(jobs.length, 1, 'keying');
    // The initiator starts over from the same address and session ID before its answer came.
    net.peers.splice(net.peers.indexOf(first), 1);
    const second = net.peer(50_000);
    open(net, second, server, 1);
    net.run();
    assert.equal(jobs.length, 2);
    for (const job of jobs) job();
    net.run();
    assert.deepEqual(server.drops, ['iikeying-superseded']);
    assert.equal(server.opened.length, 1);
    assert.equal(second.opened.length, 1);
    assert.equal(server.endpoint.beingKeyed, 0, 'nothing left being keyed');
  });

  test('a restarted initiator reusing its address and session ID gets a new session; the stale one goes', () => {
    const net = new Net();
    const server = net.peer(1935, { accepts: true });
    const first = net.peer(50_000);
    open(net, first, server, 1);
    net.run();
    const stale = server.opened[0].session;
    // It dies without a word; a new instance on the same port hands out session ID 1 again.
    net.peers.splice(net.peers.indexOf(first), 1);
    const second = net.peer(50_000);
    const opening = open(net, second, server, 1);
    net.run();
    assert.equal(second.opened.length, 1, 'connected, not stalled behind the stale session');
    assert.equal(server.opened.length, 2);
    assert.equal(server.opened[1].peerId, opening.peerId);
    assert.deepEqual(server.closed, [{ session: stale, reason: 'aborted' }]);
    assert.deepEqual([...server.endpoint.sessions.values()], [server.opened[1].session]);
    say(net, second.opened[0].session, 'after');
    net.run();
    assert.deepEqual(server.messages, ['after']);
  });

  test('a silent peer times out on the deadline, and its session leaves the table', () => {
    const net = new Net();
    const session: SessionConfig = { keepaliveMs: 100, timeoutMs: 300 };
    const server = net.peer(1935, { accepts: true, session });
    const client = net.peer(50_000, { session });
    open(net, client, server);
    net.run();
    net.peers.splice(net.peers.indexOf(client), 1);
    net.advance(280);
    assert.equal(server.closed.length, 0, 'pinged, not yet given up');
    assert.ok(net.wire.length > 0, 'keepalive pings went out');
    net.advance(40);
    assert.deepEqual(
      server.closed.map((c) => c.reason),
      ['timeout'],
    );
    net.advance(20);
    assert.equal(server.endpoint.sessions.size, 0);
    assert.equal(server.endpoint.nextDeadline(), Number.POSITIVE_INFINITY, 'nothing left to wake for');
  });

  test('an abrupt close (unsolicited Close Ack) ends the peer session at once', () => {
    const net = new Net();
    const server = net.peer(1935, { accepts: true });
    const client = net.peer(50_000);
    open(net, client, server);
    net.run();
    client.opened[0].session.abort({ tellPeer: true });
    assert.equal(client.endpoint.sessions.size, 0, 'released at once');
    net.run();
    assert.deepEqual(
      server.closed.map((c) => c.reason),
      ['closed-by-peer'],
    );
    assert.equal(server.endpoint.sessions.size, 0, 'nothing lingers');
  });

  test('one endpoint is initiator to one peer and responder to another at once', () => {
    const net = new Net();
    const server = net.peer(1935, { accepts: true });
    const middle = net.peer(40_000, { accepts: true });
    const client = net.peer(50_000);
    open(net, middle, server);
    open(net, client, middle);
    net.run();
    assert.deepEqual(middle.opened.map((o) => o.role).sort(), ['initiator', 'responder']);
    assert.equal(middle.endpoint.sessions.size, 2);
    const toServer = middle.opened.find((o) => o.role === 'initiator')!.session;
    const fromClient = middle.opened.find((o) => o.role === 'responder')!.session;
    say(net, toServer, 'to server');
    say(net, client.opened[0].session, 'to middle');
    say(net, fromClient, 'to client');
    net.run();
    assert.deepEqual(server.messages, ['to server']);
    assert.deepEqual(middle.messages, ['to middle']);
    assert.deepEqual(client.messages, ['to client']);
    assert.deepEqual(middle.drops, []);
  });

  test('a host that fails to take a keyed session loses that handshake, and no session stays', () => {
    const net = new Net();
    const server = net.peer(1935, { accepts: true, failOpen: true });
    const client = net.peer(50_000);
    open(net, client, server);
    net.run();
    assert.deepEqual(server.drops, ['keying-failed', 'fault: the host failed']);
    assert.equal(server.endpoint.sessions.size, 0);
    assert.equal(client.opened.length, 0, 'no RIKeying went out');
  });

  test('an endpoint that accepts nothing drops IHellos; datagrams for no session are dropped', () => {
    const net = new Net();
    const closed = net.peer(1935);
    const client = net.peer(50_000);
    open(net, client, closed);
    net.run();
    assert.deepEqual(closed.drops, ['not-accepting']);
    assert.equal(client.opened.length, 0);
    const stray = Buffer.alloc(36, 7);
    closed.endpoint.receive(stray, client.address, net.now);
    assert.equal(closed.drops.at(-1), 'unknown-session');
  });

  test('an opening to a peer ID keys only with an endpoint whose certificate has that fingerprint', () => {
    const net = new Net();
    const peer = net.peer(40_000, { accepts: true });
    const liar = net.peer(1935, { impersonates: true });
    const client = net.peer(50_000);
    const peerId = peer.endpoint.identity.fingerprint;
    client.endpoint.open({ peerId, targets: [liar.address], groups: GROUPS }, net.now);
    net.run();
    assert.equal(client.opened.length, 0);
    assert.deepEqual(client.drops, ['opening-wrong-peer']);
    client.endpoint.open({ peerId, targets: [peer.address], groups: GROUPS }, net.now);
    net.run();
    assert.equal(client.opened.length, 1);
    assert.equal(client.opened[0].peerId, peerId.toString('hex'));
  });

  test('a Forwarded IHello inside a session reaches the host (RFC 7016 §2.3.3)', () => {
    const net = new Net();
    const server = net.peer(1935, { accepts: true });
    const client = net.peer(50_000);
    open(net, client, server);
    net.run();
    const forwarded: ForwardedIHello = {
      epd: makeEPD({ fingerprint: Buffer.alloc(32, 7) }),
      replyAddress: { address: '127.0.0.1', port: 40_000, origin: AddressOrigin.observed },
      tag: Buffer.alloc(16, 1),
    };
    server.opened[0].session.forwardIHello(forwarded);
    net.run();
    assert.equal(client.forwarded.length, 1);
    assert.deepEqual(client.forwarded[0].epd, forwarded.epd);
    assert.deepEqual(client.forwarded[0].tag, forwarded.tag);
    assert.equal(client.forwarded[0].replyAddress.port, 40_000);
  });

  test('two peers opening to each other at once end with one session, the lower certificate its initiator (glare)', () => {
    for (let run = 0; run < 6; run++) {
      const net = new Net();
      const p = net.peer(40_000 + run, { accepts: true });
      const q = net.peer(41_000 + run, { accepts: true });
      // As the sdk client does: one certificate as responder and in its own IIKeyings.
      const toPeer = (from: Peer, to: Peer) =>
        from.endpoint.open(
          {
            peerId: to.endpoint.identity.fingerprint,
            certificate: from.endpoint.identity.certificate,
            targets: [to.address],
            groups: GROUPS,
          },
          net.now,
        );
      const pq = toPeer(p, q);
      const qp = toPeer(q, p);
      net.run();
      net.advance(2_000);
      net.run();
      assert.equal(p.opened.length, 1, 'one session at p');
      assert.equal(q.opened.length, 1, 'one session at q');
      const pWins = Buffer.compare(p.endpoint.identity.certificate, q.endpoint.identity.certificate) < 0;
      const [winner, loser, lostOpening] = pWins ? [p, q, qp] : [q, p, pq];
      assert.equal(winner.opened[0].role, 'initiator');
      assert.equal(loser.opened[0].role, 'responder');
      assert.equal(loser.opened[0].replaces, lostOpening, "the loser's opening is the session it got");
      assert.equal(winner.opened[0].session.remoteId, loser.opened[0].session.localId);
      assert.equal(loser.opened[0].session.remoteId, winner.opened[0].session.localId);
      assert.ok(winner.drops.includes('iikeying-glare'), "the winner ignored the loser's IIKeying");
      say(net, loser.opened[0].session, 'over the one session');
      net.run();
      assert.deepEqual(winner.messages, ['over the one session']);
    }
  });

  test('nearWinsGlare: both ends of a glare agree on one winner, by the certificates byte by byte', () => {
    const a = Buffer.from('0102', 'hex');
    const b = Buffer.from('0103', 'hex');
    assert.equal(nearWinsGlare(a, b), true);
    assert.equal(nearWinsGlare(b, a), false);
    assert.equal(nearWinsGlare(a, Buffer.from('010200', 'hex')), true, 'a prefix sorts first');
    assert.equal(nearWinsGlare(Buffer.from('010200', 'hex'), a), false);
  });
});
