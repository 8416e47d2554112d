import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../../runtime/config/config.ts';
import type { OriginPublications } from '../../runtime/host/link-acceptor.ts';
import { LivePublication } from '../../runtime/rtmfp/live-publication.ts';
import { TCMessageType } from '../../runtime/rtmfp/tc-message.ts';
import { type ClusterMember, startClusterMember } from '../support/cluster-member.ts';
import { silentLogger, until } from '../support/node.ts';
import { recordedPublication, streamBytes, syntheticStream } from '../support/recording-player.ts';
import { startRedis } from '../support/redis.ts';
import { formatNumber, type Row } from './report.ts';

const APP = 'app';
/** Seconds of stream per measurement (one GOP a second, 25 fps). */
const GOPS = 8;
/** Frames are fed this far apart: 4× real time, so the link is never idle nor flooded. */
const FRAME_INTERVAL_MS = 10;
const PLAYER_COUNTS = [1, 20] as const;

/**
 * Relay link bytes ÷ stream bytes (issue 10 benchmark): node A publishes a synthetic stream
 * (~230 kbit/s: 4 kB keyframes, 800 B frames, 200 B audio), node B relays it to 1 and then 20
 * local players; what crosses the link (both directions, RTMFP framing and acks included) is
 * set against the stream's payload bytes. One copy per (stream, node): the figure must not
 * move with the player count. Two in-process nodes on a real redis-server, real UDP.
 */
export async function relayFigures(): Promise<Row[]> {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'fnhost-bench-relay-'));
  const members: ClusterMember[] = [];
  try {
    const config = parseConfig(
      `name = "${APP}"\n[node]\nrtmfp = "127.0.0.1:0"\n[cluster]\nheartbeat_ms = 200\nsecret = "bench-relay-secret-0123"\n`,
      { dir, env: {} },
    );
    for (let i = 0; i < 2; i++) members.push(await startClusterMember(config, redis.url, silentLogger));
    const [a, b] = members;
    const publications = new Map<string, LivePublication>();
    const publication = (app: string, name: string) => {
      const key = `${app}/${name}`;
      const p = publications.get(key) ?? new LivePublication(name);
      publications.set(key, p);
      return p;
    };
    const origin: OriginPublications = {
      subscribe: (app, name, player, now) => publication(app, name).subscribe(player, now),
      unsubscribe: (app, name, player) => publication(app, name).unsubscribe(player),
    };
    a.running.linkAcceptor.serveFrom(origin);
    await until(() => b.running.cluster.servers().length === 2, 10_000, 'node B to see node A');

    const ratios: number[] = [];
    /** The origin's side alone (media; the rest is the relaying node's acks). */
    const downstream: number[] = [];
    for (const [i, players] of PLAYER_COUNTS.entries()) {
      const name = `cam${i}`;
      const source = publication(APP, name);
      source.start();
      const local = recordedPublication(name, players, performance.now());
      b.running.relays.start(APP, name, a.running.cluster.id, local.publication);
      await until(() => local.publication.publishing, 10_000, 'the relay to start');
      const link = b.running.links.get(a.running.cluster.id);
      if (!link) throw new Error('no link from B to A');
      const before = { both: link.bytesReceived + link.bytesSent, received: link.bytesReceived };
      const stream = syntheticStream(GOPS);
      // Every audio and video message; the one data message (metadata) goes on the data flow.
      const expected = stream.length - 1;
      for (const m of stream) {
        source.ingest(m, performance.now());
        if (m.type === TCMessageType.video) await new Promise((r) => setTimeout(r, FRAME_INTERVAL_MS));
      }
      await until(
        () => local.players.every((p) => p.got.audio.length + p.got.video.length >= expected),
        20_000,
        'every player to get the stream',
      );
      // The last acks are on their way: give them a moment, they are part of the link's cost.
      await new Promise((r) => setTimeout(r, 300));
      const payload = streamBytes(stream);
      ratios.push((link.bytesReceived + link.bytesSent - before.both) / payload);
      downstream.push((link.bytesReceived - before.received) / payload);
      b.running.relays.stop(APP, name);
    }
    const [one, many] = ratios;
    return [
      {
        section: 'l',
        name: `relay link bytes ÷ stream bytes, ${PLAYER_COUNTS[0]} player on the relaying node`,
        value: one,
        unit: '×',
        note: `goal 1.0–1.05; ${GOPS} s of a ~230 kbit/s stream, both directions (origin → relay alone: ${formatNumber(downstream[0])}×)`,
      },
      {
        section: 'l',
        name: `relay link bytes ÷ stream bytes, ${PLAYER_COUNTS[1]} players on the relaying node`,
        value: many,
        unit: '×',
        baseline: `${PLAYER_COUNTS[0]} player: ${formatNumber(one)}×`,
        ratio: many / one,
        note: 'one copy per (stream, node): ≈1.0 means the player count does not reach the link',
      },
    ];
  } finally {
    for (const m of members) await m.stop().catch(() => {});
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
