import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { after, afterEach, before, describe, test } from 'node:test';
import { encodeAmf0 } from '../../runtime/rtmfp/amf0.ts';
import { encodeFlowSync, FLOW_SYNC_HOLD_MS } from '../../runtime/rtmfp/flow-sync.ts';
import type { TCClientStream } from '../../runtime/rtmfp/tc-client-stream.ts';
import {
  type AmfValue,
  type FlvTag,
  type MediaMessage,
  NetConnection,
  type Player,
  StatusError,
} from '../../sdk/client.ts';
import { startAppNode, type TestAppNode } from '../support/apps.ts';
import { until } from '../support/node.ts';

const AVC_CONFIG = Buffer.from('1700000000014d401f', 'hex');
const AAC_CONFIG = Buffer.from('af001210', 'hex');
const SET_META = encodeAmf0('@setDataFrame', 'onMetaData', { width: 320, height: 240 });

/** Metadata, codec configurations, then 25 fps video with audio and a keyframe every `gop` frames. */
function synthetic(frames: number, gop = 25, from = 0): FlvTag[] {
  const tags: FlvTag[] = [];
  for (let i = from; i < from + frames; i++) {
    const t = i * 40;
    const key = i % gop === 0;
    const header = Buffer.from([key ? 0x17 : 0x27, 1, 0, 0, 0]);
    tags.push({ type: 9, timestamp: t, body: Buffer.concat([header, Buffer.alloc(key ? 3000 : 600, i)]) });
    tags.push({ type: 8, timestamp: t + 3, body: Buffer.from([0xaf, 1, i >> 8, i & 0xff]) });
  }
  return tags;
}
const HEADERS: FlvTag[] = [
  { type: 18, timestamp: 0, body: SET_META },
  { type: 9, timestamp: 0, body: AVC_CONFIG },
  { type: 8, timestamp: 0, body: AAC_CONFIG },
];

/** A message in short: type, timestamp, length and its first bytes. */
const describeMessage = (m: Pick<MediaMessage, 'type' | 'timestamp' | 'body'>) =>
  `${m.type}@${m.timestamp}/${m.body.length}:${m.body.subarray(0, 12).toString('hex')}`;

/** The node's `|RtmpSampleAccess` at the start of every play (RTMFP-NOTES §8.2). */
const isSampleAccess = (m: MediaMessage) => m.type === 'data' && m.values?.[0] === '|RtmpSampleAccess';

/** Reads `n` messages (or until the player ends). */
async function read(player: Player, n: number): Promise<MediaMessage[]> {
  const got: MediaMessage[] = [];
  for await (const m of player) {
    if (isSampleAccess(m)) continue;
    got.push(m);
    if (got.length === n) break;
  }
  return got;
}

/** Collects a player's messages as they come, without ending the play. */
function collect(player: Player): { got: MediaMessage[]; done: Promise<void> } {
  const got: MediaMessage[] = [];
  const iterator = player[Symbol.asyncIterator]();
  const done = (async () => {
    for (;;) {
      const r = await iterator.next();
      if (r.done) return;
      if (!isSampleAccess(r.value)) got.push(r.value);
    }
  })();
  return { got, done };
}

function statusCodes(player: { on(e: 'status', f: (info: AmfValue) => void): unknown }): string[] {
  const codes: string[] = [];
  player.on('status', (info) => codes.push(String((info as { code?: string }).code)));
  return codes;
}

/** An app that counts onUnpublish and keeps what onData saw, and lets clients read its KV and ctx.publications. */
const APP = `import { defineApp } from 'fnhost/sdk';

export default defineApp({
  async onUnpublish(client, stream, ctx) {
    await ctx.kv.incr('unpublished:' + stream.name);
  },
  async onData(client, stream, name, args, ctx) {
    await ctx.kv.set('data:' + stream.name, [name, ...args]);
    await ctx.kv.incr('dataCount:' + stream.name);
  },
  rpc: {
    kv: (_client, [key], ctx) => ctx.kv.get(String(key)),
    publication: (_client, [name], ctx) => ctx.publications.get(String(name)),
  },
});
`;

