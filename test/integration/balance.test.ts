import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { parseConfig } from '../../runtime/config/config.ts';
import { bundleApp } from '../../runtime/sandbox/bundle.ts';
import { NetConnection } from '../../sdk/client.ts';
import { type ClusterMember, startClusterMember } from '../support/cluster-member.ts';
import { silentLogger, until } from '../support/node.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

/** Long enough that a burst is decided between two heartbeats (what pending seats are for). */
const HEARTBEAT_MS = 1_000;
const APP = 'lb';
const CLIENTS = 300;
/** Sessions opened at once while filling the cluster (2 cores: the clients' DH runs here too). */
const BATCH = 20;

/** Every helper, chosen by the URL's `?s=`. */
const APP_CODE = `
import { allServers, byHash, defineApp, leastLoaded, roundRobin } from 'fnhost/sdk';
export default defineApp({
  onHandshake(hs, ctx) {
    switch (hs.properties.s) {
      case 'rr': return roundRobin(ctx);
      case 'least': return leastLoaded(ctx);
      case 'all': return allServers(ctx);
      case 'hash': return byHash(ctx, hs.properties.key ?? '');
      default: return undefined;
    }
  },
  rpc: {
    node(_c, _a, ctx) { return ctx.node.id; },
  },
});
`;

