import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TCServerHandler } from '../../runtime/rtmfp/tc-server.ts';
import { NetConnection } from '../../sdk/client.ts';
import { startNode, type TestNode, until } from '../support/node.ts';

/**
 * Well inside the node's keepalive (10 s) and timeout (30 s): an end noticed by then was acted
 * on, not timed out.
 */
const PROMPTLY_MS = 1_000;

/** Accepts every connect and remembers the peer IDs whose connection ended. */
function recordingHandler(): TCServerHandler & { ended: Set<string> } {
  const ended = new Set<string>();
  return {
    ended,
    connect: (conn) => conn.accept(),
    call: (_conn, _name, args, reply) => reply?.result(args[0] ?? null),
    closed(conn) {
      ended.add(conn.peerId);
    },
  };
}

describe('clients that end abruptly or start over (rtmfp-cpp, RTMFP-NOTES pitfalls 28–29)', () => {
  let n: TestNode;
  const handler = recordingHandler();
  before(async () => {
    n = await startNode({ handler });
  });
  after(() => n.stop());

  test('an unsolicited Close Ack ends the connection at once (RFC 7016 §3.5.5.2)', async () => {
    const sessionsBefore = n.node.sessions.size;
    const nc = await NetConnection.open(n.url());
    assert.equal(n.node.sessions.size, sessionsBefore + 1);
    await nc.abort(); // what tcconn does on Ctrl-C
    await until(() => handler.ended.has(nc.peerId), PROMPTLY_MS, 'the node to close the connection');
    assert.equal(n.node.sessions.size, sessionsBefore, 'nothing lingers');
  });

  // The client dies without a word; a new instance gets the same port and hands out its first
  // session ID again (rtmfp-cpp), or another one.
  for (const [title, firstId, secondId] of [
    ['a restarted client reusing its address and session ID gets a new session; the stale one goes', 1, 1],
    ['a new session from an address replaces the open one there, whatever its session ID', 7, 8],
  ] as const) {
    test(title, async () => {
      const first = await NetConnection.open(n.url(), { sessionId: firstId });
      const port = first.localPort;
      await first.abort({ tellPeer: false });
      assert.equal(handler.ended.has(first.peerId), false, 'the node was told nothing');
      const handshakesBefore = n.node.stats().handshakes;
      const second = await NetConnection.open(n.url(), {
        localPort: port,
        sessionId: secondId,
        timeoutMs: 2_000,
      });
      try {
        assert.equal(
          n.node.stats().handshakes,
          handshakesBefore + 1,
          'connected, not stalled behind the stale session',
        );
        await until(() => handler.ended.has(first.peerId), PROMPTLY_MS, 'the stale connection to end');
        assert.equal(handler.ended.has(second.peerId), false, 'the new one lives');
        assert.equal(await second.call('echo', 'after'), 'after');
      } finally {
        await second.abort();
      }
    });
  }
});
