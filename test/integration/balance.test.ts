import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { parseConfig } from '../../runtime/config/config.ts';
import { bundleApp } from '../../runtime/sandbox/bundle.ts';
import { NetConnection, type StatusError } from '../../sdk/client.ts';
import { LEVEL, startAppNode } from '../support/apps.ts';
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
import { allServers, byHash, defineApp, leastLoaded, redirect, roundRobin } from 'fnhost/sdk';
export default defineApp({
  async onConnection(client, _args, ctx) {
    if (client.properties.s !== 'away') return;
    const to = await leastLoaded(ctx, { exceptSelf: true });
    if (to) throw redirect(to);
  },
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

/** Nodes on one redis-server running the app, with what the tests do to them. */
class TestCluster {
  readonly members: ClusterMember[] = [];
  /** Clients still connected (closeAll() ends them). */
  readonly open: NetConnection[] = [];
  private redis: TestRedis | undefined;
  private dir: string | undefined;

  /** `size` nodes with `configExtra` appended to their config, the app deployed on all. */
  async start(size: number, configExtra = ''): Promise<void> {
    this.redis = await startRedis();
    this.dir = mkdtempSync(join(tmpdir(), 'fnhost-balance-'));
    mkdirSync(join(this.dir, 'functions'));
    writeFileSync(join(this.dir, 'functions', 'index.ts'), APP_CODE);
    const bundle = await bundleApp(join(this.dir, 'functions'));
    const deployer = await RedisState.connect(this.redis.url, { cluster: 'default', logger: silentLogger });
    await deployer.putBundle(APP, bundle);
    await deployer.deploy(APP, {
      hash: bundle.hash,
      deployedAt: await deployer.time(),
      files: [],
      by: 'test',
    });
    await deployer.close();
    const config = parseConfig(
      `name = "${APP}"\n[node]\nrtmfp = "127.0.0.1:0"\n[cluster]\nheartbeat_ms = ${HEARTBEAT_MS}\nsecret = "balance-test-secret-0123"\n${configExtra}`,
      { dir: this.dir, env: {} },
    );
    for (let i = 0; i < size; i++)
      this.members.push(await startClusterMember(config, this.redis.url, silentLogger));
    await this.converged(
      (m) => m.running.cluster.servers().length === size,
      'every node to see all the others',
    );
    await this.converged((m) => m.running.apps.version(APP) === bundle.hash, 'the app on every node');
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.open.map((nc) => nc.abort({ tellPeer: false })));
    for (const m of this.members) await m.stop();
    await this.redis?.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  clients(): number[] {
    return this.members.map((m) => m.running.node.stats().connections);
  }

  url(m: ClusterMember, query: string): string {
    return `rtmfp://${m.running.rtmfp[0]}/${APP}?${query}`;
  }

  /** Until every node's view of the cluster says what `check` wants. */
  converged(check: (m: ClusterMember) => boolean, what: string): Promise<void> {
    return until(() => this.members.every(check), 10_000, what);
  }

  /** Until every node's record of `m` shows `clients` clients. */
  seenWith(m: ClusterMember, clients: number): Promise<void> {
    return this.converged(
      (x) => x.running.cluster.servers().find((s) => s.id === m.running.cluster.id)?.load.clients === clients,
      `every node to see ${clients} clients on ${m.running.cluster.id}`,
    );
  }

  /** `count` clients through `entry`, BATCH at a time; they stay connected. */
  async connectMany(entry: ClusterMember, query: string, count: number): Promise<void> {
    for (let i = 0; i < count; i += BATCH) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(BATCH, count - i) }, () =>
          NetConnection.open(this.url(entry, query), { groups: [2], timeoutMs: 20_000 }),
        ),
      );
      this.open.push(...batch);
    }
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled(this.open.splice(0).map((nc) => nc.close()));
    await until(() => this.clients().every((n) => n === 0), 10_000, 'every client to leave');
  }

  async loadbalancer(m: ClusterMember, query = ''): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://${m.http}/loadbalancer${query}`);
    return { status: res.status, body: await res.text() };
  }

  /** Pauses the nodes marked true, resumes the others, until every node sees it. */
  async setPaused(paused: boolean[]): Promise<void> {
    await Promise.all(this.members.map((m, i) => m.running.setPaused(paused[i])));
    // Each node learns the others' records at its own next heartbeat.
    await this.converged(
      (m) => m.running.cluster.servers().filter((s) => s.paused).length === paused.filter(Boolean).length,
      'every node to see who is paused',
    );
  }
}

