import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { connect, type NetConnection } from '../../sdk/client.ts';
import { startTestCluster } from '../support/test-cluster.ts';
import { formatNumber, type Row } from './report.ts';

const JOINS = 100;

const APP = `export default {
  onJoinGroup() {},
  rpc: {
    ping: () => 'pong',
    size: async (_client, [id], ctx) => (await ctx.groups.get(String(id))).size,
  },
};
`;

/**
 * NetGroup joins on a real 2-node cluster (issue 9): the time from a client's join to the
 * member ID the node introduces arriving, when that member is on the same node and when it is
 * on the other one (the same store round trip either way: the store holds every node's
 * members), against a plain rpc round trip on the same connection. Each join is to a fresh
 * group holding one member, so exactly one ID comes back.
 */
export async function groupFigures(): Promise<Row[]> {
  const cluster = await startTestCluster({ nodes: 2, app: APP });
  const clients: NetConnection[] = [];
  try {
    const url = (n: number) => `rtmfp://${cluster.nodes[n].rtmfp}/app`;
    const [resident, sameNode, otherNode] = await Promise.all([
      connect(url(0)),
      connect(url(0)),
      connect(url(1)),
    ]);
    clients.push(resident, sameNode, otherNode);
    const joinTime = async (joiner: NetConnection): Promise<number> => {
      const id = randomBytes(32).toString('hex');
      const first = resident.joinGroup(id);
      // The first member is in the store before the measured join (asked through the joiner's
      // node, so that node is as awake as the resident's: an idle process wakes up slower).
      while ((await joiner.call('size', id)) !== 1) await new Promise((r) => setTimeout(r, 1));
      const t0 = performance.now();
      const group = joiner.joinGroup(id);
      await once(group, 'member');
      const ms = performance.now() - t0;
      first.leave();
      group.leave();
      return ms;
    };
    const rpc: number[] = [];
    const same: number[] = [];
    const other: number[] = [];
    for (let i = 0; i < JOINS; i++) {
      const t0 = performance.now();
      await sameNode.call('ping');
      rpc.push(performance.now() - t0);
      other.push(await joinTime(otherNode));
      same.push(await joinTime(sameNode));
    }
    const [r, s, o] = [median(rpc), median(same), median(other)];
    return [
      {
        section: 'n',
        name: `NetGroup join → member ID received, member on the same node, median of ${JOINS}`,
        value: s,
        unit: 'ms',
        baseline: `rpc round trip: ${formatNumber(r)} ms`,
        ratio: s / r,
        note: 'onJoinGroup in the sandbox, one Redis script (join + whom to introduce)',
      },
      {
        section: 'n',
        name: `NetGroup join → member ID received, member on another node, median of ${JOINS}`,
        value: o,
        unit: 'ms',
        baseline: `same node: ${formatNumber(s)} ms`,
        ratio: o / s,
        note: 'no node-to-node hop: the store lists every node’s members',
      },
    ];
  } finally {
    await Promise.all(clients.map((c) => c.abort().catch(() => {})));
    await cluster.stop();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
