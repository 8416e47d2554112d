import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../runtime/config/config.ts';
import type { OriginPublications } from '../../runtime/host/link-acceptor.ts';
import { LivePublication } from '../../runtime/rtmfp/live-publication.ts';
import { type ClusterMember, startClusterMember } from '../support/cluster-member.ts';
import { silentLogger, until } from '../support/node.ts';
import {
  type Recorded,
  recordedPublication,
  recordingPlayer,
  streamBytes,
  syntheticStream,
} from '../support/recording-player.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

const HEARTBEAT_MS = 200;
const APP = 'app';
const STREAM = 'cam';
/** Players on the relaying node that shows the link carries one copy whatever their number. */
const PLAYERS_B = 20;
/** The link's bytes over the stream's: RTMFP framing and acks on top of one copy (bench goal ≤ 1.05). */
const MAX_LINK_OVERHEAD = 1.1;

/** The stream layer's part for the test: one LivePublication per (app, name) on the origin node. */
class Origin implements OriginPublications {
  readonly publications = new Map<string, LivePublication>();

  get(app: string, name: string): LivePublication {
    const key = `${app}/${name}`;
    let p = this.publications.get(key);
    if (!p) {
      p = new LivePublication(name);
      this.publications.set(key, p);
    }
    return p;
  }

  subscribe(
    app: string,
    name: string,
    player: Parameters<LivePublication['subscribe']>[0],
    now: number,
  ): void {
    this.get(app, name).subscribe(player, now);
  }

  unsubscribe(app: string, name: string, player: Parameters<LivePublication['unsubscribe']>[0]): void {
    this.get(app, name).unsubscribe(player);
  }
}

const mediaCount = (r: Recorded) => r.audio.length + r.video.length;
const codes = (r: Recorded, code: string) => r.statuses.filter((c) => c === `NetStream.Play.${code}`).length;

