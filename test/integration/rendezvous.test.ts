import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startNode, type TestNode, until } from '../support/node.ts';
import { exchange, openAtOnce, twoClients } from '../support/peers.ts';

describe('P2P rendezvous on one node', () => {
  let n: TestNode;
  before(async () => {
    n = await startNode();
  });
  after(() => n.stop());

  test('two clients connect P2P through the node and call each other', async () => {
    const [a, b] = await twoClients(n.url(), n.url());
    try {
      await exchange(a, b);
      assert.equal(n.node.rendezvous.stats.local >= 1, true);
    } finally {
      await Promise.all([a.abort(), b.abort()]);
    }
  });

  test('two clients calling connectPeer to each other at once get one session, both resolving to it', async () => {
    const [a, b] = await twoClients(n.url(), n.url());
    try {
      for (let i = 0; i < 5; i++) await openAtOnce(a, b);
    } finally {
      await Promise.all([a.abort(), b.abort()]);
    }
  });

  test('a client that disconnected is not introduced', async () => {
    const [a, b] = await twoClients(n.url(), n.url());
    try {
      const gone = b.peerId;
      await b.close();
      await until(() => n.node.openConnections().length === 1, 3_000, 'b to leave');
      const before = n.node.rendezvous.stats.local;
      await assert.rejects(a.connectPeer(gone, { timeoutMs: 1_000 }), /did not answer/);
      assert.equal(n.node.rendezvous.stats.local, before);
    } finally {
      await Promise.all([a.abort(), b.abort()]);
    }
  });
});
