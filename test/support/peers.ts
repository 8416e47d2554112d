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
