import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { readSessionId } from '../../runtime/rtmfp/packet-crypto.ts';
import type { SessionConfig } from '../../runtime/rtmfp/session.ts';
import { connect, NetConnection } from '../../sdk/client.ts';
import { prng, startNode, until } from '../support/node.ts';

const DATAGRAMS = 100_000;
/**
 * Datagrams sent before waiting until the node has read every one: at most ~120 kB in the
 * socket buffer, under Linux's default 208 kB, so the kernel never drops one and the counts
 * below can be exact.
 */
const BATCH = 50;

/**
 * Real datagrams captured from a client's session, to mutate: they have the right shape, so
 * mutants get further into the decoder than random bytes do.
 */
async function captureSession(port: number): Promise<Buffer[]> {
  const captured: Buffer[] = [];
  const tap = dgram.createSocket('udp4');
  const upstream = dgram.createSocket('udp4');
  await new Promise<void>((r) => tap.bind(0, '127.0.0.1', r));
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', r));
  let client = 0;
  tap.on('message', (msg, rinfo) => {
    client = rinfo.port;
    captured.push(Buffer.from(msg));
    upstream.send(msg, port, '127.0.0.1');
  });
  upstream.on('message', (msg) => tap.send(msg, client, '127.0.0.1'));
  const nc = await connect(`rtmfp://127.0.0.1:${tap.address().port}/app`);
  await nc.call('echo', 'x'.repeat(3000));
  await nc.close();
  tap.close();
  upstream.close();
  return captured;
}

/** No keepalive traffic during the run: every datagram the node reads is one we sent. */
const QUIET: SessionConfig = { keepaliveMs: 120_000, timeoutMs: 240_000 };
/** Past the delayed ack (200 ms) of the last answer: the live client has nothing left to send. */
const ACK_SETTLE_MS = 400;
/** Smallest datagram a node looks into (scrambled session ID + one AES block). */
const MIN_DATAGRAM = 20;

/** What the node must make of a datagram, from its length and scrambled session ID alone. */
type Fate = 'short' | 'unknown-session' | 'startup' | 'known-session';

test('100,000 random and mutated datagrams: each dropped for the reason its bytes imply, live sessions untouched', async () => {
  const n = await startNode({ session: QUIET });
  const sender = dgram.createSocket('udp4');
  let live: NetConnection | undefined;
  try {
    const seeds = await captureSession(n.port);
    assert.ok(seeds.length >= 5, 'captured a session to mutate');
    live = await NetConnection.open(n.url(), { session: QUIET });
    assert.equal(await live.call('echo', 'before'), 'before');
    await new Promise((r) => setTimeout(r, ACK_SETTLE_MS));
    const sessionsBefore = [...n.node.sessions.keys()].sort();
    const before = n.node.stats();

    const expected: Record<Fate, number> = { short: 0, 'unknown-session': 0, startup: 0, 'known-session': 0 };
    const fateOf = (d: Buffer): Fate => {
      if (d.length < MIN_DATAGRAM) return 'short';
      const id = readSessionId(d);
      if (id === 0) return 'startup';
      return n.node.sessions.has(id) ? 'known-session' : 'unknown-session';
    };
    const random = prng(0x5eed);
    const byte = () => Math.floor(random() * 256);
    for (let i = 0; i < DATAGRAMS; i++) {
      let d: Buffer;
      const kind = random();
      if (kind < 0.3) {
        d = Buffer.alloc(Math.floor(random() * 1500));
        for (let j = 0; j < d.length; j++) d[j] = byte();
      } else {
        d = Buffer.from(seeds[Math.floor(random() * seeds.length)]);
        const flips = 1 + Math.floor(random() * 4);
        for (let f = 0; f < flips && d.length > 0; f++)
          d[Math.floor(random() * d.length)] ^= 1 << Math.floor(random() * 8);
        if (kind > 0.9) d = d.subarray(0, Math.floor(random() * d.length));
      }
      expected[fateOf(d)]++;
      sender.send(d, n.port, '127.0.0.1');
      if ((i + 1) % BATCH === 0) {
        const deadline = Date.now() + 2_000;
        while (n.node.stats().received - before.received < i + 1 && Date.now() < deadline) {
          await new Promise((r) => setImmediate(r));
        }
      }
    }
    await until(
      () => n.node.stats().received - before.received >= DATAGRAMS,
      20_000,
      'the node to read every datagram',
    );
    await new Promise((r) => setTimeout(r, 100));
    const after = n.node.stats();
    const delta = (reason: string) => (after.drops[reason] ?? 0) - (before.drops[reason] ?? 0);
    assert.equal(after.received - before.received, DATAGRAMS);
    assert.equal(delta('short'), expected.short, 'shorter than a packet');
    assert.equal(delta('unknown-session'), expected['unknown-session'], 'no such session');
    assert.ok(expected['known-session'] > 10_000, 'mutants reached the sessions');
    // A mutant of a session packet never authenticates; a mutated startup packet can still be
    // a valid IHello (checksum only), which is answered and allocates nothing.
    const accepted = after.accepted - before.accepted;
    assert.ok(accepted <= expected.startup, `only startup packets taken (${accepted}/${expected.startup})`);
    assert.equal(delta('internal-error'), 0, 'no handler error');
    assert.equal(after.handshakes, before.handshakes, 'no session opened');
    assert.equal(after.opening, 0, 'no handshake pending');
    assert.deepEqual([...n.node.sessions.keys()].sort(), sessionsBefore, 'no session closed or added');
    assert.equal(await live.call('echo', 'after'), 'after', 'the live session still works');
    const nc = await connect(n.url());
    assert.equal(await nc.call('echo', 'still here'), 'still here');
    await nc.close();
  } finally {
    await live?.close();
    sender.close();
    await n.stop();
  }
});
