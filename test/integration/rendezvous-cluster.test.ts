import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { connect } from '../../sdk/client.ts';
import { silentLogger, until } from '../support/node.ts';
import { exchange, openAtOnce, twoClients } from '../support/peers.ts';
import { endProcess } from '../support/processes.ts';
import { startTestCluster, TEST_HEARTBEAT_MS, type TestCluster } from '../support/test-cluster.ts';

/** Sends initiators looking for a peer no node knows to `elsewhere` (another rendezvous). */
const app = (elsewhere: string) => `
import { defineApp } from 'fnhost/sdk';
export default defineApp({
  onRendezVousUnknown(peerId) {
    return peerId.startsWith('ee') ? '${elsewhere}' : undefined;
  },
});
`;

describe('P2P rendezvous across two nodes (real redis-server, node processes)', () => {
  let cluster: TestCluster;
  let state: RedisState;
  const url = (i: number) => `rtmfp://${cluster.nodes[i].rtmfp}/app`;
  /** Until the store holds `peerId` on `node` (or, with undefined, holds it nowhere). */
  const registered = (peerId: string, node: string | undefined) =>
    until(() => lastSeen.get(peerId) === node, 5_000, `peer ${peerId.slice(0, 8)} on ${node ?? 'no node'}`);
  const lastSeen = new Map<string, string | undefined>();
  let poller: NodeJS.Timeout | undefined;
  const watch = (peerId: string) => {
    lastSeen.set(peerId, 'unread');
  };

  /** Stands for another rendezvous: counts the IHellos it gets. */
  let elsewhere: dgram.Socket;
  let hellosElsewhere = 0;

  before(async () => {
    elsewhere = dgram.createSocket('udp4');
    elsewhere.on('message', () => hellosElsewhere++);
    await new Promise<void>((r) => elsewhere.bind(0, '127.0.0.1', r));
    cluster = await startTestCluster({ nodes: 2, app: app(`127.0.0.1:${elsewhere.address().port}`) });
    state = await RedisState.connect(cluster.redis.url, { cluster: 'default', logger: silentLogger });
    poller = setInterval(() => {
      for (const id of lastSeen.keys())
        state.p2p.peer(id).then(
          (r) => lastSeen.set(id, r?.node),
          () => {},
        );
    }, 20);
  });
  after(async () => {
    clearInterval(poller);
    elsewhere?.close();
    await state?.close();
    await cluster?.stop();
  });

  test('two clients on different nodes connect P2P and call each other', async () => {
    const [a, b] = await twoClients(url(0), url(1));
    try {
      watch(b.peerId);
      await registered(b.peerId, cluster.nodes[1].id);
      await exchange(a, b);
    } finally {
      await Promise.all([a.abort(), b.abort()]);
    }
  });

  test('two clients on different nodes calling connectPeer to each other at once get one session', async () => {
    const [a, b] = await twoClients(url(0), url(1));
    try {
      watch(a.peerId);
      watch(b.peerId);
      await registered(a.peerId, cluster.nodes[0].id);
      await registered(b.peerId, cluster.nodes[1].id);
      for (let i = 0; i < 3; i++) await openAtOnce(a, b);
    } finally {
      await Promise.all([a.abort(), b.abort()]);
    }
  });

  test("a target on another node answers the initiator's reported LAN address too, as one on the same node does", async () => {
    // Stands for the initiator's LAN side: every datagram it gets is a target's RHello.
    const lan = dgram.createSocket('udp4');
    const rHellosFrom: number[] = [];
    lan.on('message', (_m, rinfo) => rHellosFrom.push(rinfo.port));
    await new Promise<void>((r) => lan.bind(0, '127.0.0.1', r));
    const a = await connect(url(0));
    const [near, far] = await twoClients(url(0), url(1));
    try {
      const reported = `127.0.0.1:${lan.address().port}`;
      a.call('setPeerInfo', reported).catch(() => {}); // the node answers setPeerInfo with nothing
      const deadline = Date.now() + 5_000;
      while (!(await state.p2p.peer(a.peerId))?.lan.includes(reported)) {
        assert.ok(Date.now() < deadline, 'the store holds the reported address');
        await new Promise((r) => setTimeout(r, 20));
      }
      watch(far.peerId);
      await registered(far.peerId, cluster.nodes[1].id);
      // Both peers share one public IP (127.0.0.1), so the target's first RHello goes to the
      // initiator's reported address, its next to the observed one (RTMFP-NOTES §6 step 2).
      for (const target of [near, far]) {
        await (await a.connectPeer(target.peerId, { timeoutMs: 5_000 })).close();
        await until(() => rHellosFrom.includes(target.localPort), 5_000, 'an RHello at the reported address');
      }
    } finally {
      lan.close();
      await Promise.all([a.abort(), near.abort(), far.abort()]);
    }
  });

  test('onRendezVousUnknown sends an initiator looking for an unknown peer elsewhere; without it, no answer', async () => {
    const a = await connect(url(0));
    try {
      await assert.rejects(a.connectPeer('ee'.repeat(32), { timeoutMs: 1_000 }), /did not answer/);
      assert.ok(hellosElsewhere > 0, 'the initiator was redirected to the other rendezvous');
      const before = hellosElsewhere;
      await assert.rejects(a.connectPeer('dd'.repeat(32), { timeoutMs: 1_000 }), /did not answer/);
      assert.equal(hellosElsewhere, before);
    } finally {
      await a.abort();
    }
  });

  test('after Redis restarts empty, each node registers its connected clients again', async () => {
    const [a, b] = await twoClients(url(0), url(1));
    try {
      watch(a.peerId);
      watch(b.peerId);
      await registered(a.peerId, cluster.nodes[0].id);
      await registered(b.peerId, cluster.nodes[1].id);
      await cluster.redis.restart();
      // Forget what was read before: only a registration after the restart shows now.
      watch(a.peerId);
      watch(b.peerId);
      await registered(a.peerId, cluster.nodes[0].id);
      await registered(b.peerId, cluster.nodes[1].id);
      await exchange(a, b);
    } finally {
      await Promise.all([a.abort(), b.abort()]);
    }
  });

  test("a killed node's peers leave the store within 3 heartbeats and are not introduced after", async () => {
    const [a, b] = await twoClients(url(0), url(1));
    let killed = false;
    try {
      watch(b.peerId);
      await registered(b.peerId, cluster.nodes[1].id);
      // b stays up and answers any IHello that reaches it: only the rendezvous can keep a from it.
      const start = Date.now();
      await endProcess(cluster.nodes[1].child, 'SIGKILL');
      killed = true;
      // Its key expires after 3 heartbeats; the survivor reaps at its next beat.
      await registered(b.peerId, undefined);
      const ms = Date.now() - start;
      assert.ok(ms <= 4 * TEST_HEARTBEAT_MS + 500, `gone after ${ms} ms`);
      await assert.rejects(a.connectPeer(b.peerId, { timeoutMs: 1_500 }), /did not answer/);
    } finally {
      await Promise.all([a.abort(), b.abort()]);
      if (!killed) await endProcess(cluster.nodes[1].child, 'SIGKILL');
    }
  });
});
