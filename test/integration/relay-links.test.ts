import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RelayLinkError } from '../../runtime/host/relay-links.ts';
import { connect, type StatusError } from '../../sdk/client.ts';
import type { ClusterMember } from '../support/cluster-member.ts';
import { until } from '../support/node.ts';
import { endProcess, type NodeProcess, startNodeProcess } from '../support/processes.ts';
import { type RelayCluster, startRelayCluster } from '../support/relay-cluster.ts';

/** Short, so the idle close is seen in a test. */
const IDLE_MS = 300;
/** Every client is refused: a link that ran the app's handlers would be too. */
const APP_CODE = `
import { defineApp, reject } from 'fnhost/sdk';
export default defineApp({
  onConnection() { throw reject('no clients here'); },
});
`;

describe('node-to-node media links (real redis-server, real UDP)', () => {
  let cluster: RelayCluster;
  let far: ClusterMember;
  let near: ClusterMember;
  let stranger: ClusterMember;

  const sees = (m: ClusterMember, id: string, state = 'serving') =>
    until(
      () => m.running.cluster.servers().some((s) => s.id === id && s.state === state),
      10_000,
      `node ${m.running.cluster.id} to see ${id} ${state}`,
    );

  before(async () => {
    cluster = await startRelayCluster({ nodes: 2, app: APP_CODE, idleMs: IDLE_MS });
    [far, near] = cluster.members;
    stranger = await cluster.add('another-cluster-secret-0123');
  });

  after(async () => {
    await cluster?.stop();
  });

  test('a link opens authenticated both ways, and the far node runs no handler for it nor counts it as a client', async () => {
    const refusedClient = await connect(cluster.url(far)).then(
      () => undefined,
      (e: StatusError) => e,
    );
    assert.match(String((refusedClient?.info as { description?: string })?.description), /no clients here/);

    const lease = near.running.links.use(far.running.cluster.id);
    await lease.link.ready;
    assert.equal(lease.link.state, 'up');
    const farRecord = near.running.cluster.servers().find((s) => s.id === far.running.cluster.id);
    assert.equal(lease.link.farEpoch, farRecord?.epoch, 'the far node signed its answer with its epoch');
    assert.equal(far.running.linkAcceptor.stats().open, 1);
    assert.equal(far.running.node.stats().connections, 0, 'not a client in the far node stats');
    assert.equal(far.running.node.openConnections().length, 0, 'not a client drain would redirect');
    const status = far.running.sources.status() as {
      connections: number;
      relay: { accepted: { open: number } };
    };
    assert.equal(status.connections, 0);
    assert.equal(status.relay.accepted.open, 1);
    await until(
      () => near.running.cluster.servers().find((s) => s.id === far.running.cluster.id)?.load.clients === 0,
      5_000,
      'a heartbeat of the far node',
    );
    assert.ok(lease.link.bytesSent > 0 && lease.link.bytesReceived > 0, 'the link session counts its bytes');
    lease.release();
    await until(() => lease.link.state === 'closed', 5_000, 'the idle link to close');
  });

  test('a node with another cluster secret is refused, and counted', async () => {
    const before = far.running.linkAcceptor.stats();
    const lease = stranger.running.links.use(far.running.cluster.id);
    const error = await lease.link.ready.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof RelayLinkError, String(error));
    assert.equal(error.reason, 'refused');
    assert.match(error.message, /another secret/);
    const after = far.running.linkAcceptor.stats();
    assert.equal(after.refused.forged ?? 0, (before.refused.forged ?? 0) + 1);
    assert.equal(after.accepted, before.accepted);
    assert.equal(after.open, 0);
    lease.release();
    assert.equal(stranger.running.links.stats().failed.refused, 1);
  });

  test('relays to one node share one link, which closes once the last one is released and idle', async () => {
    const acceptedBefore = far.running.linkAcceptor.stats().accepted;
    const openedBefore = near.running.links.stats().opened;
    const first = near.running.links.use(far.running.cluster.id);
    const second = near.running.links.use(far.running.cluster.id);
    assert.equal(first.link, second.link);
    await Promise.all([first.link.ready, second.link.ready]);
    assert.equal(near.running.links.stats().opened, openedBefore + 1);
    assert.equal(far.running.linkAcceptor.stats().accepted, acceptedBefore + 1);
    assert.equal(far.running.linkAcceptor.stats().open, 1);

    first.release();
    first.release();
    // Longer than the idle time: the link stays while the second relay uses it.
    await new Promise((r) => setTimeout(r, IDLE_MS * 3));
    assert.equal(second.link.state, 'up');
    second.release();
    await until(() => second.link.state === 'closed', 5_000, 'the idle link to close');
    assert.equal(second.link.error?.reason, 'idle');
    await until(() => far.running.linkAcceptor.stats().open === 0, 5_000, 'the far node to see it closed');
    assert.equal(near.running.links.stats().open, 0);
  });

  test('a link to a node that drains stays until the node stops', async () => {
    const draining = await cluster.add();
    const lease = near.running.links.use(draining.running.cluster.id);
    await lease.link.ready;
    await draining.running.setDraining(true);
    await sees(near, draining.running.cluster.id, 'draining');
    // Its publications are served until its deadline: the link stays, and takes more relays.
    assert.equal(lease.link.state, 'up');
    const more = near.running.links.use(draining.running.cluster.id);
    assert.equal(more.link, lease.link);
    await cluster.remove(draining);
    await until(() => lease.link.state === 'closed', 5_000, 'the link to a stopped node to close');
    assert.equal(near.running.links.stats().open, 0);
    const id = draining.running.cluster.id;
    await until(() => !near.running.cluster.servers().some((n) => n.id === id), 5_000, 'the node to leave');
    assert.throws(() => near.running.links.use(id), /not live/);
    lease.release();
    more.release();
  });

  test('a link closes when the far node dies', async () => {
    let doomed: NodeProcess | undefined;
    try {
      doomed = await startNodeProcess(cluster.dir, ['--redis', cluster.redis.url]);
      const id = doomed.id;
      await sees(near, id);
      const lease = near.running.links.use(id);
      await lease.link.ready;
      await endProcess(doomed.child, 'SIGKILL');
      await until(() => lease.link.state === 'closed', 10_000, 'the link to a dead node to close');
      assert.equal(lease.link.error?.reason, 'far-node-gone');
      assert.match(lease.link.error?.message ?? '', /is gone/);
      lease.release();
    } finally {
      if (doomed) await endProcess(doomed.child, 'SIGKILL');
    }
  });
});
