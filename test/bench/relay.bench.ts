import { connect, type NetConnection } from '../../sdk/client.ts';
import { until } from '../support/node.ts';
import {
  publishStream,
  type Recorded,
  streamBytes,
  syntheticStream,
  watch,
} from '../support/recording-player.ts';
import { startRelayCluster } from '../support/relay-cluster.ts';
import { formatNumber, type Row } from './report.ts';

/** Seconds of stream per measurement (one GOP a second, 25 fps). */
const GOPS = 8;
/** Frames are sent this far apart: real time (25 fps); media has lifetimes, a burst could expire frames. */
const FRAME_INTERVAL_MS = 40;
const PLAYER_COUNTS = [1, 20] as const;
const APP = `import { defineApp } from 'fnhost/sdk';
export default defineApp({});
`;

/**
 * Relay link bytes ÷ stream bytes (issue 10 benchmark): an sdk client publishes a synthetic
 * stream (~230 kbit/s: 4 kB keyframes, 800 B frames, 200 B audio) on node A; 1, then 20, sdk
 * players play it on node B, which relays it over its link to A. What crosses the link (both
 * directions, framing and acks included) is set against what the publisher's session brought
 * node A (same framing: the stream's bytes on the wire), and against the payload alone. One
 * copy per (stream, node): the figure must not move with the player count. Two in-process
 * nodes on a real redis-server, real UDP.
 */
export async function relayFigures(): Promise<Row[]> {
  const cluster = await startRelayCluster({ nodes: 2, app: APP });
  const clients: NetConnection[] = [];
  const open = async (url: string) => {
    const nc = await connect(url);
    clients.push(nc);
    return nc;
  };
  try {
    const [a, b] = cluster.members;
    const ratios: { wire: number; payload: number }[] = [];
    for (const [i, count] of PLAYER_COUNTS.entries()) {
      const name = `cam${i}`;
      const players: Recorded[] = [];
      for (let p = 0; p < count; p++) {
        const player = await (await open(cluster.url(b))).play(name);
        players.push(watch(player));
      }
      const publisherConn = await open(cluster.url(a));
      const publisher = await publisherConn.publish(name);
      await until(
        () => players.every((got) => got.statuses.includes('NetStream.Play.PublishNotify')),
        10_000,
        'the relay to start',
      );
      const link = b.running.links.get(a.running.cluster.id);
      const atOrigin = a.running.node.openConnections().find((c) => c.peerId === publisherConn.peerId);
      if (!link || !atOrigin) throw new Error('no link from B to A, or no publisher on A');
      const before = { link: link.bytesReceived + link.bytesSent, published: atOrigin.session.bytesReceived };
      const stream = syntheticStream(GOPS);
      await publishStream(publisher, stream, FRAME_INTERVAL_MS);
      // Every audio and video message; the one data message (metadata) goes on the data flow.
      const expected = stream.length - 1;
      await until(
        () => players.every((got) => got.audio.length + got.video.length >= expected),
        20_000,
        'every player to get the stream',
      );
      // The last acks are on their way: they are part of the link's cost.
      await new Promise((r) => setTimeout(r, 300));
      const linkBytes = link.bytesReceived + link.bytesSent - before.link;
      ratios.push({
        wire: linkBytes / (atOrigin.session.bytesReceived - before.published),
        payload: linkBytes / streamBytes(stream),
      });
      await publisher.close();
    }
    const [one, many] = ratios;
    return [
      {
        section: 'l',
        name: `relay link bytes ÷ stream bytes, ${PLAYER_COUNTS[0]} player on the relaying node`,
        value: one.wire,
        unit: '×',
        note: `goal 1.0–1.05; stream = the publisher's session at the origin; ÷ payload alone: ${formatNumber(one.payload)}×; ${GOPS} s of ~230 kbit/s`,
      },
      {
        section: 'l',
        name: `relay link bytes ÷ stream bytes, ${PLAYER_COUNTS[1]} players on the relaying node`,
        value: many.wire,
        unit: '×',
        baseline: `${PLAYER_COUNTS[0]} player: ${formatNumber(one.wire)}×`,
        ratio: many.wire / one.wire,
        note: 'one copy per (stream, node): ≈1.0 means the player count does not reach the link',
      },
    ];
  } finally {
    await Promise.all(clients.map((nc) => nc.abort({ tellPeer: false }).catch(() => {})));
    await cluster.stop();
  }
}