describe('balancing helpers and /loadbalancer on a 3-node cluster (real nodes, real redis-server)', () => {
  const cluster = new TestCluster();
  const members = cluster.members;
  const open = cluster.open;

  before(() => cluster.start(3));
  after(() => cluster.stop());
  afterEach(async () => {
    await cluster.closeAll();
    if (members.some((m) => m.running.cluster.servers().some((s) => s.paused)))
      await cluster.setPaused([false, false, false]);
  });

  test(`roundRobin() in onHandshake spreads ${CLIENTS} clients dialling one node evenly over three`, async () => {
    await cluster.connectMany(members[0], 's=rr', CLIENTS);
    const counts = cluster.clients();
    for (const n of counts) assert.ok(Math.abs(n - CLIENTS / 3) <= 5, `100 ± 5 each, got ${counts}`);
    // Each client is where its session is: a call answers with the node it landed on.
    const ids = new Set(await Promise.all(open.slice(0, 6).map((nc) => nc.call('node'))));
    assert.equal(ids.size, 3);
  });

  test('a paused node gets no redirected client, and the others share them', async () => {
    await cluster.setPaused([false, false, true]);
    await cluster.connectMany(members[0], 's=rr', 30);
    assert.deepEqual(cluster.clients(), [15, 15, 0]);
  });

  test('leastLoaded() does not herd: a burst decided between two heartbeats spreads by pending seats', async () => {
    // Node 2 looks busy at the last heartbeat, node 1 empty; node 0 (the entry) is paused.
    await cluster.setPaused([true, false, false]);
    await cluster.connectMany(members[2], '', 10);
    await cluster.seenWith(members[2], 10);
    const burst = await Promise.all(
      Array.from({ length: 30 }, () =>
        NetConnection.open(cluster.url(members[0], 's=least'), { groups: [2], timeoutMs: 20_000 }),
      ),
    );
    open.push(...burst);
    const [, one, two] = cluster.clients();
    // Without seats node 1 looks emptiest until its next heartbeat and takes the whole burst.
    assert.ok(two - 10 >= 5, `node 2 gets a share of the burst (got ${two - 10}, node 1 ${one})`);
    assert.equal(one + two, 40);
  });

  test('allServers() sends a client to every node; it lands on one, which accepts it', async () => {
    await cluster.connectMany(members[1], 's=all', 9);
    assert.equal(
      cluster.clients().reduce((a, b) => a + b),
      9,
    );
  });

  test('leastLoaded({ exceptSelf: true }) in onConnection refuses the client with another node in info.ex.redirect', async () => {
    const entry = members[0];
    const refused = await NetConnection.open(cluster.url(entry, 's=away'), { groups: [2] }).then(
      () => assert.fail('the connect was accepted'),
      (e: StatusError) => e,
    );
    assert.equal(refused.code, 'NetConnection.Connect.Rejected');
    const ex = (refused.info as { ex?: { code?: number; redirect?: string } }).ex;
    assert.equal(ex?.code, 302);
    const others = members.filter((m) => m !== entry).map((m) => cluster.url(m, 's=away'));
    assert.ok(others.includes(ex?.redirect ?? ''), `${ex?.redirect} is another node's URL`);
  });

  test('byHash() sends the same key to the same node from any entry', async () => {
    const landed = new Set<unknown>();
    for (const entry of members) {
      const nc = await NetConnection.open(cluster.url(entry, 's=hash&key=alice'), { groups: [2] });
      landed.add(await nc.call('node'));
      await nc.close();
    }
    assert.equal(landed.size, 1);
  });

  test('/loadbalancer names the least-loaded node and moves when that node gets clients', async () => {
    // Seats of the earlier tests lapse first (2 × heartbeat).
    await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS + 200));
    const first = await cluster.loadbalancer(members[0]);
    assert.equal(first.status, 200);
    const m = /^redirect=(127\.0\.0\.1:\d+)\n$/.exec(first.body);
    assert.ok(m, first.body);
    const chosen = members.find((x) => x.running.rtmfp[0] === m[1]);
    assert.ok(chosen, `${m[1]} is a node's address`);
    await cluster.connectMany(chosen, '', 12);
    await cluster.seenWith(chosen, 12);
    for (const asked of members) {
      const r = await cluster.loadbalancer(asked, '?format=json');
      assert.equal(r.status, 200);
      const { redirect } = JSON.parse(r.body) as { redirect: string };
      assert.notEqual(redirect, chosen.running.rtmfp[0], `asked ${asked.http}`);
    }
  });

  test('/loadbalancer answers 503 with the reason when every node is paused', async () => {
    await cluster.setPaused([true, true, true]);
    const text = await cluster.loadbalancer(members[1]);
    assert.equal(text.status, 503);
    assert.equal(
      text.body,
      'no node available: cluster full: every node is paused, draining or at max_clients\n',
    );
    const json = await cluster.loadbalancer(members[1], '?format=json');
    assert.equal(json.status, 503);
    assert.match(JSON.parse(json.body).error, /^cluster full/);
    await cluster.setPaused([false, false, false]);
    assert.equal((await cluster.loadbalancer(members[1])).status, 200);
  });
});

