import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import type { TCServerConnection, TCServerHandler } from '../../runtime/rtmfp/tc-server.ts';
import { startNode, type TestNode, until } from '../support/node.ts';
import { rawConnect } from '../support/raw-initiator.ts';

/**
 * Well inside the node's keepalive (10 s) and timeout (30 s): an end noticed by then was acted
 * on, not timed out.
 */
const PROMPTLY_MS = 1_000;

/** Accepts every connect and remembers which connections ended. */
function recordingHandler(): TCServerHandler & { ended: Set<TCServerConnection> } {
  const ended = new Set<TCServerConnection>();
  return {
    ended,
    connect: (conn) => conn.accept(),
    call: (_conn, _name, args, reply) => reply?.result(args[0] ?? null),
    closed(conn) {
      ended.add(conn);
    },
  };
}

async function udpSocket(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return socket;
}

describe('clients that end abruptly or start over (rtmfp-cpp, RTMFP-NOTES pitfalls 28–29)', () => {
  let n: TestNode;
  const handler = recordingHandler();
  before(async () => {
    n = await startNode({ handler });
  });
  after(() => n.stop());

  /** The node's connection whose session the client knows as `remoteId`. */
  function connectionOf(remoteId: number): TCServerConnection {
    const session = n.node.sessions.get(remoteId);
    assert.ok(session, 'the node has the session');
    return (session.context as { conn: TCServerConnection }).conn;
  }

  test('an unsolicited Close Ack ends the connection at once (RFC 7016 §3.5.5.2)', async () => {
    const socket = await udpSocket();
    try {
      const client = await rawConnect(socket, n.port);
      assert.equal((await client.connected).ok, true);
      const conn = connectionOf(client.session.remoteId);
      client.session.abort({ tellPeer: true }); // what tcconn does on Ctrl-C
      await until(() => handler.ended.has(conn), PROMPTLY_MS, 'the node to close the connection');
      assert.equal(n.node.sessions.has(client.session.remoteId), false, 'nothing lingers');
      client.detach();
    } finally {
      socket.close();
    }
  });

  // The client dies without a word; a new instance gets the same port and hands out its first
  // session ID again (rtmfp-cpp), or another one.
  for (const [title, firstId, secondId] of [
    ['a restarted client reusing its address and session ID gets a new session; the stale one goes', 1, 1],
    ['a new session from an address replaces the open one there, whatever its session ID', 7, 8],
  ] as const) {
    test(title, async () => {
      const socket = await udpSocket();
      try {
        const first = await rawConnect(socket, n.port, { localId: firstId });
        assert.equal((await first.connected).ok, true);
        const stale = connectionOf(first.session.remoteId);
        first.session.abort();
        first.detach();
        const handshakesBefore = n.node.stats().handshakes;
        const second = await rawConnect(socket, n.port, { localId: secondId, timeoutMs: 2_000 });
        assert.equal((await second.connected).ok, true, 'connected, not stalled behind the stale session');
        assert.equal(n.node.stats().handshakes, handshakesBefore + 1);
        assert.notEqual(second.session.remoteId, first.session.remoteId);
        await until(() => handler.ended.has(stale), PROMPTLY_MS, 'the stale connection to end');
        assert.equal(n.node.sessions.has(first.session.remoteId), false);
        assert.equal(handler.ended.has(connectionOf(second.session.remoteId)), false, 'the new one lives');
        second.session.abort({ tellPeer: true });
        second.detach();
      } finally {
        socket.close();
      }
    });
  }
});
