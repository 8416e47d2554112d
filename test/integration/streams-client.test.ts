import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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

const of = (messages: MediaMessage[], type: MediaMessage['type']) =>
  messages.filter((m) => m.type === type).map((m) => [m.timestamp, m.body.toString('hex')]);
const tagsOf = (tags: FlvTag[], type: 8 | 9) =>
  tags.filter((t) => t.type === type).map((t) => [t.timestamp, t.body.toString('hex')]);
const codes = (statuses: AmfValue[]) => statuses.map((s) => (s as { code: string }).code);

describe('the client publishing and playing through a node', () => {
  let origin: TestAppNode;
  let edge: TestAppNode;
  before(async () => {
    const plain = { 'index.ts': `import { defineApp } from 'fnhost/sdk';\nexport default defineApp({});\n` };
    // These tests are about streams, not handler limits: a first handler call on a busy machine
    // can take more than the tests' usual 50 ms of CPU.
    const limits = { cpuMs: 1_000 };
    edge = await startAppNode({ files: plain, name: 'live', limits });
    origin = await startAppNode({
      name: 'live',
      limits,
      vars: { EDGE: `127.0.0.1:${edge.port}` },
      files: {
        'index.ts': `
import { defineApp, redirect } from 'fnhost/sdk';
export default defineApp({
  onSubscribe(_client, sub, ctx) {
    if (sub.name === 'moved') throw redirect(ctx.env.EDGE);
  },
});
`,
      },
    });
  });
  after(() => Promise.all([origin.stop(), edge.stop()]));

  test('synthetic FLV tags published through a node play back as written, after PublishNotify', async () => {
    const publisherNc = await NetConnection.open(origin.url());
    const playerNc = await NetConnection.open(origin.url());
    try {
      const player = await playerNc.play('cam');
      const statuses: AmfValue[] = [];
      player.on('status', (s) => statuses.push(s));
      const publisher = await publisherNc.publish('cam');
      const tags = syntheticFlv(30);
      for (const tag of tags) publisher.write(tag);
      // The node adds |RtmpSampleAccess before the stream's own messages (tcserver, Cumulus).
      const got = await read(player, tags.length + 1);
      assert.deepEqual(codes(statuses), ['NetStream.Play.PublishNotify']);
      assert.deepEqual(
        got.filter((m) => m.type === 'data').map((m) => m.values),
        [
          ['|RtmpSampleAccess', true, true],
          ['onMetaData', METADATA],
        ],
      );
      assert.deepEqual(of(got, 'video'), tagsOf(tags, 9));
      assert.deepEqual(of(got, 'audio'), tagsOf(tags, 8));
      assert.equal(player.dropped, 0);
    } finally {
      await Promise.all([publisherNc.close(), playerNc.close()]);
    }
  });

  test('a second publisher of a live name is refused with NetStream.Publish.BadName', async () => {
    const first = await NetConnection.open(origin.url());
    const second = await NetConnection.open(origin.url());
    try {
      await first.publish('taken');
      await assert.rejects(second.publish('taken'), (e: unknown) => {
        assert.ok(e instanceof StatusError);
        assert.equal(e.code, 'NetStream.Publish.BadName');
        return true;
      });
      assert.ok(second.connected);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  test('the publisher leaving tells the player UnpublishNotify; the play goes on', async () => {
    const publisherNc = await NetConnection.open(origin.url());
    const playerNc = await NetConnection.open(origin.url());
    try {
      const publisher = await publisherNc.publish('short');
      const player = await playerNc.play('short');
      const statuses: AmfValue[] = [];
      player.on('status', (s) => statuses.push(s));
      await publisher.close();
      await until(
        () => codes(statuses).includes('NetStream.Play.UnpublishNotify'),
        READ_LIMIT_MS,
        'UnpublishNotify',
      );
      assert.equal(player.closed, false);
    } finally {
      await Promise.all([publisherNc.close(), playerNc.close()]);
    }
  });

  test('a play the app redirects (onSubscribe) fails with the address, and with followRedirect plays there', async () => {
    const edgePublisherNc = await NetConnection.open(edge.url());
    const playerNc = await NetConnection.open(origin.url());
    try {
      await assert.rejects(playerNc.play('moved'), (e: unknown) => {
        assert.ok(e instanceof StatusError);
        assert.equal(e.code, 'NetStream.Play.Failed');
        return true;
      });
      const publisher = await edgePublisherNc.publish('moved');
      const player = await playerNc.play('moved', { followRedirect: true });
      assert.equal(player.connection.url, edge.url());
      publisher.write({ type: 9, timestamp: 0, body: AVC_CONFIG });
      publisher.write({ type: 9, timestamp: 0, body: Buffer.from([0x17, 1, 0, 0, 0, 9]) });
      const got = await read(player, 3);
      assert.deepEqual(of(got, 'video'), [
        [0, AVC_CONFIG.toString('hex')],
        [0, '170100000009'],
      ]);
      await player.close();
      assert.equal(player.connection.connected, false, 'the redirect connection closes with the player');
      assert.ok(playerNc.connected);
    } finally {
      await Promise.all([edgePublisherNc.close(), playerNc.close()]);
    }
  });
});
