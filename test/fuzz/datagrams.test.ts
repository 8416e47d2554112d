import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { connect } from '../../sdk/client.ts';
import { prng, startNode, until } from '../support/node.ts';

const DATAGRAMS = 100_000;
/** Datagrams sent before waiting for the node to read them. */
const BATCH = 200;

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

test('100,000 random and mutated datagrams: no crash, every one dropped and counted, node still serves', async () => {
  const n = await startNode();
  const sender = dgram.createSocket('udp4');
  try {
    const seeds = await captureSession(n.port);
    assert.ok(seeds.length >= 5, 'captured a session to mutate');
    const before = n.node.stats();
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
      sender.send(d, n.port, '127.0.0.1');
      if (i % BATCH === 0) {
        // Let the node keep up, so it is the node that drops, not the kernel.
        const deadline = Date.now() + 2_000;
        while (n.node.stats().received - before.received < i - BATCH && Date.now() < deadline) {
          await new Promise((r) => setImmediate(r));
        }
      }
    }
    await until(
      () => n.node.stats().received - before.received >= DATAGRAMS * 0.95,
      20_000,
      'the node to read the datagrams',
    );
    await new Promise((r) => setTimeout(r, 100));
    const after = n.node.stats();
    const received = after.received - before.received;
    const dropped = after.dropped - before.dropped;
    const accepted = after.accepted - before.accepted;
    assert.equal(dropped + accepted, received, 'every datagram is either taken or counted as dropped');
    // A mutant can only be taken if it still authenticates: flipping a bit of a startup packet
    // can leave a valid IHello (checksum-protected only), which is answered — and allocates nothing.
    assert.ok(dropped >= received * 0.99, `almost all dropped (${dropped}/${received})`);
    assert.equal(after.drops['internal-error'] ?? 0, 0, 'no handler error');
    assert.equal(after.connections, 0);
    const nc = await connect(n.url());
    assert.equal(await nc.call('echo', 'still here'), 'still here');
    await nc.close();
  } finally {
    sender.close();
    await n.stop();
  }
});
