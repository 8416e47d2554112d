import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { encodeData } from '../../runtime/rtmfp/tc-message.ts';
import { connect, type NetConnection } from '../../sdk/client.ts';
import type { Player } from '../../sdk/player.ts';
import type { ClusterMember } from '../support/cluster-member.ts';
import { silentLogger, until } from '../support/node.ts';
import { endProcess, type NodeProcess, startNodeProcess } from '../support/processes.ts';
import {
  publishStream,
  type Recorded,
  streamBytes,
  syntheticStream,
  watch,
} from '../support/recording-player.ts';
import { type RelayCluster, startRelayCluster } from '../support/relay-cluster.ts';

const STREAM = 'cam';
/** Players on one relaying node: the link must carry one copy whatever their number. */
const PLAYERS_B = 20;
/** Link bytes over what the publisher's session brought the origin: one copy, same framing. */
const MAX_LINK_RATIO = 1.1;
const APP = `import { defineApp } from 'fnhost/sdk';
export default defineApp({});
`;

/** A TC message's type and timestamp, before the body a player gets. */
const TC_HEADER_BYTES = 5;
/** The synthetic stream's frame interval: 25 fps. */
const FRAME_MS = 40;

const mediaCount = (r: Recorded) => r.audio.length + r.video.length;
const codes = (r: Recorded, code: string) => r.statuses.filter((c) => c === `NetStream.Play.${code}`).length;

