import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type NetConnection, type PeerConnection } from '../../sdk/client.ts';

/** A client of `urlA` and one of `urlB`, each answering `whoami` with its name ('a', 'b'). */
export async function twoClients(urlA: string, urlB: string): Promise<[NetConnection, NetConnection]> {
  const a = await connect(urlA);
  const b = await connect(urlB).catch(async (e: unknown) => {
    await a.abort();
    throw e;
  });
  a.handle('whoami', () => 'a');
  b.handle('whoami', () => 'b');
  return [a, b];
}

/**
 * `a` opens a P2P session to `b` through the rendezvous; each then calls the other on it
 * (`b` answers with the handler its NetConnection has, `a` with one set on the peer connection).
 */
export async function exchange(a: NetConnection, b: NetConnection): Promise<void> {
  const incoming = once(b, 'peer') as Promise<[PeerConnection]>;
  const [toB, [toA]] = await Promise.all([a.connectPeer(b.peerId, { timeoutMs: 5_000 }), incoming]);
  assert.equal(toB.peerId, b.peerId);
  assert.equal(toA.peerId, a.peerId);
  assert.equal(toA.role, 'responder');
  // The side that was opened calls first: the peer event comes once the session can carry calls.
  assert.equal(await toA.call('whoami'), 'a');
  assert.equal(await toB.call('whoami'), 'b');
  toA.handle('sum', (x, y) => Number(x) + Number(y));
  assert.equal(await toB.call('sum', 2, 3), 5);
}

/**
 * `a` and `b` call `connectPeer` to each other at the same moment (glare, RFC 7016 §3.5.1.3):
 * both resolve to one session, opened by one and accepted by the other, which carries calls
 * both ways; neither sees a second session come in.
 */
export async function openAtOnce(a: NetConnection, b: NetConnection): Promise<void> {
  const extra: string[] = [];
  const onPeer = (peer: PeerConnection) => extra.push(peer.peerId);
  a.on('peer', onPeer);
  b.on('peer', onPeer);
  try {
    const [toB, toA] = await Promise.all([
      a.connectPeer(b.peerId, { timeoutMs: 5_000 }),
      b.connectPeer(a.peerId, { timeoutMs: 5_000 }),
    ]);
    assert.deepEqual([toB.peerId, toA.peerId], [b.peerId, a.peerId]);
    assert.deepEqual([toB.role, toA.role].sort(), ['initiator', 'responder'], 'one session, not two');
    assert.equal(await toB.call('whoami'), 'b');
    assert.equal(await toA.call('whoami'), 'a');
    assert.deepEqual(extra, [], 'no second session came in');
    toB.close();
    toA.close();
  } finally {
    a.off('peer', onPeer);
    b.off('peer', onPeer);
  }
}