describe('live streams on one node', () => {
  let node: TestAppNode;
  const connections: NetConnection[] = [];
  const open = async (url = node.url()) => {
    const nc = await NetConnection.open(url);
    connections.push(nc);
    return nc;
  };

  before(async () => {
    node = await startAppNode({ files: { 'index.ts': APP } });
  });
  afterEach(async () => {
    await Promise.all(connections.splice(0).map((nc) => nc.close().catch(() => {})));
  });
  after(async () => {
    await node?.stop();
  });

  test('two players on the node receive identical payloads in order, metadata as onMetaData', async () => {
    const pub = await (await open()).publish('cam');
    const a = await (await open()).play('cam');
    const b = await (await open()).play('cam');
    // One GOP: written at once, a second keyframe would rightly expire what is left of the first.
    const tags = [...HEADERS, ...synthetic(60, 1000)];
    for (const tag of tags) pub.write(tag);
    const [gotA, gotB] = await Promise.all([read(a, tags.length), read(b, tags.length)]);
    const sent = tags.map((t) => ({
      type: ({ 8: 'audio', 9: 'video', 18: 'data' } as const)[t.type],
      timestamp: t.timestamp,
      body: t.body,
    }));
    const of = (kind: string, ms: Pick<MediaMessage, 'type' | 'timestamp' | 'body'>[]) =>
      ms.filter((m) => m.type === kind).map(describeMessage);
    assert.deepEqual(of('video', gotA), of('video', sent));
    assert.deepEqual(of('audio', gotA), of('audio', sent));
    // Each kind has a flow of its own (RTMFP-NOTES §5.1): order holds within a kind, not across.
    for (const kind of ['video', 'audio', 'data'])
      assert.deepEqual(
        gotA.filter((m) => m.type === kind).map((m) => m.body),
        gotB.filter((m) => m.type === kind).map((m) => m.body),
        `both players got the same ${kind} bytes`,
      );
    const meta = gotA.find((m) => m.type === 'data');
    assert.deepEqual(meta?.values, ['onMetaData', { width: 320, height: 240 }]);
    const stamps = gotA.filter((m) => m.type === 'video').map((m) => m.timestamp);
    assert.deepEqual(
      stamps,
      [...stamps].sort((x, y) => x - y),
      'video timestamps rise',
    );
    await pub.close();
  });

  test('a late joiner gets metadata and configs first, then video from the last keyframe', async () => {
    const pub = await (await open()).publish('late');
    const early = await (await open()).play('late');
    const tags = [...HEADERS, ...synthetic(40, 25)];
    for (const tag of tags) pub.write(tag);
    // The node has had every message once the early player has the last of each kind (a
    // keyframe may rightly expire frames of the GOP before it that were not sent yet).
    const seen = collect(early);
    const last = (kind: string, ts: number) => seen.got.some((m) => m.type === kind && m.timestamp === ts);
    await until(() => last('video', 39 * 40) && last('audio', 39 * 40 + 3), 5_000, 'the last frame');
    const late = await (await open()).play('late');
    const got = await read(late, 3 + 2 * 15);
    // Each kind has a flow of its own (RTMFP-NOTES §5.1): order holds within a kind.
    const data = got.filter((m) => m.type === 'data');
    const video = got.filter((m) => m.type === 'video');
    const audio = got.filter((m) => m.type === 'audio');
    assert.deepEqual(data[0]?.values, ['onMetaData', { width: 320, height: 240 }]);
    assert.deepEqual(audio[0]?.body, AAC_CONFIG);
    assert.deepEqual(video[0]?.body, AVC_CONFIG);
    assert.equal(video[1]?.body[0], 0x17, 'its first frame is a keyframe');
    assert.equal(video[1]?.timestamp, 25 * 40, 'the last keyframe (frame 25)');
    assert.deepEqual(
      video.slice(1).map((m) => m.timestamp),
      Array.from({ length: video.length - 1 }, (_, k) => (25 + k) * 40),
      'then every frame of its GOP, in order',
    );
    await pub.close();
  });

  test('a second publisher of a name gets Publish.BadName; the first keeps it', async () => {
    const first = await (await open()).publish('taken');
    await assert.rejects((await open()).publish('taken'), (e: unknown) => {
      assert.ok(e instanceof StatusError);
      assert.equal(e.code, 'NetStream.Publish.BadName');
      return true;
    });
    const player = await (await open()).play('taken');
    first.write({ type: 9, timestamp: 0, body: Buffer.from([0x17, 1, 0, 0, 0, 7]) });
    assert.equal((await read(player, 1))[0].body.at(-1), 7);
  });

  test('unpublish notifies players, who stay and hear PublishNotify when someone publishes again', async () => {
    const pub = await (await open()).publish('comeback');
    const player = await (await open()).play('comeback');
    const codes = statusCodes(player);
    await pub.close();
    await until(() => codes.includes('NetStream.Play.UnpublishNotify'), 5_000, 'UnpublishNotify');
    const again = await (await open()).publish('comeback');
    await until(() => codes.includes('NetStream.Play.PublishNotify'), 5_000, 'PublishNotify');
    again.write({ type: 9, timestamp: 0, body: Buffer.from([0x17, 1, 0, 0, 0, 9]) });
    assert.equal((await read(player, 1))[0].body.at(-1), 9);
    const nc = await open();
    await until(async () => (await nc.call('kv', 'unpublished:comeback')) === 1, 5_000, 'onUnpublish');
  });

  test('onData sees data messages (the metadata and a cue point), never audio or video', async () => {
    const nc = await open();
    const pub = await nc.publish('cues');
    for (const tag of [...HEADERS, ...synthetic(10)]) pub.write(tag);
    pub.data(400, 'onCuePoint', { name: 'goal' });
    await until(async () => (await nc.call('kv', 'dataCount:cues')) === 2, 5_000, 'two onData calls');
    assert.deepEqual(await nc.call('kv', 'data:cues'), ['onCuePoint', { name: 'goal' }]);
    await pub.close();
  });

  test("a publisher's data held behind a Flow Sync barrier its other flows never meet reaches players at the barrier's bound, with no more traffic", async () => {
    const { got } = collect(await (await open()).play('held'));
    const pub = await (await open()).publish('held');
    // A barrier counting two flows, written on the data flow alone (a publisher that announced a
    // flow it never wrote): the node holds what follows it until the bound, FLOW_SYNC_HOLD_MS.
    (pub as unknown as { stream: TCClientStream }).stream.writeMessage('data', encodeFlowSync(9, 2));
    pub.data(0, 'onTick', 1);
    await until(
      () => got.some((m) => m.type === 'data' && m.values?.[0] === 'onTick'),
      3 * FLOW_SYNC_HOLD_MS,
      "the held data message after the barrier's bound",
    );
    await pub.close();
  });

  test('ctx.publications.get names the origin node and counts players', async () => {
    const nc = await open();
    const pub = await nc.publish('counted');
    await (await open()).play('counted');
    await (await open()).play('counted');
    await until(
      async () => ((await nc.call('publication', 'counted')) as { subscribers?: number })?.subscribers === 2,
      5_000,
      'two players counted',
    );
    const info = (await nc.call('publication', 'counted')) as Record<string, unknown>;
    assert.equal(info.node, node.id);
    assert.equal(info.publisher, nc.peerId);
    assert.deepEqual(info.nodes, { [node.id]: 2 });
    await pub.close();
    await until(async () => (await nc.call('publication', 'counted')) === null, 5_000, 'released');
  });

  test('a player that stops acknowledging does not hold back another player, and loses old media', async () => {
    const path = await SilentPath.start(node.port);
    try {
      const pub = await (await open()).publish('slow');
      const stuck = await (await open(`rtmfp://127.0.0.1:${path.port}/app`)).play('slow');
      const fine = await (await open()).play('slow');
      const stuckSeen = collect(stuck);
      pub.write(HEADERS[1]);
      await until(() => stuckSeen.got.length > 0, 5_000, 'the stuck player to start');
      path.silence();
      // 5 s of 25 fps video: past 2 × the video lifetime for the silent player.
      const fineSeen = collect(fine);
      const frames = synthetic(125, 25);
      for (let i = 0; i < frames.length; i += 2) {
        pub.write(frames[i]);
        pub.write(frames[i + 1]);
        await new Promise((r) => setTimeout(r, 40));
      }
      await until(
        () => fineSeen.got.length >= 1 + frames.length,
        10_000,
        'the other player to get everything',
      );
      const sent = frames.map((t) => ({
        type: t.type === 9 ? ('video' as const) : ('audio' as const),
        timestamp: t.timestamp,
        body: t.body,
      }));
      const of = (kind: string, ms: Pick<MediaMessage, 'type' | 'timestamp' | 'body'>[]) =>
        ms.filter((m) => m.type === kind).map(describeMessage);
      assert.deepEqual(
        of('video', fineSeen.got),
        of('video', [{ type: 'video', timestamp: 0, body: AVC_CONFIG }, ...sent]),
      );
      assert.deepEqual(of('audio', fineSeen.got), of('audio', sent));
      const session = [...node.node.sessions.values()].find((s) => s.address.port === path.upstreamPort);
      assert.ok(session, "the silent player's session is still open on the node");
      let queued = 0;
      for (const f of session.sender.flows.values())
        for (const fragment of f.queue) queued += fragment.data.length;
      const published = frames.reduce((n, t) => n + t.body.length, 0);
      assert.ok(
        queued < published / 2,
        `the silent player's queue is bounded (${queued} of ${published} bytes)`,
      );
    } finally {
      await path.stop();
    }
  });
});

