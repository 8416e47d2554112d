import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { encodeAmf0 } from '../../runtime/rtmfp/amf0.ts';
import {
  type AmfValue,
  type FlvTag,
  type MediaMessage,
  NetConnection,
  type Player,
  readFlv,
  StatusError,
  writeFlv,
} from '../../sdk/client.ts';
import { startAppNode, type TestAppNode } from '../support/apps.ts';
import { until } from '../support/node.ts';

const READ_LIMIT_MS = 10_000;
const AVC_CONFIG = Buffer.from('1700000000014d401f', 'hex');
const AAC_CONFIG = Buffer.from('af001210', 'hex');
const METADATA = { width: 320, height: 240 };

/**
 * A synthetic FLV file, through writeFlv and readFlv: metadata, codec configuration, then one
 * GOP of 25 fps video (a keyframe, then ordinary frames) with audio. One GOP, so a node that
 * abandons the previous GOP on a keyframe (RTMFP-NOTES §8.2) keeps all of it even when it is
 * written at once.
 */
function syntheticFlv(frames: number): FlvTag[] {
  const tags: FlvTag[] = [
    { type: 18, timestamp: 0, body: encodeAmf0('onMetaData', METADATA) },
    { type: 9, timestamp: 0, body: AVC_CONFIG },
    { type: 8, timestamp: 0, body: AAC_CONFIG },
  ];
  for (let i = 0; i < frames; i++) {
    const header = Buffer.from([i === 0 ? 0x17 : 0x27, 1, 0, 0, 0]);
    tags.push({
      type: 9,
      timestamp: i * 40,
      body: Buffer.concat([header, Buffer.alloc(i === 0 ? 3000 : 700, i)]),
    });
    tags.push({ type: 8, timestamp: i * 40 + 3, body: Buffer.from([0xaf, 1, i >> 8, i & 0xff]) });
  }
  return readFlv(writeFlv(tags)).tags;
}

/** The next `n` messages, or fewer if the player ends (after 10 s it is closed, so a test fails instead of hanging). */
async function read(player: Player, n: number): Promise<MediaMessage[]> {
  const got: MediaMessage[] = [];
  const stop = setTimeout(() => void player.close(), READ_LIMIT_MS);
  try {
    for await (const m of player) {
      got.push(m);
      if (got.length === n) break;
    }
  } finally {
    clearTimeout(stop);
  }
  return got;
}

/** The node's `|RtmpSampleAccess` at the start of every play (RTMFP-NOTES §8.2). */
const SAMPLE_ACCESS = ['|RtmpSampleAccess', true, true];
const isSampleAccess = (m: MediaMessage) => m.type === 'data' && m.values?.[0] === SAMPLE_ACCESS[0];

const of = (messages: MediaMessage[], type: MediaMessage['type']) =>
  messages.filter((m) => m.type === type).map((m) => [m.timestamp, m.body.toString('hex')]);
const tagsOf = (tags: FlvTag[], type: 8 | 9) =>
  tags.filter((t) => t.type === type).map((t) => [t.timestamp, t.body.toString('hex')]);
const codes = (statuses: AmfValue[]) => statuses.map((s) => (s as { code: string }).code);

/** The origin's app: refusals by name, redirects to the edge, and onUnsubscribe counted. */
const ORIGIN_APP = `import { defineApp, redirect, reject } from 'fnhost/sdk';
export default defineApp({
  onPublish(_client, pub) {
    if (pub.name === 'forbidden') throw reject('not here');
  },
  onSubscribe(_client, sub, ctx) {
    if (sub.name === 'missing') throw reject('no such stream');
    if (sub.name === 'to-address') throw redirect(ctx.env.EDGE);
    if (sub.name === 'to-url') throw redirect('rtmfp://' + ctx.env.EDGE + '/live');
  },
  async onUnsubscribe(_client, sub, ctx) {
    await ctx.kv.incr('unsubscribed:' + sub.name);
  },
  rpc: {
    kv: (_client, [key], ctx) => ctx.kv.get(String(key)),
  },
});
`;

/** The edge's app: it tells a client the arguments it connected with. */
const EDGE_APP = `import { defineApp } from 'fnhost/sdk';
export default defineApp({
  onConnection(client, args) {
    client.data.args = args;
  },
  rpc: {
    connectArgs: (client) => client.data.args,
  },
});
`;

