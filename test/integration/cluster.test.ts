import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { connect, type NetConnection } from '../../sdk/client.ts';
import { cli, type NodeProcess, spawnCli, startNodeProcess } from '../support/processes.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

const HEARTBEAT_MS = 200;

/** The app every node runs; `VERSION` is replaced per deploy. */
const APP = `
import { defineApp } from 'fnhost/sdk';
export default defineApp({
  onServerDisconnection(server, ctx) {
    return ctx.kv.set('left:' + server.id + ':' + ctx.node.id, Date.now());
  },
  rpc: {
    version() { return 'VERSION'; },
    node(_c, _a, ctx) { return ctx.node.id; },
    servers(_c, _a, ctx) { return ctx.servers.all().map((s) => s.id).sort(); },
    relay(client, [to], ctx) {
      const target = ctx.servers.all().find((s) => s.id === to);
      if (!target) throw new Error('no such node ' + to);
      target.send('ping', client.id);
      return true;
    },
    kv(_c, [key], ctx) { return ctx.kv.get(String(key)); },
    log(_c, [message], ctx) { ctx.log.info(String(message), { from: 'rpc' }); },
    env(_c, [name], ctx) { return ctx.env[String(name)] ?? null; },
    remember(client, [value]) { client.data.remembered = value; return true; },
    recall(client) { return client.data.remembered ?? null; },
  },
  server: {
    ping(from, [clientId], ctx) {
      return ctx.kv.set('pinged', { from: from.id, by: clientId, at: ctx.node.id });
    },
  },
});
`;

