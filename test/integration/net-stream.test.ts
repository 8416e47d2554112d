import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { encodeAmf0 } from '../../runtime/rtmfp/amf0.ts';
import {
  type AmfValue,
  type FlvTag,
  type MediaMessage,
  NetConnection,
  type Player,
  StatusError,
} from '../../sdk/client.ts';
import { until } from '../support/node.ts';
import { StreamServer } from '../support/stream-server.ts';

const AVC_CONFIG = Buffer.from('1700000000014d401f', 'hex');
const AAC_CONFIG = Buffer.from('af001210', 'hex');
const META = encodeAmf0('onMetaData', { width: 320, height: 240 });

/** A short synthetic stream: metadata, codec configuration, then 25 fps video with audio, a keyframe a second. */
function synthetic(frames: number): FlvTag[] {
  const tags: FlvTag[] = [
    { type: 18, timestamp: 0, body: META },
    { type: 9, timestamp: 0, body: AVC_CONFIG },
    { type: 8, timestamp: 0, body: AAC_CONFIG },
  ];
  for (let i = 0; i < frames; i++) {
    const t = i * 40;
    const key = i % 25 === 0;
    const header = Buffer.from([key ? 0x17 : 0x27, 1, 0, 0, 0]);
    tags.push({ type: 9, timestamp: t, body: Buffer.concat([header, Buffer.alloc(key ? 3000 : 600, i)]) });
    tags.push({ type: 8, timestamp: t + 3, body: Buffer.from([0xaf, 1, i >> 8, i & 0xff]) });
  }
  return tags;
}

const READ_LIMIT_MS = 10_000;
const TYPE = { 8: 'audio', 9: 'video', 18: 'data' } as const;

