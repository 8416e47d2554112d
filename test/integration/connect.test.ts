import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadNativePacket } from '../../runtime/host/native-packet.ts';
import { connect, NetConnection, StatusError } from '../../sdk/client.ts';
import { startNode, type TestNode, until } from '../support/node.ts';

// Both packet paths of a node: native (AES-NI in place, sendto) when built, and node:crypto + dgram.
for (const nativePackets of [true, false])
  describe(`a client and a node over real UDP (${nativePackets ? 'native packets when built' : 'node:crypto packets'})`, () => {
    let n: TestNode;
    before(async () => {
      n = await startNode({ nativePackets });
    });
    after(() => n.stop());

    test('the node runs the packet path it was asked for', () => {
      const built = loadNativePacket().native !== undefined;
      assert.deepEqual(
        { native: n.node.packets.native, sendto: n.node.packets.sendto },
        { native: nativePackets && built, sendto: nativePackets && built },
      );
    });

    test('connect resolves with NetConnection.Connect.Success and the AMF0 objectEncoding', async () => {
      const nc = await connect(n.url(), 'user', 42);
      try {
        assert.equal((nc.info as { code: string }).code, 'NetConnection.Connect.Success');
        assert.equal((nc.info as { objectEncoding: number }).objectEncoding, 0);
        assert.match(nc.serverFingerprint, /^[0-9a-f]{64}$/);
        assert.equal(nc.serverFingerprint, n.node.fingerprint);
      } finally {
        await nc.close();
      }
    });

    test('echo answers with its arguments, whatever their AMF types', async () => {
      const nc = await connect(n.url());
      try {
        assert.equal(await nc.call('echo', 'hi'), 'hi');
        const when = new Date(Date.UTC(2026, 10, 26));
        assert.deepEqual(await nc.call('echo', 1.5, true, null, [1, 'two'], { a: { b: 'c' } }, when), [
          1.5,
          true,
          null,
          [1, 'two'],
          { a: { b: 'c' } },
          when,
        ]);
      } finally {
        await nc.close();
      }
    });

    test('a message larger than one packet is fragmented and reassembled', async () => {
      const nc = await connect(n.url());
      try {
        const big = 'x'.repeat(50_000);
        assert.equal(await nc.call('echo', big), big);
      } finally {
        await nc.close();
      }
    });

    test('an unknown call is answered with _error and the connection stays usable', async () => {
      const nc = await connect(n.url());
      try {
        await assert.rejects(nc.call('nope'), (e: unknown) => {
          assert.ok(e instanceof StatusError);
          assert.equal(e.code, 'NetConnection.Call.Failed');
          assert.match(e.description, /nope/);
          return true;
        });
        assert.equal(await nc.call('echo', 7), 7);
      } finally {
        await nc.close();
      }
    });

    test('many calls in flight are answered in order, each once', async () => {
      const nc = await connect(n.url());
      try {
        const replies = await Promise.all(Array.from({ length: 300 }, (_, i) => nc.call('echo', i)));
        assert.deepEqual(
          replies,
          Array.from({ length: 300 }, (_, i) => i),
        );
      } finally {
        await nc.close();
      }
    });

    test('close ends the session on the node and the client reports Connect.Closed', async () => {
      const nc = await connect(n.url());
      const before = n.node.stats().connections;
      const closed = new Promise((r) => nc.once('close', r));
      await nc.close();
      assert.equal(((await closed) as { code: string }).code, 'NetConnection.Connect.Closed');
      await until(() => n.node.stats().connections === before - 1, 3_000, 'the node to see the close');
      await assert.rejects(nc.call('echo', 1), StatusError);
    });

    test('HMAC and sequence numbers are optional: a client asking for neither connects too', async () => {
      const nc = await NetConnection.open(n.url(), {
        policy: {
          hmac: { sendAlways: false, recvRequired: false },
          hmacLength: 16,
          sseq: { sendAlways: false, recvRequired: false },
        },
      });
      try {
        assert.equal(await nc.call('echo', 'plain'), 'plain');
      } finally {
        await nc.close();
      }
    });

    for (const group of [2, 14, 16]) {
      test(`Diffie-Hellman group ${group} opens a working session`, async () => {
        const nc = await NetConnection.open(n.url(), { groups: [group] });
        try {
          assert.equal(await nc.call('echo', group), group);
        } finally {
          await nc.close();
        }
      });
    }
  });