describe('a cluster of 3 nodes on one redis-server', () => {
  let redis: TestRedis;
  let dir: string;
  let state: RedisState;
  const nodes: NodeProcess[] = [];
  let nc: NetConnection | undefined;

  const deploy = async (version: string) => {
    writeFileSync(join(dir, 'functions', 'index.ts'), APP.replace('VERSION', version));
    return cli(dir, ['deploy', '--redis', redis.url]);
  };

  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'fnhost-cluster-'));
    writeFileSync(
      join(dir, 'wrangler-like.toml'),
      `name = "app"\nmain = "functions/"\n[cluster]\nheartbeat_ms = ${HEARTBEAT_MS}\nsecret = "test-cluster-secret-0123"\n`,
    );
    mkdirSync(join(dir, 'functions'));
    state = await RedisState.connect(redis.url, { cluster: 'default', logger: pino({ level: 'silent' }) });
    for (let i = 0; i < 3; i++) nodes.push(await startNodeProcess(dir, ['--redis', redis.url]));
  });

  after(async () => {
    await nc?.close().catch(() => {});
    for (const n of nodes) if (n.child.exitCode === null) n.child.kill('SIGKILL');
    await state?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a deploy reaches all three nodes, and a connected client's next call runs the new code", async () => {
    const first = await deploy('v1');
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /active on 3\/3 nodes/);
    nc = await connect(`rtmfp://${nodes[0].rtmfp}/app`);
    assert.equal(await nc.call('version'), 'v1');
    const second = await deploy('v2');
    assert.equal(second.code, 0, second.err);
    assert.match(second.out, /active on 3\/3 nodes/);
    assert.equal(await nc.call('version'), 'v2', 'same connection, new version');
  });

  test('rollback returns every node to the previous version', async () => {
    const r = await cli(dir, ['rollback', '--redis', redis.url]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /active on 3\/3 nodes/);
    assert.equal(await nc?.call('version'), 'v1');
  });

  test('secret put and delete reach ctx.env of the running version on every node, without a deploy; client.data carries over', async () => {
    const versionsBefore = await state.versions('app');
    assert.equal(await nc?.call('remember', 'kept'), true);
    const put = await cli(dir, ['secret', 'put', 'ROOM_TOKEN', '--redis', redis.url], { stdin: 's3cret\n' });
    assert.equal(put.code, 0, put.err);
    assert.match(
      put.out,
      /^secret ROOM_TOKEN set for app app, applied to its running version [0-9a-f]{12} without a deploy: live on 3\/3 nodes/,
    );
    for (const n of nodes) {
      const other = await connect(`rtmfp://${n.rtmfp}/app`);
      try {
        assert.equal(await other.call('env', 'ROOM_TOKEN'), 's3cret', `node ${n.id}`);
      } finally {
        await other.close();
      }
    }
    assert.equal(await nc?.call('env', 'ROOM_TOKEN'), 's3cret', 'the connected client sees it too');
    assert.equal(await nc?.call('recall'), 'kept', 'client.data carried over the reload');
    assert.deepEqual(await state.versions('app'), versionsBefore, 'no new version');

    const list = await cli(dir, ['secret', 'list', '--redis', redis.url]);
    assert.equal(list.out, 'ROOM_TOKEN\n');
    const deleted = await cli(dir, ['secret', 'delete', 'ROOM_TOKEN', '--redis', redis.url]);
    assert.equal(deleted.code, 0, deleted.err);
    assert.match(deleted.out, /^secret ROOM_TOKEN deleted for app app, .*: live on 3\/3 nodes/);
    assert.equal(await nc?.call('env', 'ROOM_TOKEN'), null);

    // A secret changed with no notice to the nodes (one missed it): a deploy of unchanged code applies it.
    await state.putSecret('app', 'MISSED', 'late');
    const again = await deploy('v1');
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /\(already active\): active on 3\/3 nodes/);
    assert.equal(await nc?.call('env', 'MISSED'), 'late');
  });

  test("ctx.servers lists every node, and server.send reaches another node's server handler", async () => {
    const ids = nodes.map((n) => n.id).sort();
    assert.deepEqual(await nc?.call('servers'), ids);
    assert.equal(await nc?.call('relay', nodes[1].id), true);
    let pinged: unknown = null;
    for (let i = 0; i < 100 && !pinged; i++) {
      pinged = await nc?.call('kv', 'pinged');
      if (!pinged) await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(pinged, { from: nodes[0].id, by: nc?.peerId, at: nodes[1].id });
  });

  test('a corrupted bundle is refused by every node, which keeps its version and reports why', async () => {
    const hash = 'f'.repeat(64);
    const running = (await state.active('app')) ?? '';
    await state.putBundle('app', { hash, code: 'globalThis.__fnhostApp = {};', map: '{}' });
    await state.deploy('app', { hash, deployedAt: await state.time(), files: ['index.ts'], by: 'test' });
    await state.publish('deploy', JSON.stringify({ app: 'app', hash }));
    let errors: string[] = [];
    for (let i = 0; i < 100 && errors.length < nodes.length; i++) {
      await new Promise((r) => setTimeout(r, 20));
      errors = (await state.nodes()).flatMap((n) => (n.errors.app ? [n.errors.app] : []));
    }
    assert.equal(errors.length, nodes.length);
    for (const e of errors) assert.match(e, /corrupt \(hash mismatch\)/);
    assert.equal(await nc?.call('version'), 'v1', 'still the previous version');
    const back = await cli(dir, ['rollback', running.slice(0, 12), '--redis', redis.url]);
    assert.equal(back.code, 0, back.err);
  });

  test('a forged node message is dropped and counted', async () => {
    const before = await status(nodes[1]);
    await state.publish(
      `rpc:${nodes[1].id}`,
      JSON.stringify({
        v: 1,
        kind: 'call',
        from: nodes[0].id,
        to: nodes[1].id,
        app: 'app',
        name: 'ping',
        args: ['x'],
        ts: Date.now(),
        nonce: 'n',
        mac: '00',
      }),
    );
    let after = before;
    for (
      let i = 0;
      i < 50 && after.clusterMessagesDropped.forged === before.clusterMessagesDropped.forged;
      i++
    ) {
      await new Promise((r) => setTimeout(r, 20));
      after = await status(nodes[1]);
    }
    assert.equal(after.clusterMessagesDropped.forged, before.clusterMessagesDropped.forged + 1);
  });

  test('a node killed with SIGKILL is reaped within 3 heartbeats and the others run onServerDisconnection', async () => {
    const victim = nodes[2];
    victim.child.kill('SIGKILL');
    await once(victim.child, 'exit');
    // Its record lives 3 heartbeats past its last one; each survivor notices at its own next
    // heartbeat. Two more heartbeats of slack cover a busy machine's timers and Redis round trips.
    const record = (await state.nodes()).find((n) => n.id === victim.id);
    assert.ok(record, 'the record outlives the process until its ttl');
    const bound = record.heartbeatAt + (3 + 1 + 2) * HEARTBEAT_MS;
    for (const survivor of nodes.slice(0, 2)) {
      let leftAt: unknown = null;
      for (let i = 0; i < 200 && leftAt === null; i++) {
        leftAt = await state.kv.get('app', `left:${victim.id}:${survivor.id}`);
        if (leftAt === null) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(typeof leftAt, 'number', `onServerDisconnection ran on ${survivor.id}`);
      assert.ok(
        (leftAt as number) <= bound,
        `on ${survivor.id}: ${(leftAt as number) - record.heartbeatAt} ms after the last heartbeat (heartbeat ${HEARTBEAT_MS} ms)`,
      );
    }
    assert.ok(!(await state.nodes()).some((n) => n.id === victim.id), 'its record is gone');
    // Each survivor drops the node from ctx.servers at its own next heartbeat.
    const survivors = nodes
      .slice(0, 2)
      .map((n) => n.id)
      .sort();
    let servers: unknown;
    for (let i = 0; i < 40; i++) {
      servers = await nc?.call('servers');
      if (JSON.stringify(servers) === JSON.stringify(survivors)) break;
      await new Promise((r) => setTimeout(r, HEARTBEAT_MS / 4));
    }
    assert.deepEqual(servers, survivors);
  });

  test('fnhost tail shows the ctx.log lines of every node while it runs', async () => {
    const tail = spawnCli(dir, ['tail', 'app', '--redis', redis.url]);
    try {
      let seen = '';
      for (let i = 0; i < 60 && !seen.includes('hello from the cluster'); i++) {
        await nc?.call('log', 'hello from the cluster');
        await new Promise((r) => setTimeout(r, 100));
        seen = tail.output();
      }
      assert.match(seen, /INFO .*hello from the cluster/);
    } finally {
      tail.child.kill('SIGINT');
      await once(tail.child, 'exit');
    }
  });

  test('while Redis is down /readyz says not ready, /healthz stays ok and ctx.kv fails as "cluster store unavailable"; after a restart every node is back and clients stayed connected', async () => {
    redis.kill();
    let ready = 200;
    for (let i = 0; i < 100 && ready === 200; i++) {
      await new Promise((r) => setTimeout(r, 30));
      ready = (await fetch(`http://${nodes[0].http}/readyz`)).status;
    }
    assert.equal(ready, 503, '/readyz reports the store down');
    assert.equal(
      (await fetch(`http://${nodes[0].http}/healthz`)).status,
      200,
      '/healthz does not depend on Redis',
    );
    assert.equal(await nc?.call('version'), 'v1', 'sessions keep being served without Redis');
    await assert.rejects(async () => nc?.call('kv', 'pinged'), {
      description: 'cluster store unavailable',
    });
    await redis.restart();
    const live = nodes
      .slice(0, 2)
      .map((n) => n.id)
      .sort();
    let seen: string[] = [];
    for (let i = 0; i < 200 && seen.join() !== live.join(); i++) {
      await new Promise((r) => setTimeout(r, 50));
      seen = (await state.nodes().catch(() => [])).map((n) => n.id).sort();
    }
    assert.deepEqual(seen, live);
    const s = await cli(dir, ['status', '--redis', redis.url, '--json']);
    assert.equal(s.code, 0, s.err);
    assert.deepEqual((JSON.parse(s.out) as { nodes: { id: string }[] }).nodes.map((n) => n.id).sort(), live);
    assert.equal(await nc?.call('version'), 'v1', 'the session survived');
    for (let i = 0; i < 100 && ready !== 200; i++) {
      await new Promise((r) => setTimeout(r, 30));
      ready = (await fetch(`http://${nodes[0].http}/readyz`)).status;
    }
    assert.equal(ready, 200, '/readyz is back');
  });

  test('SIGTERM: a node leaves at once', async () => {
    const leaving = nodes[1];
    leaving.child.kill('SIGTERM');
    const [code] = await once(leaving.child, 'exit');
    assert.equal(code, 0);
    assert.ok(!(await state.nodes()).some((n) => n.id === leaving.id));
  });

  async function status(n: NodeProcess): Promise<{ clusterMessagesDropped: { forged: number } }> {
    const res = await fetch(`http://${n.http}/status`);
    return (await res.json()) as { clusterMessagesDropped: { forged: number } };
  }
});
