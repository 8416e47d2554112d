import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { ClusterNode, sealMessage } from '../../runtime/cluster/cluster.ts';
import type { ForwardHelloRequest } from '../../runtime/cluster/forward-hello.ts';
import { MemoryState } from '../../runtime/cluster/memory-state.ts';
import { idleNodeRecord } from '../support/node-records.ts';

const SECRET = Buffer.alloc(32, 7);

describe('node-to-node messages', () => {
  const state = new MemoryState();
  const received: unknown[][] = [];
  const commands: unknown[][] = [];
  const hellos: unknown[][] = [];
  const introductions: unknown[][] = [];
  const make = (id: string, secret = SECRET) =>
    new ClusterNode({
      state,
      logger: pino({ level: 'silent' }),
      secret,
      heartbeatMs: 60_000,
      describe: idleNodeRecord,
      id,
      hooks: {
        joined() {},
        left() {},
        message: (_from, fromId, app, name, args) => received.push([fromId, app, name, args]),
        control: (name, args) => commands.push([name, args]),
        forwardHello: (fromId, request) => hellos.push([fromId, request]),
        groupIntroduce: (fromId, request) => introductions.push([fromId, request]),
      },
    });
  const a = make('a');
  const b = make('b');
  const wire: string[] = [];
  let unsubscribe: () => Promise<void>;

  before(async () => {
    await a.start();
    await b.start();
    await a.heartbeatNow(); // a learns that b is live
    unsubscribe = await state.subscribe('rpc:b', (m) => wire.push(m));
  });

  after(async () => {
    await unsubscribe();
    await a.stop();
    await b.stop();
  });

  const settle = () => new Promise((r) => setTimeout(r, 10));
  /** A request from a to b as a node would seal it, with `secret`. */
  const signedRequest = (
    kind: 'forward-hello' | 'group-introduce',
    request: unknown,
    secret: Buffer = SECRET,
  ) => sealMessage(secret, { kind, from: 'a', epoch: 'e', to: 'b', app: '', name: '', args: [request] });

  test('a signed message reaches the addressed node with its app, name and arguments', async () => {
    assert.equal(await a.send('b', 'chat', 'ping', [1, 'two']), true);
    await settle();
    assert.deepEqual(received.at(-1), ['a', 'chat', 'ping', [1, 'two']]);
  });

  test('the same message published again is dropped as a replay', async () => {
    const count = received.length;
    await state.publish('rpc:b', wire.at(-1)!);
    await settle();
    assert.equal(received.length, count);
    assert.equal(b.dropped.replayed, 1);
  });

  test('a message whose content was changed, or signed with another secret, is dropped as forged', async () => {
    const count = received.length;
    const tampered = JSON.parse(wire.at(-1)!) as { args: unknown[]; nonce: string };
    tampered.args = ['evil'];
    tampered.nonce = 'fresh';
    await state.publish('rpc:b', JSON.stringify(tampered));
    const outsider = make('x', Buffer.alloc(32, 9));
    await outsider.start();
    await outsider.heartbeatNow();
    await outsider.send('b', 'chat', 'ping', ['from outside']);
    await outsider.stop();
    await settle();
    assert.equal(received.length, count);
    assert.equal(b.dropped.forged, 2);
  });

  test('a message from too far in the past is dropped as stale', async () => {
    const count = received.length;
    const realNow = Date.now;
    // The sender's clock is 5 minutes behind while it seals the message (synchronously).
    Date.now = () => realNow() - 5 * 60_000;
    let sent: Promise<boolean>;
    try {
      sent = a.send('b', 'chat', 'ping', ['old']);
    } finally {
      Date.now = realNow;
    }
    await sent;
    await settle();
    assert.equal(received.length, count);
    assert.equal(b.dropped.stale, 1);
  });

  test('a send to a node that is not live is refused', async () => {
    assert.equal(await a.send('nobody', 'chat', 'ping', []), false);
  });

  test("an operator's command signed with the cluster secret (as the CLI sends it) reaches the node's control hook; a forged one does not", async () => {
    const command = (secret: Buffer, name: string) =>
      sealMessage(secret, {
        kind: 'control',
        from: 'cli',
        epoch: 'e',
        to: 'b',
        app: '',
        name,
        args: [60_000, 'r1'],
      });
    const forgedBefore = b.dropped.forged;
    await state.publish('rpc:b', command(SECRET, 'drain'));
    await state.publish('rpc:b', command(Buffer.alloc(32, 9), 'pause'));
    await settle();
    assert.deepEqual(commands, [['drain', [60_000, 'r1']]]);
    assert.equal(b.dropped.forged, forgedBefore + 1);
    assert.equal(received.filter((r) => r[2] === 'drain').length, 0, 'not an app message');
  });

  const hello: ForwardHelloRequest = {
    target: 'ab'.repeat(32),
    epd: `210f${'ab'.repeat(32)}`,
    tag: '0123456789abcdef0123456789abcdef',
    address: '198.51.100.4:50123',
    attempt: 2,
    reported: ['192.168.1.20:50123', '[fd00::20]:50124'],
  };

  test("a forward-hello request reaches the target's node with the initiator's EPD, tag, addresses and attempt", async () => {
    assert.equal(await a.forwardHello('b', hello), true);
    assert.equal(await a.forwardHello('b', { ...hello, address: '[2001:db8::4]:50123' }), true);
    await settle();
    assert.deepEqual(hellos, [
      ['a', hello],
      ['a', { ...hello, address: '[2001:db8::4]:50123' }],
    ]);
  });

  test('a forward-hello signed with another secret is dropped as forged, a signed one the node cannot use as malformed', async () => {
    const count = hellos.length;
    const { forged, malformed } = b.dropped;
    const signed = (secret: Buffer, request: unknown) => signedRequest('forward-hello', request, secret);
    await state.publish('rpc:b', signed(Buffer.alloc(32, 9), hello));
    await state.publish('rpc:b', signed(SECRET, { ...hello, address: 'attacker.example:1' }));
    await state.publish('rpc:b', signed(SECRET, { ...hello, target: 'not a peer' }));
    await state.publish('rpc:b', signed(SECRET, 'nothing'));
    await state.publish('rpc:b', signed(SECRET, { ...hello, reported: ['lan.example:1'] }));
    await state.publish('rpc:b', signed(SECRET, { ...hello, attempt: -1 }));
    await settle();
    assert.equal(hellos.length, count);
    assert.deepEqual([b.dropped.forged - forged, b.dropped.malformed - malformed], [1, 5]);
  });

  test('a forward-hello from a node that predates attempts and reported addresses is taken as a first attempt with none', async () => {
    const count = hellos.length;
    const { attempt: _a, reported: _r, ...older } = hello;
    await state.publish('rpc:b', signedRequest('forward-hello', older));
    await settle();
    assert.deepEqual(hellos.slice(count), [['a', { ...older, attempt: 0, reported: [] }]]);
  });

  test('forwardHello refuses a request the other node would drop, and a node that is not live', async () => {
    await assert.rejects(
      a.forwardHello('b', { ...hello, tag: 'xyz' }),
      /forward-hello: tag must be 1 to 64 bytes/,
    );
    await assert.rejects(a.forwardHello('b', { ...hello, epd: '' }), /forward-hello: epd must be/);
    await assert.rejects(
      a.forwardHello('b', { ...hello, address: '198.51.100.4' }),
      /forward-hello: address must be an observed "ip:port", got "198\.51\.100\.4"/,
    );
    for (const attempt of [-1, 1.5, '1', null]) {
      await assert.rejects(
        a.forwardHello('b', { ...hello, attempt: attempt as number }),
        /forward-hello: attempt must be a non-negative integer/,
      );
    }
    const tooMany = Array.from({ length: 17 }, (_, i) => `192.168.1.${i + 1}:50123`);
    for (const reported of [tooMany, ['192.168.1.20'], 'a:1', [7]]) {
      await assert.rejects(
        a.forwardHello('b', { ...hello, reported: reported as string[] }),
        /forward-hello: reported must be a list of at most 16 "ip:port" addresses/,
      );
    }
    assert.equal(await a.forwardHello('nobody', hello), false);
  });

  const introduction = { group: 'a1'.repeat(32), to: 'b2'.repeat(32), peer: 'c3'.repeat(32) };

  test('a group-introduce request reaches the node of the member to tell; one the node cannot use is dropped as malformed', async () => {
    assert.equal(await a.groupIntroduce('b', introduction), true);
    const { malformed } = b.dropped;
    const signed = (request: unknown) => signedRequest('group-introduce', request);
    await state.publish('rpc:b', signed({ ...introduction, peer: 'C3'.repeat(32) }));
    await state.publish('rpc:b', signed({ group: introduction.group, to: introduction.to }));
    await settle();
    assert.deepEqual(introductions, [['a', introduction]]);
    assert.equal(b.dropped.malformed - malformed, 2);
    await assert.rejects(
      a.groupIntroduce('b', { ...introduction, to: 'x' }),
      /group-introduce: to must be 64 lowercase hex digits/,
    );
    assert.equal(await a.groupIntroduce('nobody', introduction), false);
  });
});