describe('balancing a 3-node cluster (real nodes, real redis-server)', () => {
  let redis: TestRedis;
  let dir: string;
  const members: ClusterMember[] = [];
  const open: NetConnection[] = [];

  const clientsOf = (m: ClusterMember) => m.running.node.stats().connections;
  const url = (m: ClusterMember, query: string) => `rtmfp://${m.running.rtmfp[0]}/${APP}?${query}`;
  /** Until every node's view of the cluster says what `check` wants. */
  const converged = (check: (m: ClusterMember) => boolean, what: string) =>
    until(() => members.every(check), 10_000, what);

  /** `count` clients through `entry`, BATCH at a time; they stay connected. */
  const connectMany = async (entry: ClusterMember, query: string, count: number) => {
    for (let i = 0; i < count; i += BATCH) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(BATCH, count - i) }, () =>
          NetConnection.open(url(entry, query), { groups: [2], timeoutMs: 20_000 }),
        ),
      );
      open.push(...batch);
    }
  };
  const closeAll = async () => {
    await Promise.allSettled(open.splice(0).map((nc) => nc.close()));
    await until(() => members.every((m) => clientsOf(m) === 0), 10_000, 'every client to leave');
  };
  const loadbalancer = async (m: ClusterMember, query = '') => {
    const res = await fetch(`http://${m.http}/loadbalancer${query}`);
    return { status: res.status, body: await res.text() };
  };
  const setPaused = async (paused: boolean[]) => {
    await Promise.all(members.map((m, i) => m.running.setPaused(paused[i])));
    // Each node learns the others' records at its own next heartbeat.
    await converged(
      (m) => m.running.cluster.servers().filter((s) => s.paused).length === paused.filter(Boolean).length,
      'every node to see who is paused',
    );
  };

  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'fnhost-balance-'));
    mkdirSync(join(dir, 'functions'));
    writeFileSync(join(dir, 'functions', 'index.ts'), APP_CODE);
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
    const config = parseConfig(
      `name = "${APP}"\n[node]\nrtmfp = "127.0.0.1:0"\n[cluster]\nheartbeat_ms = ${HEARTBEAT_MS}\nsecret = "balance-test-secret-0123"\n`,
      { dir, env: {} },
    );
    for (let i = 0; i < 3; i++) members.push(await startClusterMember(config, redis.url, silentLogger));
    await converged((m) => m.running.cluster.servers().length === 3, 'every node to see all three');
    await converged((m) => m.running.apps.version(APP) === bundle.hash, 'the app on every node');
  });

  afterEach(async () => {
    await closeAll();
    if (members.some((m) => m.running.cluster.servers().some((s) => s.paused))) {
      await setPaused([false, false, false]);
    }
  });

  after(async () => {
    await Promise.allSettled(open.map((nc) => nc.abort({ tellPeer: false })));
    for (const m of members) await m.stop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test(`roundRobin() in onHandshake spreads ${CLIENTS} clients dialling one node evenly over three`, async () => {
    await connectMany(members[0], 's=rr', CLIENTS);
    const counts = members.map(clientsOf);
    for (const n of counts) assert.ok(Math.abs(n - CLIENTS / 3) <= 5, `100 ± 5 each, got ${counts}`);
    // Each client is where its session is: a call answers with the node it landed on.
    const ids = new Set(await Promise.all(open.slice(0, 6).map((nc) => nc.call('node'))));
    assert.equal(ids.size, 3);
  });

  test('a paused node gets no redirected client, and the others share them', async () => {
    await setPaused([false, false, true]);
    await connectMany(members[0], 's=rr', 30);
    assert.deepEqual(members.map(clientsOf), [15, 15, 0]);
  });

  test('leastLoaded() does not herd: a burst decided between two heartbeats spreads by pending seats', async () => {
    // Node 2 looks busy at the last heartbeat, node 1 empty; node 0 (the entry) is paused.
    await setPaused([true, false, false]);
    await connectMany(members[2], '', 10);
    await converged(
      (m) =>
        m.running.cluster.servers().find((s) => s.id === members[2].running.cluster.id)?.load.clients === 10,
      "every node to see node 2's 10 clients",
    );
    const burst = await Promise.all(
      Array.from({ length: 30 }, () =>
        NetConnection.open(url(members[0], 's=least'), { groups: [2], timeoutMs: 20_000 }),
      ),
    );
    open.push(...burst);
    const [, one, two] = members.map(clientsOf);
    // Without seats node 1 looks emptiest until its next heartbeat and takes the whole burst.
    assert.ok(two - 10 >= 5, `node 2 gets a share of the burst (got ${two - 10}, node 1 ${one})`);
    assert.equal(one + two, 40);
  });

  test('allServers() sends a client to every node; it lands on one, which accepts it', async () => {
    await connectMany(members[1], 's=all', 9);
    assert.equal(
      members.map(clientsOf).reduce((a, b) => a + b),
      9,
    );
  });

  test('byHash() sends the same key to the same node from any entry', async () => {
    const landed = new Set<unknown>();
    for (const entry of members) {
      const nc = await NetConnection.open(url(entry, 's=hash&key=alice'), { groups: [2] });
      landed.add(await nc.call('node'));
      await nc.close();
    }
    assert.equal(landed.size, 1);
  });

  test('/loadbalancer names the least-loaded node and moves when that node gets clients', async () => {
    // Seats of the earlier tests lapse first (2 × heartbeat).
    await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS + 200));
    const first = await loadbalancer(members[0]);
    assert.equal(first.status, 200);
    const m = /^redirect=(127\.0\.0\.1:\d+)\n$/.exec(first.body);
    assert.ok(m, first.body);
    const chosen = members.find((x) => x.running.rtmfp[0] === m[1]);
    assert.ok(chosen, `${m[1]} is a node's address`);
    await connectMany(chosen, '', 12);
    await converged(
      (x) => x.running.cluster.servers().find((s) => s.id === chosen.running.cluster.id)?.load.clients === 12,
      "every node to see the chosen node's clients",
    );
    for (const asked of members) {
      const r = await loadbalancer(asked, '?format=json');
      assert.equal(r.status, 200);
      const { redirect } = JSON.parse(r.body) as { redirect: string };
      assert.notEqual(redirect, chosen.running.rtmfp[0], `asked ${asked.http}`);
    }
  });

  test('/loadbalancer answers 503 with the reason when every node is paused', async () => {
    await setPaused([true, true, true]);
    const text = await loadbalancer(members[1]);
    assert.equal(text.status, 503);
    assert.equal(
      text.body,
      'no node available: cluster full: every node is paused, draining or at max_clients\n',
    );
    const json = await loadbalancer(members[1], '?format=json');
    assert.equal(json.status, 503);
    assert.match(JSON.parse(json.body).error, /^cluster full/);
    await setPaused([false, false, false]);
    assert.equal((await loadbalancer(members[1])).status, 200);
  });
});
