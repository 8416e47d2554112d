import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { connect, type NetConnection, type PeerConnection } from '../../sdk/client.ts';
import { startNode, type TestNode, until } from '../support/node.ts';

/** Two clients of `url`, each answering `whoami` with its own name. */
async function twoClients(urlA: string, urlB: string): Promise<[NetConnection, NetConnection]> {
  const a = await connect(urlA);
  const b = await connect(urlB);
  a.handle('whoami', () => 'a');
  b.handle('whoami', () => 'b');
  return [a, b];
}

/** `a` opens a P2P session to `b` and each calls the other over it. */
async function exchange(a: NetConnection, b: NetConnection): Promise<void> {
  const incoming = once(b, 'peer') as Promise<[PeerConnection]>;
  const toB = await a.connectPeer(b.peerId, { timeoutMs: 5_000 });
  assert.equal(toB.peerId, b.peerId);
  assert.equal(await toB.call('whoami'), 'b');
  const [toA] = await incoming;
  assert.equal(toA.peerId, a.peerId);
  assert.equal(toA.role, 'responder');
  toA.handle('sum', (x, y) => Number(x) + Number(y));
  assert.equal(await toB.call('sum', 2, 3), 5);
  assert.equal(await toA.call('whoami'), 'a');
}

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