describe('relaying a live stream across nodes (real redis-server, real UDP, sdk clients)', () => {
  let cluster: RelayCluster;
  let a: ClusterMember;
  let b: ClusterMember;
  let c: ClusterMember;
  let state: RedisState;
  const clients: NetConnection[] = [];

  const client = async (m: ClusterMember) => {
    const nc = await connect(cluster.url(m));
    clients.push(nc);
    return nc;
  };
  /**
   * `count` players of STREAM on node `m`, each on its own connection, and what they get from
   * then on (a PublishNotify right behind Play.Start is missed: play before publishing).
   */
  const players = async (m: ClusterMember, count: number) => {
    const out: { player: Player; got: Recorded }[] = [];
    for (let i = 0; i < count; i++) {
      const player = await (await client(m)).play(STREAM);
      out.push({ player, got: watch(player) });
    }
    return out;
  };

  before(async () => {
    cluster = await startRelayCluster({ nodes: 3, app: APP });
    [a, b, c] = cluster.members;
    state = await RedisState.connect(cluster.redis.url, { cluster: 'default', logger: silentLogger });
  });

  after(async () => {
    await Promise.all(clients.map((nc) => nc.abort({ tellPeer: false }).catch(() => {})));
    await state?.close();
    await cluster?.stop();
  });

  test('players on two other nodes receive what players on the origin receive, in order, one copy per node', async () => {
    // Players first: each hears the publisher come (PublishNotify), wherever it publishes.
    const onA = await players(a, 1);
    const onB = await players(b, PLAYERS_B);
    const onC = await players(c, 1);
    const everyone = [...onA, ...onB, ...onC];
    const publisherConn = await client(a);
    const publisher = await publisherConn.publish(STREAM);
    await until(
      () => everyone.every((p) => codes(p.got, 'PublishNotify') === 1),
      10_000,
      'PublishNotify on every node',
    );
    assert.equal(b.running.relays.stats().relays, 1, `one relay on B for ${PLAYERS_B} players`);
    assert.equal(a.running.linkAcceptor.stats().relayed, 2, 'one relay per (stream, node) at the origin');
    assert.equal(a.running.linkAcceptor.stats().open, 2);
    const metricsA = await a.running.metrics.text();
    assert.match(metricsA, /^fnhost_relayed_streams_out 2$/m);
    assert.match(metricsA, /^fnhost_relay_links_in 2$/m);
    assert.match(metricsA, /^fnhost_players 1$/m, 'relays are not players of the origin');
    const metricsB = await b.running.metrics.text();
    assert.match(metricsB, /^fnhost_relay_links_out 1$/m);
    assert.match(metricsB, /^fnhost_relayed_streams_in 1$/m);
    assert.match(metricsB, new RegExp(`^fnhost_players ${PLAYERS_B}$`, 'm'));
    const counted = {
      [a.running.cluster.id]: 1,
      [b.running.cluster.id]: PLAYERS_B,
      [c.running.cluster.id]: 1,
    };
    // Player counts reach the store coalesced (a quarter second): read until they are all there.
    let registered = await state.publications.get('app', STREAM);
    for (let i = 0; i < 50 && Object.keys(registered?.nodes ?? {}).length < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      registered = await state.publications.get('app', STREAM);
    }
    assert.deepEqual(registered?.nodes, counted, 'relays are not counted as players');
    assert.equal(registered?.node, a.running.cluster.id);

    const linkB = b.running.links.get(a.running.cluster.id);
    const linkC = c.running.links.get(a.running.cluster.id);
    const publisherAtA = a.running.node
      .openConnections()
      .find((conn) => conn.peerId === publisherConn.peerId);
    assert.ok(linkB && linkC && publisherAtA);
    const before = {
      b: linkB.bytesReceived,
      c: linkC.bytesReceived,
      pub: publisherAtA.session.bytesReceived,
    };
    // Real time (25 fps): media has lifetimes, so a burst on a busy machine could expire frames.
    const stream = syntheticStream(3);
    await publishStream(publisher, stream, FRAME_MS);
    const expected = stream.length - 1;
    await until(
      () => everyone.every((p) => mediaCount(p.got) === expected),
      30_000,
      `${everyone.length} players to get ${expected} audio and video messages`,
    ).catch((e: Error) => {
      const counts = everyone.map((p) => mediaCount(p.got));
      throw new Error(`${e.message}; they got ${counts.join(' ')}`);
    });
    const reference = onA[0].got;
    for (const p of [...onB, ...onC]) {
      assert.deepEqual(p.got.video, reference.video);
      assert.deepEqual(p.got.audio, reference.audio);
      assert.deepEqual(p.got.data, reference.data);
    }
    assert.equal(reference.data.length, 2, '|RtmpSampleAccess and onMetaData');

    const published = publisherAtA.session.bytesReceived - before.pub;
    const ratioB = (linkB.bytesReceived - before.b) / published;
    const ratioC = (linkC.bytesReceived - before.c) / published;
    const what = `(payload ${streamBytes(stream)} B, publisher's session ${published} B)`;
    assert.ok(ratioB < MAX_LINK_RATIO, `the link to B carried ${ratioB.toFixed(3)}× the stream ${what}`);
    assert.ok(
      Math.abs(ratioB - ratioC) < 0.03,
      `${PLAYERS_B} players on B cost the link what 1 on C does: ${ratioB.toFixed(3)}× vs ${ratioC.toFixed(3)}× ${what}`,
    );

    await publisher.close();
    await until(
      () => everyone.every((p) => codes(p.got, 'UnpublishNotify') === 1),
      10_000,
      'UnpublishNotify on every node',
    );
    await Promise.all(everyone.map((p) => p.player.close()));
  });

  test('a publisher that unpublishes right after its last frames: players on the origin and on a relaying node get every frame', async () => {
    const onA = await players(a, 1);
    const onB = await players(b, 2);
    const everyone = [...onA, ...onB];
    const publisher = await (await client(a)).publish(STREAM);
    await until(
      () => everyone.every((p) => codes(p.got, 'PublishNotify') === 1),
      10_000,
      'PublishNotify on every node',
    );
    // All at once then closeStream and deleteStream, as librtmfp's TestClient does with an FLV:
    // those commands and the origin's UnpublishNotify ride other flows than the last frames.
    const stream = syntheticStream(1);
    await publishStream(publisher, stream, 0);
    await publisher.close();
    await until(
      () => everyone.every((p) => codes(p.got, 'UnpublishNotify') === 1),
      10_000,
      'UnpublishNotify on every node',
    );
    const expected = stream.length - 1;
    await until(
      () => everyone.every((p) => mediaCount(p.got) === expected),
      10_000,
      `${everyone.length} players to get all ${expected} audio and video messages`,
    ).catch((e: Error) => {
      const counts = everyone.map((p) => mediaCount(p.got));
      const { dropped } = b.running.relays.stats();
      throw new Error(
        `${e.message}; they got ${counts.join(' ')}; the relay on B dropped ${JSON.stringify(dropped)}`,
      );
    });
    for (const p of onB) {
      assert.deepEqual(p.got.video, onA[0].got.video);
      assert.deepEqual(p.got.audio, onA[0].got.audio);
    }
    await Promise.all(everyone.map((p) => p.player.close()));
  });

  test('a late player on the relaying node starts with the metadata and codec configurations', async () => {
    const first = await players(b, 1);
    const publisher = await (await client(a)).publish(STREAM);
    await until(() => codes(first[0].got, 'PublishNotify') === 1, 10_000, 'the first player');
    const stream = syntheticStream(1);
    await publishStream(publisher, stream, 0);
    await until(() => mediaCount(first[0].got) === stream.length - 1, 10_000, 'the first player’s media');
    const [late] = await players(b, 1);
    // Configurations, then the GOP from its keyframe: what the relaying node kept for late joiners.
    await until(() => mediaCount(late.got) === stream.length - 1, 10_000, 'the late player’s media');
    assert.deepEqual(late.got.data, first[0].got.data, 'the metadata too');
    assert.deepEqual(late.got.video, first[0].got.video);
    await publisher.close();
    await Promise.all([...first, late].map((p) => p.player.close()));
  });

  test('a late player on the relaying node gets the data keyframes a late player on the origin gets', async () => {
    const [first] = await players(b, 1);
    const publisher = await (await client(a)).publish(STREAM);
    await until(() => codes(first.got, 'PublishNotify') === 1, 10_000, 'the relay to start');
    publisher.data(0, '@setDataFrame', 'onMetaData', { width: 640 });
    publisher.data(0, '@setDataFrame', 'onTextData', { text: 'caption' });
    publisher.data(0, '@setDataFrame', 'onCuePoint', { name: 'intro' });
    publisher.data(0, '@clearDataFrame', 'onCuePoint');
    // Ordinary data, after the keyframes on the same flow: once it is here, they are too.
    const marker = (n: number) => encodeData(['onTick', n]).subarray(TC_HEADER_BYTES).toString('hex');
    publisher.data(0, 'onTick', 1);
    await until(() => first.got.data.includes(marker(1)), 10_000, 'the data on the relaying node');
    const [lateA] = await players(a, 1);
    const [lateB] = await players(b, 1);
    publisher.data(0, 'onTick', 2);
    await until(
      () => [lateA, lateB].every((p) => p.got.data.includes(marker(2))),
      10_000,
      'the late players to get the next data',
    );
    const textData = encodeData(['onTextData', { text: 'caption' }])
      .subarray(TC_HEADER_BYTES)
      .toString('hex');
    assert.ok(lateA.got.data.includes(textData), 'the origin keeps every data keyframe');
    assert.deepEqual(
      lateB.got.data,
      lateA.got.data,
      'the relaying node keeps the same ones, cleared ones gone',
    );
    await publisher.close();
    await Promise.all([first, lateA, lateB].map((p) => p.player.close()));
  });

  test("the relay stops when its node's last player leaves; other nodes' relays go on", async () => {
    const publisher = await (await client(a)).publish(STREAM);
    const onB = await players(b, 2);
    const onC = await players(c, 1);
    await until(() => a.running.linkAcceptor.stats().relayed === 2, 10_000, 'both relays');
    await onB[0].player.close();
    assert.equal(b.running.relays.stats().relays, 1, 'one player left on B: the relay stays');
    await onB[1].player.close();
    await until(() => b.running.relays.stats().relays === 0, 5_000, 'the relay on B to stop');
    await until(() => a.running.linkAcceptor.stats().relayed === 1, 5_000, 'the origin to drop it');
    assert.equal(c.running.relays.stats().relays, 1);
    await publisher.close();
    await onC[0].player.close();
  });

  test('a player waiting on a name gets the stream once it is published on another node', async () => {
    const [waiting] = await players(c, 1);
    assert.equal(codes(waiting.got, 'PublishNotify'), 0);
    const publisher = await (await client(b)).publish(STREAM);
    await until(() => codes(waiting.got, 'PublishNotify') === 1, 10_000, 'the publish on B to reach C');
    await publishStream(publisher, syntheticStream(1), 0);
    await until(() => mediaCount(waiting.got) > 0, 10_000, 'media from B on C');
    await publisher.close();
    await waiting.player.close();
  });
});