describe('[balance] with no handler code, on a 2-node cluster', () => {
  const cluster = new TestCluster();

  before(() => cluster.start(2, '[balance]\nstrategy = "round-robin"\nmax_clients = 3\n'));
  after(() => cluster.stop());
  afterEach(async () => {
    await cluster.closeAll();
    // Until the nodes' records say they are empty again: max_clients is about those figures.
    for (const m of cluster.members) await cluster.seenWith(m, 0);
  });

  test('round-robin fills both nodes up to max_clients, then leaves handshakes unanswered ("cluster full")', async () => {
    const first = cluster.members[0];
    await cluster.connectMany(first, '', 4);
    assert.deepEqual(cluster.clients(), [2, 2]);
    for (const m of cluster.members) await cluster.seenWith(m, 2);
    await cluster.connectMany(first, '', 2);
    assert.deepEqual(cluster.clients(), [3, 3]);
    for (const m of cluster.members) await cluster.seenWith(m, 3);
    const dropsBefore = first.running.node.stats().drops['handshake-unanswered'] ?? 0;
    await assert.rejects(
      NetConnection.open(cluster.url(first, ''), { groups: [2], timeoutMs: 1_500 }),
      /connect timed out/,
    );
    assert.ok((first.running.node.stats().drops['handshake-unanswered'] ?? 0) > dropsBefore);
    assert.deepEqual(cluster.clients(), [3, 3]);
  });

  test("the app's own onHandshake result wins over the strategy", async () => {
    const landed = new Set<unknown>();
    for (let i = 0; i < 2; i++) {
      const nc = await NetConnection.open(cluster.url(cluster.members[0], 's=hash&key=bob'), { groups: [2] });
      cluster.open.push(nc);
      landed.add(await nc.call('node'));
    }
    assert.equal(landed.size, 1, 'both by the hash, not in turn');
  });
});

describe('balancing helpers on a standalone node (no cluster)', () => {
  const APP_FILES = {
    'index.ts': `
import { defineApp, leastLoaded, roundRobin } from 'fnhost/sdk';
export default defineApp({
  onHandshake(hs, ctx) {
    if (hs.properties.bad) return ctx.servers.select({ strategy: 'random' } as never).then(() => undefined);
    return roundRobin(ctx);
  },
  async onConnection(client, _args, ctx) {
    return { to: (await leastLoaded(ctx, { exceptSelf: true })) ?? null };
  },
});
`,
  };

  test('the helpers accept every client here', async () => {
    const n = await startAppNode({ files: APP_FILES });
    try {
      const nc = await NetConnection.open(n.url(), { groups: [2] });
      assert.equal(
        (nc.info as { to?: unknown }).to,
        null,
        'leastLoaded({ exceptSelf }) has nowhere else to go',
      );
      await nc.close();
    } finally {
      await n.stop();
    }
  });

  test('a request select() cannot take fails only its handshake, with a message naming what was wrong', async () => {
    const n = await startAppNode({ files: APP_FILES });
    try {
      const nc = await NetConnection.open(n.url('?bad=1'), { groups: [2] });
      await nc.close(); // answered here: the node kept serving
      const record = n.logs.find((r) => r.level === LEVEL.error && r.event === 'handshake');
      assert.match(
        String(record?.msg),
        /^onHandshake failed: ctx\.servers\.select: strategy must be one of round-robin, least-loaded, all-servers, by-hash, got the string "random"$/,
      );
    } finally {
      await n.stop();
    }
  });
});