describe('node lifecycle', () => {
  test('stopping the node closes its clients with NetConnection.Connect.Closed', async () => {
    const n = await startNode();
    const nc = await connect(n.url());
    const closed = new Promise<unknown>((r) => nc.once('close', r));
    await n.stop();
    const info = (await closed) as { code: string };
    assert.equal(info.code, 'NetConnection.Connect.Closed');
  });

  test("an idle client stays connected: the node's keepalive pings run with no traffic to wake it", async () => {
    const n = await startNode({ session: { keepaliveMs: 100, timeoutMs: 400 } });
    try {
      const nc = await connect(n.url());
      const sent = n.node.sent;
      // The client's own keepalive is 10 s: only the node's pings, answered, keep the session.
      await new Promise((r) => setTimeout(r, 1_000));
      assert.ok(n.node.sent - sent >= 5, `${n.node.sent - sent} keepalive pings in 1 s, every 100 ms`);
      assert.equal(n.node.stats().connections, 1);
      assert.equal(await nc.call('echo', 'still here'), 'still here');
      await nc.close();
    } finally {
      await n.stop();
    }
  });

  test('a client that vanishes is timed out and its session freed', async () => {
    const n = await startNode({ session: { keepaliveMs: 100, timeoutMs: 400 } });
    try {
      const nc = await connect(n.url());
      assert.equal(n.node.stats().connections, 1);
      // Vanish: stop answering without telling the node (no Close Request).
      (nc as unknown as { teardown(): void }).teardown();
      await until(() => n.node.stats().sessions === 0, 5_000, 'the session to be freed');
      assert.equal(n.node.stats().connections, 0);
    } finally {
      await n.stop();
    }
  });

  test('200 clients connect at once and each gets its own echo', async () => {
    const n = await startNode();
    try {
      const clients = await Promise.all(
        Array.from({ length: 200 }, () => NetConnection.open(n.url(), { groups: [2], timeoutMs: 30_000 })),
      );
      assert.equal(n.node.stats().connections, 200);
      const replies = await Promise.all(clients.map((nc, i) => nc.call('echo', i)));
      assert.deepEqual(
        replies,
        clients.map((_, i) => i),
      );
      await Promise.all(clients.map((nc) => nc.close()));
      await until(() => n.node.stats().connections === 0, 5_000, 'all closes');
    } finally {
      await n.stop();
    }
  });
});

describe('answers a node cannot encode', () => {
  test('a result AMF cannot carry leaves the call open for an _error', { timeout: 10_000 }, async () => {
    const n = await startNode({
      handler: {
        connect: (conn) => conn.accept(),
        call(_conn, _name, _args, reply) {
          try {
            reply?.result({ ['k'.repeat(70_000)]: 1 }); // an AMF0 member name is at most 65,535 bytes
          } catch (e) {
            reply?.error(`not encodable: ${(e as Error).message}`);
          }
        },
        closed() {},
      },
    });
    const nc = await connect(n.url());
    try {
      await assert.rejects(nc.call('anything'), (e: unknown) => {
        assert.ok(e instanceof StatusError);
        assert.match(e.description, /not encodable/);
        return true;
      });
    } finally {
      await nc.close();
      await n.stop();
    }
  });
});

test('a stopped node forgets its sockets’ descriptors: their numbers go to other files', async () => {
  const n = await startNode();
  const built = loadNativePacket().native !== undefined;
  assert.equal(n.node.packets.sendto, built);
  await n.stop();
  assert.equal(n.node.packets.sendto, false);
});