/**
 * A UDP path between a client and the node that can go silent both ways, as a player whose
 * network died: the node keeps its session (until it times out) but hears no acknowledgement.
 */
class SilentPath {
  private readonly front = dgram.createSocket('udp4');
  private readonly up = dgram.createSocket('udp4');
  private client: { port: number } | undefined;
  private silent = false;
  private readonly target: number;

  private constructor(target: number) {
    this.target = target;
  }

  static async start(target: number): Promise<SilentPath> {
    const p = new SilentPath(target);
    p.front.on('message', (msg, rinfo) => {
      p.client = { port: rinfo.port };
      if (!p.silent) p.up.send(msg, p.target, '127.0.0.1');
    });
    p.up.on('message', (msg) => {
      if (!p.silent && p.client) p.front.send(msg, p.client.port, '127.0.0.1');
    });
    p.front.bind(0, '127.0.0.1');
    p.up.bind(0, '127.0.0.1');
    await Promise.all([once(p.front, 'listening'), once(p.up, 'listening')]);
    return p;
  }

  get port(): number {
    return this.front.address().port;
  }

  /** The port the node sees the client at. */
  get upstreamPort(): number {
    return this.up.address().port;
  }

  silence(): void {
    this.silent = true;
  }

  async stop(): Promise<void> {
    await Promise.all([this.front, this.up].map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