/** What a player should read for a tag (a data tag's values decoded). */
function asMessage(tag: FlvTag): MediaMessage {
  const m: MediaMessage = { type: TYPE[tag.type], timestamp: tag.timestamp, body: tag.body };
  if (tag.type === 18) m.values = ['onMetaData', { width: 320, height: 240 }];
  return m;
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

function codes(statuses: AmfValue[]): string[] {
  return statuses.map((s) => (s as { code: string }).code);
}

describe('NetStream publish and play in the client', () => {
  let server: StreamServer;
  const connections: NetConnection[] = [];
  const open = async (url = server.url()) => {
    const nc = await NetConnection.open(url);
    connections.push(nc);
    return nc;
  };
  before(async () => {
    server = await StreamServer.start({
      publish: (name) =>
        name === 'forbidden'
          ? { level: 'status', code: 'NetStream.Publish.BadName', description: 'not here' }
          : undefined,
      play: (name) =>
        name === 'missing'
          ? { level: 'error', code: 'NetStream.Play.Failed', description: 'no such stream' }
          : undefined,
    });
  });
  afterEach(async () => {
    await Promise.all(connections.splice(0).map((nc) => nc.close()));
  });
  after(() => server.close());

  test("a publisher's audio, video and data reach a player as written, after PublishNotify", async () => {
    const pubNc = await open();
    const playNc = await open();
    const player = await playNc.play('cam');
    const statuses: AmfValue[] = [];
    player.on('status', (s) => statuses.push(s));
    // Written faster than real time: without `reliable` each keyframe would abandon the GOP before it.
    const publisher = await pubNc.publish('cam', { reliable: true });
    await until(() => statuses.length > 0, 5_000, 'PublishNotify');
    const tags = synthetic(60);
    for (const tag of tags) publisher.write(tag);
    const got = await read(player, tags.length);
    assert.deepEqual(codes(statuses), ['NetStream.Play.PublishNotify']);
    // onMetaData goes as @setDataFrame, as tcpublish sends it, so a server keeps it for later players.
    assert.deepEqual(server.data.at(-1), ['@setDataFrame', 'onMetaData', { width: 320, height: 240 }]);
    // Each kind has its own flow: order holds within a kind, not across kinds.
    for (const kind of ['audio', 'video', 'data'] as const) {
      assert.deepEqual(
        got.filter((m) => m.type === kind),
        tags.map(asMessage).filter((m) => m.type === kind),
        kind,
      );
    }
    assert.deepEqual(server.commands.slice(-2), [
      ['play', 'cam'],
      ['publish', 'cam', 'live'],
    ]);
    assert.equal(player.dropped, 0);
  });

  test('audio(), video() and data() send FLV bodies and AMF0 values', async () => {
    const pubNc = await open();
    const playNc = await open();
    const publisher = await pubNc.publish('direct');
    const player = await playNc.play('direct');
    publisher.data(0, 'onMetaData', { width: 320, height: 240 });
    publisher.video(0, AVC_CONFIG);
    publisher.audio(7, AAC_CONFIG);
    const got = await read(player, 3);
    const byType = Object.fromEntries(got.map((m) => [m.type, m]));
    assert.deepEqual(byType.data, asMessage({ type: 18, timestamp: 0, body: META }));
    assert.deepEqual(byType.video, { type: 'video', timestamp: 0, body: AVC_CONFIG });
    assert.deepEqual(byType.audio, { type: 'audio', timestamp: 7, body: AAC_CONFIG });
  });

  test('publish rejects with a StatusError for BadName, whether the name is refused or taken', async () => {
    const a = await open();
    const b = await open();
    await assert.rejects(a.publish('forbidden'), (e: unknown) => {
      assert.ok(e instanceof StatusError);
      assert.equal(e.code, 'NetStream.Publish.BadName');
      assert.equal(e.description, 'not here');
      return true;
    });
    await a.publish('taken');
    await assert.rejects(b.publish('taken'), { name: 'StatusError', code: 'NetStream.Publish.BadName' });
    assert.ok(b.connected, 'the connection goes on');
    // The refused stream is given back: closeStream on it, then deleteStream.
    await until(() => server.commands.at(-1)?.[0] === 'closeStream', 5_000, 'closeStream');
    assert.deepEqual(server.commands.slice(-2), [['publish', 'taken', 'live'], ['closeStream']]);
  });

  test('play rejects with a StatusError on NetStream.Play.Failed', async () => {
    const nc = await open();
    await assert.rejects(nc.play('missing'), {
      name: 'StatusError',
      code: 'NetStream.Play.Failed',
      description: 'no such stream',
    });
    assert.ok(nc.connected);
  });

  test('closing the publisher tells players UnpublishNotify; writes after close throw', async () => {
    const pubNc = await open();
    const playNc = await open();
    const publisher = await pubNc.publish('gone');
    const player = await playNc.play('gone');
    const statuses: AmfValue[] = [];
    player.on('status', (s) => statuses.push(s));
    await publisher.close();
    await until(() => statuses.length > 0, 5_000, 'UnpublishNotify');
    assert.deepEqual(codes(statuses), ['NetStream.Play.UnpublishNotify']);
    assert.throws(() => publisher.video(0, AVC_CONFIG), /publish "gone" is closed/);
    assert.equal(player.closed, false, 'a player outlives its publisher');
  });

  test('a slow player holds at most maxBuffered messages: the oldest frames go, codec configuration stays', async () => {
    const pubNc = await open();
    const playNc = await open();
    const publisher = await pubNc.publish('fast', { reliable: true });
    const player = await playNc.play('fast', { maxBuffered: 10 });
    const tags = synthetic(40);
    for (const tag of tags) publisher.write(tag);
    await until(() => player.buffered + player.dropped === tags.length, 10_000, 'every message');
    assert.equal(player.buffered, 10);
    assert.equal(player.dropped, tags.length - 10);
    const got = await read(player, 10);
    const kept = got.filter(
      (m) => !m.body.equals(AVC_CONFIG) && !m.body.equals(AAC_CONFIG) && m.type !== 'data',
    );
    assert.deepEqual(
      got
        .filter((m) => m.type === 'data' || m.body.equals(AVC_CONFIG) || m.body.equals(AAC_CONFIG))
        .map((m) => m.type)
        .sort(),
      ['audio', 'data', 'video'],
    );
    // The newest frames are the ones kept.
    const newest = Math.max(...tags.map((t) => t.timestamp));
    assert.ok(
      kept.every((m) => m.timestamp >= newest - 7 * 40),
      `kept ${kept.map((m) => m.timestamp)}`,
    );
  });

  test('the connection closing ends iteration, and the player is closed', async () => {
    const nc = await NetConnection.open(server.url());
    const player = await nc.play('quiet');
    const reading = read(player, 1);
    await nc.close();
    assert.deepEqual(await reading, []);
    assert.equal(player.closed, true);
  });

  test('every NetStream of a connection ends when it closes, however many there are', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const nc = await NetConnection.open(server.url());
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

  test('breaking out of the loop closes the play on the server', async () => {
    const pubNc = await open();
    const playNc = await open();
    const publisher = await pubNc.publish('brk');
    const player = await playNc.play('brk');
    publisher.video(0, AVC_CONFIG);
    assert.equal((await read(player, 1)).length, 1);
    assert.equal(player.closed, true);
    await until(() => server.commands.at(-1)?.[0] === 'closeStream', 5_000, 'closeStream');
  });
});

describe('play with followRedirect', () => {
  let origin: StreamServer;
  let edge: StreamServer;
  const connections: NetConnection[] = [];
  before(async () => {
    edge = await StreamServer.start();
    origin = await StreamServer.start({
      play: (name) => {
        const target = `rtmfp://127.0.0.1:${edge.port}/elsewhere`;
        if (name === 'ex')
          return {
            level: 'error',
            code: 'NetStream.Play.Failed',
            description: 'moved',
            ex: { code: 302, redirect: target },
          };
        if (name === 'cumulus')
          return { level: 'status', code: 'NetStream.Play.Failed', description: `go to ${target} please` };
        return undefined;
      },
    });
  });
  afterEach(async () => {
    await Promise.all(connections.splice(0).map((nc) => nc.close()));
  });
  after(() => Promise.all([origin.close(), edge.close()]));

  for (const name of ['ex', 'cumulus']) {
    test(`a Play.Failed naming another server (${name === 'ex' ? 'ex.redirect' : 'a URL in its description'}) plays there, on the same app`, async () => {
      const nc = await NetConnection.open(origin.url('live'), { args: ['token'] });
      connections.push(nc);
      const publisherNc = await NetConnection.open(edge.url('live'));
      connections.push(publisherNc);
      const publisher = await publisherNc.publish(name);
      const player = await nc.play(name, { followRedirect: true });
      assert.notEqual(player.connection, nc);
      assert.equal(player.connection.url, `rtmfp://127.0.0.1:${edge.port}/live`);
      publisher.video(0, AVC_CONFIG);
      assert.deepEqual(await read(player, 1), [{ type: 'video', timestamp: 0, body: AVC_CONFIG }]);
      assert.equal(player.connection.connected, false, 'the redirect connection closes with the player');
      assert.ok(nc.connected, 'the first connection is left as it was');
    });
  }

  test('without followRedirect the Play.Failed rejects as it came', async () => {
    const nc = await NetConnection.open(origin.url());
    connections.push(nc);
    await assert.rejects(
      nc.play('ex'),
      (e: unknown) => e instanceof StatusError && e.description === 'moved',
    );
  });
});