describe('relaying a live stream over node-to-node links (real redis-server, real UDP)', () => {
  let redis: TestRedis;
  let dir: string;
  const members: ClusterMember[] = [];
  let a: ClusterMember;
  let b: ClusterMember;
  let c: ClusterMember;
  const origin = new Origin();

  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'fnhost-relay-streams-'));
    const config = parseConfig(
      `name = "${APP}"\n[node]\nrtmfp = "127.0.0.1:0"\n[cluster]\nheartbeat_ms = ${HEARTBEAT_MS}\nsecret = "relay-streams-secret-0123"\n`,
      { dir, env: {} },
    );
    for (let i = 0; i < 3; i++) members.push(await startClusterMember(config, redis.url, silentLogger));
    [a, b, c] = members;
    a.running.linkAcceptor.serveFrom(origin);
    await until(
      () => members.every((m) => m.running.cluster.servers().length === 3),
      10_000,
      'every node to see the others',
    );
  });

  after(async () => {
    for (const m of members) await m.stop().catch(() => {});
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('players on two other nodes receive what players on the origin receive, in order, over one link each', async () => {
    const published = origin.get(APP, STREAM);
    const local = recordingPlayer(STREAM);
    published.subscribe(local.player, performance.now());
    published.start();
    const onB = recordedPublication(STREAM, PLAYERS_B, performance.now());
    const onC = recordedPublication(STREAM, 1, performance.now());
    b.running.relays.start(APP, STREAM, a.running.cluster.id, onB.publication);
    // The stream layer asks once per player: still one relay, one play on the origin.
    b.running.relays.start(APP, STREAM, a.running.cluster.id, onB.publication);
    c.running.relays.start(APP, STREAM, a.running.cluster.id, onC.publication);
    await until(
      () => onB.publication.publishing && onC.publication.publishing,
      10_000,
      'the relays to hear PublishNotify',
    ).catch((e: Error) => {
      const seen = {
        b: b.running.relays.stats(),
        linksB: b.running.links.stats(),
        linksC: c.running.links.stats(),
        a: a.running.linkAcceptor.stats(),
      };
      throw new Error(`${e.message}: ${JSON.stringify(seen)}`);
    });
    assert.equal(b.running.relays.stats().relays, 1);
    assert.equal(a.running.linkAcceptor.stats().relayed, 2, 'one relay per (stream, node)');
    assert.equal(a.running.linkAcceptor.stats().open, 2);

    const linkB = b.running.links.get(a.running.cluster.id);
    const linkC = c.running.links.get(a.running.cluster.id);
    assert.ok(linkB && linkC);
    const before = { b: linkB.bytesReceived, c: linkC.bytesReceived };
    const stream = syntheticStream(8);
    for (const m of stream) published.ingest(m, performance.now());
    const expected = mediaCount(local.got);
    const everyone = [...onB.players, ...onC.players];
    await until(
      () => everyone.every((p) => mediaCount(p.got) === expected),
      20_000,
      `${everyone.length} players to get ${expected} messages`,
    );
    for (const p of everyone) {
      assert.deepEqual(p.got.video, local.got.video);
      assert.deepEqual(p.got.audio, local.got.audio);
      assert.deepEqual(p.got.data, local.got.data);
    }
    assert.deepEqual(onB.players[0].got.statuses, [
      'NetStream.Play.Reset',
      'NetStream.Play.Start',
      'NetStream.Play.PublishNotify',
    ]);

    const bytes = streamBytes(stream);
    const ratioB = (linkB.bytesReceived - before.b) / bytes;
    const ratioC = (linkC.bytesReceived - before.c) / bytes;
    assert.ok(
      ratioB >= 1 && ratioB < MAX_LINK_OVERHEAD,
      `link to B carried ${ratioB.toFixed(3)}× the stream`,
    );
    assert.ok(
      ratioC >= 1 && ratioC < MAX_LINK_OVERHEAD,
      `link to C carried ${ratioC.toFixed(3)}× the stream`,
    );
    assert.ok(
      Math.abs(ratioB - ratioC) < 0.02,
      `${PLAYERS_B} players on B cost the link what 1 on C does (${ratioB.toFixed(3)} vs ${ratioC.toFixed(3)})`,
    );
  });

  test('an unpublish on the origin notifies the players on every node, and a republish reaches them again', async () => {
    const published = origin.get(APP, STREAM);
    const onB = recordedPublication(STREAM, 3, performance.now());
    const onC = recordedPublication(STREAM, 1, performance.now());
    b.running.relays.start(APP, STREAM, a.running.cluster.id, onB.publication);
    c.running.relays.start(APP, STREAM, a.running.cluster.id, onC.publication);
    const everyone = [...onB.players, ...onC.players];
    await until(
      () => onB.publication.publishing && onC.publication.publishing,
      10_000,
      'the relays to hear PublishNotify',
    );
    published.stop();
    await until(
      () => everyone.every((p) => codes(p.got, 'UnpublishNotify') === 1),
      10_000,
      'UnpublishNotify on every node',
    );
    published.start();
    await until(
      () => everyone.every((p) => codes(p.got, 'PublishNotify') === 2),
      10_000,
      'PublishNotify again on every node',
    );
  });

  test("the relay stops when its node's last player leaves; the origin drops it, other nodes' relays go on", async () => {
    b.running.relays.stop(APP, STREAM);
    assert.equal(b.running.relays.stats().relays, 0);
    await until(() => a.running.linkAcceptor.stats().relayed === 1, 5_000, 'the origin to drop the relay');
    // C still relays: its link and play are untouched.
    assert.equal(c.running.relays.stats().relays, 1);
    assert.equal(b.running.links.get(a.running.cluster.id)?.state, 'up', 'the link lingers while idle');
  });

  test("when the origin node stops, the relayed stream's players on other nodes get UnpublishNotify", async () => {
    const onC = recordedPublication(STREAM, 2, performance.now());
    c.running.relays.start(APP, STREAM, a.running.cluster.id, onC.publication);
    await until(() => onC.publication.publishing, 10_000, 'the relay to hear PublishNotify');
    await a.stop();
    members.splice(members.indexOf(a), 1);
    await until(
      () => onC.players.every((p) => codes(p.got, 'UnpublishNotify') === 1),
      10_000,
      'UnpublishNotify after the origin stopped',
    );
    assert.equal(c.running.relays.stats().relays, 0, 'the relay ended with its link');
    assert.equal(onC.publication.publishing, false);
  });
});