describe('NetStream publish and play in the client, through fnhost nodes', () => {
  let origin: TestAppNode;
  let edge: TestAppNode;
  const connections: NetConnection[] = [];
  const open = async (url = origin.url(), args: AmfValue[] = []) => {
    const nc = await NetConnection.open(url, { args });
    connections.push(nc);
    return nc;
  };
  /** The origin's NetConnection of a client, by its peer ID. */
  const connectionOf = (nc: NetConnection) => {
    const conn = origin.node.openConnections().find((c) => c.peerId === nc.peerId);
    assert.ok(conn, `the origin holds ${nc.peerId}'s connection`);
    return conn;
  };

  before(async () => {
    // These tests are about streams, not handler limits: a first handler call on a busy machine
    // can take more than the tests' usual 50 ms of CPU.
    const limits = { cpuMs: 1_000 };
    edge = await startAppNode({ name: 'live', limits, files: { 'index.ts': EDGE_APP } });
    origin = await startAppNode({
      name: 'live',
      limits,
      vars: { EDGE: `127.0.0.1:${edge.port}` },
      files: { 'index.ts': ORIGIN_APP },
    });
  });
  afterEach(async () => {
    await Promise.all(connections.splice(0).map((nc) => nc.close()));
  });
  after(() => Promise.all([origin?.stop(), edge?.stop()]));

  test("a publisher's FLV tags reach a player as written, after PublishNotify; onMetaData is kept for later players", async () => {
    const player = await (await open()).play('cam');
    const statuses: AmfValue[] = [];
    player.on('status', (s) => statuses.push(s));
    const publisher = await (await open()).publish('cam');
    const tags = syntheticFlv(30);
    for (const tag of tags) publisher.write(tag);
    const got = await read(player, tags.length + 1);
    assert.deepEqual(codes(statuses), ['NetStream.Play.PublishNotify']);
    assert.deepEqual(
      got.filter((m) => m.type === 'data').map((m) => m.values),
      [SAMPLE_ACCESS, ['onMetaData', METADATA]],
    );
    // Each kind has its own flow: order holds within a kind, not across kinds.
    assert.deepEqual(of(got, 'video'), tagsOf(tags, 9));
    assert.deepEqual(of(got, 'audio'), tagsOf(tags, 8));
    assert.equal(player.dropped, 0);
    // onMetaData went as @setDataFrame (as tcpublish sends it), so the node gives it to a late joiner.
    const late = await (await open()).play('cam');
    const first = await read(late, 2);
    assert.deepEqual(
      first.map((m) => m.values),
      [SAMPLE_ACCESS, ['onMetaData', METADATA]],
    );
  });

  test('audio(), video() and data() send FLV bodies and AMF0 values', async () => {
    const publisher = await (await open()).publish('direct');
    const player = await (await open()).play('direct');
    publisher.data(0, 'onCuePoint', { name: 'goal' });
    publisher.video(0, AVC_CONFIG);
    publisher.audio(7, AAC_CONFIG);
    const got = (await read(player, 4)).filter((m) => !isSampleAccess(m));
    const byType = Object.fromEntries(got.map((m) => [m.type, m]));
    assert.deepEqual(byType.data, {
      type: 'data',
      timestamp: 0,
      body: encodeAmf0('onCuePoint', { name: 'goal' }),
      values: ['onCuePoint', { name: 'goal' }],
    });
    assert.deepEqual(byType.video, { type: 'video', timestamp: 0, body: AVC_CONFIG });
    assert.deepEqual(byType.audio, { type: 'audio', timestamp: 7, body: AAC_CONFIG });
  });

  test('a publish the app refuses rejects with Publish.BadName and its message; the connection goes on and the stream is given back', async () => {
    const nc = await open();
    await assert.rejects(nc.publish('forbidden'), (e: unknown) => {
      assert.ok(e instanceof StatusError);
      assert.equal(e.code, 'NetStream.Publish.BadName');
      assert.match(e.description, /not here/);
      return true;
    });
    assert.ok(nc.connected, 'the connection goes on');
    // closeStream, then deleteStream: the node holds no stream for it any more.
    await until(() => connectionOf(nc).streamCount === 0, 5_000, 'deleteStream');
    await nc.publish('allowed');
    assert.equal(connectionOf(nc).streamCount, 1);
  });

  test('a play the app refuses rejects with a StatusError: NetStream.Play.Failed and its message', async () => {
    const nc = await open();
    await assert.rejects(nc.play('missing'), {
      name: 'StatusError',
      code: 'NetStream.Play.Failed',
      description: 'no such stream',
    });
    assert.ok(nc.connected);
  });

  test('writes to a closed publisher throw, naming the publish', async () => {
    const publisher = await (await open()).publish('gone');
    await publisher.close();
    assert.equal(publisher.closed, true);
    assert.throws(() => publisher.video(0, AVC_CONFIG), /publish "gone" is closed/);
    assert.throws(
      () => publisher.write({ type: 8, timestamp: 0, body: AAC_CONFIG }),
      /publish "gone" is closed/,
    );
  });

  test('a slow player holds at most maxBuffered messages: the oldest frames go, metadata and codec configuration stay', async () => {
    const player = await (await open()).play('fast', { maxBuffered: 10 });
    const publisher = await (await open()).publish('fast');
    const tags = syntheticFlv(40);
    for (const tag of tags) publisher.write(tag);
    // Every tag, and the node's |RtmpSampleAccess.
    const arriving = tags.length + 1;
    await until(() => player.buffered + player.dropped === arriving, READ_LIMIT_MS, 'every message');
    assert.equal(player.buffered, 10);
    assert.equal(player.dropped, arriving - 10);
    const got = await read(player, 10);
    const isConfig = (m: MediaMessage) =>
      m.type === 'data' || m.body.equals(AVC_CONFIG) || m.body.equals(AAC_CONFIG);
    assert.deepEqual(
      got
        .filter(isConfig)
        .map((m) => m.type)
        .sort(),
      ['audio', 'data', 'data', 'video'],
    );
    // The newest frames are the ones kept (audio and video come on flows of their own, so the
    // last few of each may arrive in either order).
    const newest = Math.max(...tags.map((t) => t.timestamp));
    const kept = got.filter((m) => !isConfig(m));
    assert.ok(
      kept.every((m) => m.timestamp >= newest - 7 * 40),
      `kept ${kept.map((m) => m.timestamp)}`,
    );
  });

  test('the connection closing ends iteration, and the player is closed', async () => {
    const nc = await NetConnection.open(origin.url());
    const player = await nc.play('quiet');
    const reading = read(player, 2);
    await nc.close();
    assert.deepEqual(
      (await reading).map((m) => m.values),
      [SAMPLE_ACCESS],
    );
    assert.equal(player.closed, true);
  });

  test('every NetStream of a connection ends when it closes, however many there are, without listener warnings', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const nc = await NetConnection.open(origin.url());
      const players = await Promise.all(Array.from({ length: 20 }, (_, i) => nc.play(`many-${i}`)));
      const publisher = await nc.publish('many-out');
      await nc.close();
      assert.ok(players.every((p) => p.closed));
      assert.equal(publisher.closed, true);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(
        warnings.map((w) => w.name),
        [],
      );
    } finally {
      process.off('warning', onWarning);
    }
  });

  test('breaking out of the loop closes the play on the node', async () => {
    const publisher = await (await open()).publish('brk');
    const player = await (await open()).play('brk');
    publisher.video(0, AVC_CONFIG);
    assert.equal((await read(player, 1)).length, 1);
    assert.equal(player.closed, true);
    const nc = await open();
    await until(async () => (await nc.call('kv', 'unsubscribed:brk')) === 1, 5_000, 'onUnsubscribe');
  });

  test('without followRedirect a redirected play rejects with the Play.Failed the node sent', async () => {
    const nc = await open();
    await assert.rejects(nc.play('to-address'), (e: unknown) => {
      assert.ok(e instanceof StatusError);
      assert.equal(e.code, 'NetStream.Play.Failed');
      return true;
    });
    assert.ok(nc.connected);
  });

  for (const [name, convention] of [
    ['to-address', 'an address'],
    ['to-url', 'an rtmfp:// URL'],
  ] as const) {
    test(`a play the app redirects to ${convention} names the edge in ex.redirect and the description; followRedirect plays there with the same app and arguments`, async () => {
      const nc = await open(origin.url(), ['token']);
      const publisher = await (await open(edge.url())).publish(name);
      const refused = await nc.play(name).catch((e: unknown) => e);
      assert.ok(refused instanceof StatusError);
      assert.equal(
        refused.description,
        name === 'to-address' ? `127.0.0.1:${edge.port}` : edge.url(),
        'the Cumulus convention: the target is the description',
      );
      assert.deepEqual((refused.info as { ex: unknown }).ex, { code: 302, redirect: edge.url() });

      const player = await nc.play(name, { followRedirect: true });
      assert.notEqual(player.connection, nc);
      assert.equal(player.connection.url, edge.url());
      assert.deepEqual(await player.connection.call('connectArgs'), ['token']);
      publisher.video(0, AVC_CONFIG);
      const got = (await read(player, 2)).filter((m) => !isSampleAccess(m));
      assert.deepEqual(got, [{ type: 'video', timestamp: 0, body: AVC_CONFIG }]);
      assert.equal(player.connection.connected, false, 'the redirect connection closes with the player');
      assert.ok(nc.connected, 'the first connection is left as it was');
    });
  }
});
