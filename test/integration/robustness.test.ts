import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { Writer } from '../../runtime/rtmfp/binary.ts';
import { makeEPD } from '../../runtime/rtmfp/certificate.ts';
import { writeIHello } from '../../runtime/rtmfp/chunks.ts';
import { Initiator } from '../../runtime/rtmfp/handshake-initiator.ts';
import { PacketMode, PacketWriter } from '../../runtime/rtmfp/packet.ts';
import { PacketCipher } from '../../runtime/rtmfp/packet-crypto.ts';
import { Session } from '../../runtime/rtmfp/session.ts';
import { connect, NetConnection } from '../../sdk/client.ts';
import { startNode, type TestNode, until } from '../support/node.ts';

/** A UDP relay whose upstream side can be swapped, as a NAT rebinding does. */
class Rebinder {
  readonly front = dgram.createSocket('udp4');
  upstream = dgram.createSocket('udp4');
  captured: Buffer[] = [];
  private client = 0;
  private readonly target: number;

  constructor(target: number) {
    this.target = target;
  }

  async start(): Promise<number> {
    this.front.on('message', (msg, rinfo) => {
      this.client = rinfo.port;
      this.captured.push(Buffer.from(msg));
      this.upstream.send(msg, this.target, '127.0.0.1');
    });
    await new Promise<void>((r) => this.front.bind(0, '127.0.0.1', r));
    await this.bindUpstream();
    return this.front.address().port;
  }

  /** Drops the old upstream socket: the node now sees the client at a new address. */
  async rebind(): Promise<number> {
    const old = this.upstream;
    this.upstream = dgram.createSocket('udp4');
    await this.bindUpstream();
    old.close();
    return this.upstream.address().port;
  }

  close(): void {
    this.front.close();
    this.upstream.close();
  }

  private async bindUpstream(): Promise<void> {
    const socket = this.upstream;
    socket.on('message', (msg) => this.front.send(msg, this.client, '127.0.0.1'));
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  }
}

describe('a node under hostile or changing conditions', () => {
  let n: TestNode;
  before(async () => {
    n = await startNode();
  });
  after(() => n.stop());

  test('a client whose address changes keeps its session (RFC 7016 §3.5.4.2)', async () => {
    const relay = new Rebinder(n.port);
    const port = await relay.start();
    const nc = await connect(`rtmfp://127.0.0.1:${port}/app`);
    try {
      assert.equal(await nc.call('echo', 'before'), 'before');
      const newPort = await relay.rebind();
      assert.equal(await nc.call('echo', 'after'), 'after');
      const sessions = [...n.node.sessions.values()];
      assert.ok(
        sessions.some((s) => s.address.port === newPort),
        'the node now sends to the new address',
      );
    } finally {
      await nc.close();
      relay.close();
    }
  });

  test('replayed session datagrams are dropped and counted, not processed twice', async () => {
    const relay = new Rebinder(n.port);
    const port = await relay.start();
    const nc = await connect(`rtmfp://127.0.0.1:${port}/app`);
    try {
      assert.equal(await nc.call('echo', 1), 1);
      const before = n.node.stats().drops.replayed ?? 0;
      // Skip the two startup datagrams (IHello, IIKeying): the rest are session packets.
      const sessionPackets = relay.captured.slice(2);
      for (const d of sessionPackets) relay.upstream.send(d, n.port, '127.0.0.1');
      await until(
        () => (n.node.stats().drops.replayed ?? 0) - before >= sessionPackets.length,
        3_000,
        'replays counted',
      );
      assert.equal(await nc.call('echo', 2), 2);
    } finally {
      await nc.close();
      relay.close();
    }
  });

  test('a retransmitted IIKeying gets the same RIKeying without a second DH, until the session is in use', async () => {
    const socket = dgram.createSocket('udp4');
    const inbox: Buffer[] = [];
    socket.on('message', (msg) => inbox.push(msg));
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    const next = async (what: string): Promise<Buffer> => {
      await until(() => inbox.length > 0, 5_000, what);
      return inbox.shift()!;
    };
    const send = (d: Buffer) => socket.send(d, n.port, '127.0.0.1');
    try {
      const initiator = new Initiator({ uri: n.url(), groups: [2] });
      const handshakesBefore = n.node.stats().handshakes;
      send(initiator.current(Date.now()));
      const step = initiator.onStartup(await next('RHello'), Date.now());
      assert.equal(step.kind, 'send');
      const iikeying = initiator.current(Date.now());
      send(iikeying);
      const riKeying = await next('RIKeying');
      send(iikeying); // our RIKeying "was lost"
      assert.deepEqual(await next('the same RIKeying again'), riKeying);
      assert.equal(n.node.stats().handshakes - handshakesBefore, 1, 'one DH');

      const established = initiator.onStartup(riKeying, Date.now());
      assert.equal(established.kind, 'established');
      if (established.kind !== 'established') return;
      const session = new Session({
        role: 'initiator',
        localId: established.localId,
        remoteId: established.remoteId,
        address: { address: '127.0.0.1', port: n.port },
        cipher: new PacketCipher(established.cipher),
        now: Date.now(),
        hooks: {
          send: (d) => send(d),
          wake: () => {},
          flow: () => {},
          closed: () => {},
          released: () => {},
        },
      });
      session.openFlow(Buffer.from('TC\x04\x00')).write(Buffer.from([0x14, 0, 0, 0, 0]));
      session.flush(Date.now());
      await next('an ack of our data');
      const late = n.node.stats().drops['iikeying-late'] ?? 0;
      send(iikeying); // a stale duplicate, once the session is in use
      await until(() => (n.node.stats().drops['iikeying-late'] ?? 0) === late + 1, 3_000, 'counted');
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(!inbox.some((d) => d.equals(riKeying)), 'no RIKeying for it');
      session.abort();
    } finally {
      socket.close();
    }
  });

  test('an IHello flood from many addresses leaves no per-source state behind', async () => {
    const cipher = PacketCipher.startup();
    const pw = new PacketWriter();
    const sockets = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const s = dgram.createSocket('udp4');
        await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
        return s;
      }),
    );
    let answers = 0;
    for (const s of sockets) s.on('message', () => answers++);
    const before = n.node.stats();
    const epd = makeEPD({ ancillaryData: `rtmfp://127.0.0.1:${n.port}/app` });
    for (let i = 0; i < 2_000; i++) {
      pw.begin(PacketMode.startup, i, undefined);
      writeIHello(pw.w, { epd, tag: new Writer(16).u32(i).fill(0, 12).toBuffer() });
      sockets[i % sockets.length].send(cipher.seal(pw.view(), 0), n.port, '127.0.0.1');
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => answers >= 1_900, 5_000, 'RHellos');
    const after = n.node.stats();
    assert.equal(after.sessions, before.sessions, 'no session was created');
    assert.equal(after.opening, 0, 'no handshake is pending');
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  });

  test('IPv6 clients are served on an IPv6 socket', async () => {
    const v6 = await startNode({ listen: [{ host: '::1', port: 0 }] });
    try {
      const nc = await NetConnection.open(`rtmfp://[::1]:${v6.port}/app`);
      assert.equal(await nc.call('echo', 'v6'), 'v6');
      await nc.close();
    } finally {
      await v6.stop();
    }
  });
});
