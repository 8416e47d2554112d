import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { parseConfig } from '../../runtime/config/config.ts';
import { RelayLinkError } from '../../runtime/host/relay-links.ts';
import { bundleApp } from '../../runtime/sandbox/bundle.ts';
import { connect, type StatusError } from '../../sdk/client.ts';
import { type ClusterMember, startClusterMember } from '../support/cluster-member.ts';
import { silentLogger, until } from '../support/node.ts';
import { endProcess, type NodeProcess, startNodeProcess } from '../support/processes.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

const HEARTBEAT_MS = 200;
const SECRET = 'relay-links-test-secret-0123';
/** Short, so the idle close is seen in a test. */
const IDLE_MS = 300;
const APP = 'app';
/** Every client is refused: a link that ran the app's handlers would be too. */
const APP_CODE = `
import { defineApp, reject } from 'fnhost/sdk';
export default defineApp({
  onConnection() { throw reject('no clients here'); },
});
`;

const config = (dir: string, secret: string) =>
  parseConfig(
    `name = "${APP}"\n[node]\nrtmfp = "127.0.0.1:0"\n[cluster]\nheartbeat_ms = ${HEARTBEAT_MS}\nsecret = "${secret}"\n`,
    { dir, env: {} },
  );

describe('node-to-node media links (real redis-server, real UDP)', () => {
  let redis: TestRedis;
  let dir: string;
  const members: ClusterMember[] = [];
  let far: ClusterMember;
  let near: ClusterMember;
  let stranger: ClusterMember;

  const member = async (secret = SECRET): Promise<ClusterMember> => {
    const m = await startClusterMember(config(dir, secret), redis.url, silentLogger, {
      relayLinkIdleMs: IDLE_MS,
    });
    members.push(m);
    return m;
  };
  const sees = (m: ClusterMember, id: string, state = 'serving') =>
    until(
      () => m.running.cluster.servers().some((s) => s.id === id && s.state === state),
      10_000,
      `node ${m.running.cluster.id} to see ${id} ${state}`,
    );

  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'fnhost-relay-'));
    mkdirSync(join(dir, 'functions'));
    writeFileSync(join(dir, 'functions', 'index.ts'), APP_CODE);
    writeFileSync(
      join(dir, 'wrangler-like.toml'),
      `name = "${APP}"\nmain = "functions/"\n[cluster]\nheartbeat_ms = ${HEARTBEAT_MS}\nsecret = "${SECRET}"\n`,
    );
    const bundle = await bundleApp(join(dir, 'functions'));
    const deployer = await RedisState.connect(redis.url, { cluster: 'default', logger: silentLogger });
    await deployer.putBundle(APP, bundle);
    await deployer.deploy(APP, {
      hash: bundle.hash,
      deployedAt: await deployer.time(),
      files: [],
      by: 'test',
    });
    await deployer.close();
    far = await member();
    near = await member();
    stranger = await member('another-cluster-secret-0123');
    for (const m of [near, stranger]) await sees(m, far.running.cluster.id);
    await until(() => far.running.apps.version(APP) === bundle.hash, 10_000, 'the app on the far node');
  });

  after(async () => {
    for (const m of members) await m.stop().catch(() => {});
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a link opens authenticated both ways, and the far node runs no handler for it nor counts it as a client', async () => {
    const refusedClient = await connect(`rtmfp://${far.running.rtmfp[0]}/${APP}`).then(
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

  test('a link closes when the far node drains', async () => {
    const draining = await member();
    await sees(near, draining.running.cluster.id);
    const lease = near.running.links.use(draining.running.cluster.id);
    await lease.link.ready;
    await draining.running.setDraining(true);
    await until(() => lease.link.state === 'closed', 5_000, 'the link to a draining node to close');
    assert.equal(lease.link.error?.reason, 'far-node-gone');
    assert.match(lease.link.error?.message ?? '', /draining/);
    assert.throws(() => near.running.links.use(draining.running.cluster.id), /draining/);
    lease.release();
  });

  test('a link closes when the far node dies', async () => {
    let doomed: NodeProcess | undefined;
    try {
      doomed = await startNodeProcess(dir, ['--redis', redis.url]);
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
