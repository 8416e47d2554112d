import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import type { P2pStore, PeerRecord } from '../../runtime/cluster/p2p.ts';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { RtmfpNode } from '../../runtime/host/node.ts';
import { type PeerDirectory, RENDEZVOUS_LOOKUPS_PER_SOURCE } from '../../runtime/host/rendezvous.ts';
import { Initiator } from '../../runtime/rtmfp/handshake-initiator.ts';
import { connect } from '../../sdk/client.ts';
import { echoApp } from '../support/echo-app.ts';
import { silentLogger, until } from '../support/node.ts';
import { exchange, twoClients } from '../support/peers.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

const NODE_ID = 'n1';

/** A node of this process (echo app) on a free port whose rendezvous uses `peers`. */
async function startPeerNode(peers: PeerDirectory): Promise<{ node: RtmfpNode; port: number }> {
  const node = new RtmfpNode({
    listen: [{ host: '127.0.0.1', port: 0 }],
    handler: echoApp(silentLogger),
    logger: silentLogger,
    peers,
  });
  const [{ port }] = await node.start();
  return { node, port };
}

/**
 * A node in this process whose rendezvous uses a real redis-server, with the store's peer
 * lookups counted; node 'n1' is the only live one.
 */
describe('rendezvous lookups in the cluster store', () => {
  let redis: TestRedis;
  let state: RedisState;
  let node: RtmfpNode;
  let port: number;
  let socket: dgram.Socket;
  let lookups = 0;
  const answers: Buffer[] = [];

  /** Polls the store until it holds `peerId` (or no longer does); throws after 2 s. */
  const storeHolds = async (peerId: string, holds: boolean): Promise<PeerRecord | undefined> => {
    for (let i = 0; i < 100; i++) {
      const record = await state.p2p.peer(peerId);
      if ((record !== undefined) === holds) return record;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`the store ${holds ? 'never held' : 'still holds'} peer ${peerId.slice(0, 8)}`);
  };

  /** One IHello naming `peerId` from our socket (a given initiator's again: the same tag). */
  const hello = (peerId: Buffer, initiator = new Initiator({ peerId })) => {
    socket.send(initiator.current(Date.now()), port, '127.0.0.1');
  };

  before(async () => {
    redis = await startRedis();
    state = await RedisState.connect(redis.url, { cluster: 'rdv', logger: silentLogger });
    const p2p: P2pStore = Object.create(state.p2p);
    p2p.peer = (id) => {
      lookups++;
      return state.p2p.peer(id);
    };
    ({ node, port } = await startPeerNode({
      nodeId: () => NODE_ID,
      p2p,
      live: (id) => id === NODE_ID,
      forward: async () => true,
    }));
    socket = dgram.createSocket('udp4');
    socket.on('message', (m) => answers.push(m));
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  });
  after(async () => {
    socket?.close();
    await node?.stop();
    await state?.close();
    await redis?.stop();
  });

  test('a connected client is in the store while connected, and gone once it left', async () => {
    const nc = await connect(`rtmfp://127.0.0.1:${port}/app`);
    const record = await storeHolds(nc.peerId, true);
    assert.equal(record?.node, NODE_ID);
    assert.equal(record?.address, `127.0.0.1:${nc.localPort}`);
    await nc.close();
    await storeHolds(nc.peerId, false);
  });

  test('an IHello for a peer no node knows gets no answer and costs one store lookup', async () => {
    lookups = 0;
    answers.length = 0;
    hello(randomBytes(32));
    await until(() => lookups === 1, 2_000, 'the lookup');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(lookups, 1);
    assert.equal(answers.length, 0);
    assert.equal(node.rendezvous.stats.unknown, 1);
  });

  test('IHellos repeating a tag (retries, the re-send after a Redirect) share one store lookup', async () => {
    const peerId = randomBytes(32);
    const initiator = new Initiator({ peerId });
    lookups = 0;
    const limitedBefore = node.rendezvous.stats.limited;
    for (let i = 0; i < 5; i++) {
      hello(peerId, initiator);
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(() => lookups === 1, 2_000, 'the lookup');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(lookups, 1);
    assert.equal(node.rendezvous.stats.limited, limitedBefore, 'repeats do not count against the bound');
  });

  test('a peer whose node is not live is never introduced', async () => {
    const ghost = randomBytes(32);
    await state.p2p.putPeer(ghost.toString('hex'), { node: 'dead', address: '127.0.0.1:9', lan: [] });
    lookups = 0;
    answers.length = 0;
    hello(ghost);
    await until(() => lookups === 1, 2_000, 'the lookup');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(answers.length, 0);
    assert.equal(node.rendezvous.stats.remote, 0);
  });

  test(`store lookups from one source are bounded (${RENDEZVOUS_LOOKUPS_PER_SOURCE}/s)`, async () => {
    await new Promise((r) => setTimeout(r, 1_000)); // a fresh one-second window
    lookups = 0;
    const limitedBefore = node.rendezvous.stats.limited;
    for (let i = 0; i < 3 * RENDEZVOUS_LOOKUPS_PER_SOURCE; i++) hello(randomBytes(32));
    await until(
      () => node.rendezvous.stats.limited - limitedBefore + lookups === 3 * RENDEZVOUS_LOOKUPS_PER_SOURCE,
      2_000,
      'every IHello to be counted',
    );
    assert.ok(lookups <= 2 * RENDEZVOUS_LOOKUPS_PER_SOURCE, `${lookups} lookups`);
    assert.ok(node.rendezvous.stats.limited - limitedBefore >= RENDEZVOUS_LOOKUPS_PER_SOURCE);
  });
});

describe('rendezvous across two nodes in this process', () => {
  let redis: TestRedis;
  let state: RedisState;
  const nodes: RtmfpNode[] = [];
  const ports: number[] = [];

  before(async () => {
    redis = await startRedis();
    state = await RedisState.connect(redis.url, { cluster: 'rdv2', logger: silentLogger });
    // The store gives a wrong observed address (a port nobody listens on): only the Forwarded
    // IHello, sent by the target's node, can make the target answer the initiator.
    const p2p: P2pStore = Object.create(state.p2p);
    p2p.peer = async (id) => {
      const record = await state.p2p.peer(id);
      return record && { ...record, address: '127.0.0.1:9' };
    };
    for (const id of ['n1', 'n2']) {
      const { node, port } = await startPeerNode({
        nodeId: () => id,
        p2p,
        live: () => true,
        forward: async (to, request) => {
          nodes[to === 'n1' ? 0 : 1].rendezvous.forward(id, request);
          return true;
        },
      });
      nodes.push(node);
      ports.push(port);
    }
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await state?.close();
    await redis?.stop();
  });

  test("the target's node forwards the IHello and the target answers the initiator itself", async () => {
    const [a, b] = await twoClients(`rtmfp://127.0.0.1:${ports[0]}/app`, `rtmfp://127.0.0.1:${ports[1]}/app`);
    try {
      for (let i = 0; i < 100 && !(await state.p2p.peer(b.peerId)); i++)
        await new Promise((r) => setTimeout(r, 20));
      await exchange(a, b);
      assert.ok(nodes[0].rendezvous.stats.remote >= 1, 'node 1 answered the initiator');
      assert.ok(nodes[1].rendezvous.stats.forwarded >= 1, 'node 2 forwarded the IHello');
    } finally {
      await Promise.all([a.abort(), b.abort()]);
    }
  });
});
