import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { silentLogger, until } from '../support/node.ts';
import { exchange, twoClients } from '../support/peers.ts';
import { endProcess } from '../support/processes.ts';
import { startTestCluster, TEST_HEARTBEAT_MS, type TestCluster } from '../support/test-cluster.ts';

const APP = `
import { defineApp } from 'fnhost/sdk';
export default defineApp({});
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

  before(async () => {
    cluster = await startTestCluster({ nodes: 2, app: APP });
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

  test("a killed node's peers leave the store within 3 heartbeats and are not introduced after", async () => {
    const [a, b] = await twoClients(url(0), url(1));
    let killed = false;
    try {
      watch(b.peerId);
      await registered(b.peerId, cluster.nodes[1].id);
      await b.abort({ tellPeer: false });
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