describe('relaying when a node dies (node process, SIGKILL)', () => {
  let cluster: RelayCluster;
  let origin: NodeProcess | undefined;
  const clients: NetConnection[] = [];

  before(async () => {
    cluster = await startRelayCluster({ nodes: 1, app: APP });
  });

  after(async () => {
    await Promise.all(clients.map((nc) => nc.abort({ tellPeer: false }).catch(() => {})));
    if (origin) await endProcess(origin.child, 'SIGKILL');
    await cluster?.stop();
  });

  test("the relayed stream's players on other nodes get UnpublishNotify", async () => {
    origin = await startNodeProcess(cluster.dir, ['--redis', cluster.redis.url]);
    const [b] = cluster.members;
    const id = origin.id;
    await until(
      () => b.running.cluster.servers().some((s) => s.id === id),
      10_000,
      'node B to see the origin',
    );
    const pubConn = await connect(`rtmfp://${origin.rtmfp}/app`);
    clients.push(pubConn);
    const publisher = await pubConn.publish(STREAM);
    const nc = await connect(cluster.url(b));
    clients.push(nc);
    const player = await nc.play(STREAM);
    const got = watch(player);
    await until(() => codes(got, 'PublishNotify') === 1, 10_000, 'the relay to start');
    await publishStream(publisher, syntheticStream(1), 0);
    await until(() => mediaCount(got) > 0, 10_000, 'media over the relay');
    await endProcess(origin.child, 'SIGKILL');
    await until(() => codes(got, 'UnpublishNotify') === 1, 10_000, 'UnpublishNotify after the origin died');
    assert.equal(b.running.relays.stats().relays, 0);
    assert.equal(b.running.links.stats().open, 0);
  });

  test('a link from a relaying node that dies closes, with its relays, once its record is reaped, not at the session timeout', async () => {
    const [a] = cluster.members;
    // Not STREAM: the test before leaves a player of it waiting here.
    const name = 'cam-2';
    const pubConn = await connect(cluster.url(a));
    clients.push(pubConn);
    const publisher = await pubConn.publish(name);
    let relaying: NodeProcess | undefined = await startNodeProcess(cluster.dir, [
      '--redis',
      cluster.redis.url,
    ]);
    try {
      const id = relaying.id;
      await until(
        () => a.running.cluster.servers().some((s) => s.id === id),
        10_000,
        'the origin to see the relaying node',
      );
      const nc = await connect(`rtmfp://${relaying.rtmfp}/app`);
      clients.push(nc);
      const got = watch(await nc.play(name));
      await until(() => codes(got, 'PublishNotify') === 1, 10_000, 'the relay to start');
      assert.deepEqual([a.running.linkAcceptor.stats().open, a.running.linkAcceptor.stats().relayed], [1, 1]);
      await endProcess(relaying.child, 'SIGKILL');
      relaying = undefined;
      // The session would time out after 30 s; the record expires after 3 heartbeats (0.6 s).
      await until(
        () => a.running.linkAcceptor.stats().open === 0,
        10_000,
        "the link to close once the relaying node's record is gone",
      );
      assert.equal(a.running.linkAcceptor.stats().relayed, 0, 'its relay left the publication');
      assert.ok(
        !a.running.cluster.servers().some((s) => s.id === id),
        'closed because the node left the list',
      );
      await publisher.close();
    } finally {
      if (relaying) await endProcess(relaying.child, 'SIGKILL');
    }
  });
});
