import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import type { NodeEntry } from '../../runtime/cluster/state.ts';
import { NetConnection } from '../../sdk/client.ts';
import { until } from '../support/node.ts';
import { cli, type NodeProcess, spawnCli, startNodeProcess } from '../support/processes.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

const HEARTBEAT_MS = 200;
/** What the drain test waits for at most: a client not redirected must fail it, not hang it. */
const WAIT_MS = 20_000;

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS).unref();
    }),
  ]);
}

const APP = `
import { defineApp, redirect } from 'fnhost/sdk';
export default defineApp({
  onConnection(client, _args, ctx) {
    const go = client.properties.go;
    if (go && go !== ctx.node.publicAddress) throw redirect(String(go));
  },
  rpc: {
    node(_c, _a, ctx) { return ctx.node.id; },
    servers(_c, _a, ctx) {
      return { states: ctx.servers.all().map((s) => s.id + ' ' + s.state), least: ctx.servers.leastLoaded()?.id ?? null };
    },
  },
});
`;

describe('pause, resume and drain on a 2-node cluster', () => {
  let redis: TestRedis;
  let dir: string;
  let state: RedisState;
  let a: NodeProcess;
  let b: NodeProcess;
  const clients: NetConnection[] = [];

  const record = async (id: string): Promise<NodeEntry | undefined> =>
    (await state.nodes()).find((n) => n.id === id);
  const run = (args: string[]) => cli(dir, [...args, '--redis', redis.url]);
  const open = async (node: NodeProcess) => {
    const nc = await NetConnection.open(`rtmfp://${node.rtmfp}/app`, { followRedirects: true });
    clients.push(nc);
    return nc;
  };

  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'fnhost-drain-'));
    writeFileSync(
      join(dir, 'wrangler-like.toml'),
      `name = "app"\nmain = "functions/"\n[cluster]\nheartbeat_ms = ${HEARTBEAT_MS}\nsecret = "test-cluster-secret-drain"\n`,
    );
    mkdirSync(join(dir, 'functions'));
    writeFileSync(join(dir, 'functions', 'index.ts'), APP);
    state = await RedisState.connect(redis.url, { cluster: 'default', logger: pino({ level: 'silent' }) });
    a = await startNodeProcess(dir, ['--redis', redis.url]);
    b = await startNodeProcess(dir, ['--redis', redis.url]);
    const deployed = await run(['deploy']);
    assert.equal(deployed.code, 0, deployed.err);
  });

  after(async () => {
    await Promise.all(clients.map((nc) => nc.abort().catch(() => {})));
    for (const n of [a, b]) if (n && n.child.exitCode === null) n.child.kill('SIGKILL');
    await state?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('pause (by a unique id prefix) shows in the node record at once; resume undoes it', async () => {
    const prefix = a.id.slice(0, 6);
    const paused = await run(['pause', prefix, '--json']);
    assert.equal(paused.code, 0, paused.err);
    const printed = JSON.parse(paused.out) as { node: string; paused: boolean; state: string };
    assert.deepEqual([printed.node, printed.paused, printed.state], [a.id, true, 'serving']);
    assert.equal((await record(a.id))?.paused, true);
    assert.equal((await record(b.id))?.paused, false, 'only that node');

    const resumed = await run(['resume', a.id]);
    assert.equal(resumed.code, 0, resumed.err);
    assert.match(resumed.out, new RegExp(`^node ${a.id} serving in \\d+\\.\\d\\d s: balanced again`));
    assert.equal((await record(a.id))?.paused, false);
  });

  test('resume before the deadline cancels a drain: the node serves again and does not exit', async () => {
    // Long enough that the resume (a CLI process start, ~1 s on a busy machine) comes first.
    const deadlineMs = 8_000;
    const drainedAt = Date.now();
    const drained = await run(['drain', b.id, '--deadline', `${deadlineMs / 1000}s`]);
    assert.equal(drained.code, 0, drained.err);
    assert.match(
      drained.out,
      new RegExp(`^node ${b.id} draining in \\d+\\.\\d\\d s: new handshakes go to other nodes`),
    );
    assert.equal((await record(b.id))?.state, 'draining');
    const resumed = await run(['resume', b.id]);
    assert.equal(resumed.code, 0, resumed.err);
    assert.ok(Date.now() - drainedAt < deadlineMs, 'resumed before the deadline');
    await new Promise((r) => setTimeout(r, drainedAt + deadlineMs + 1_000 - Date.now()));
    assert.equal(b.child.exitCode, null, 'still running');
    assert.equal((await record(b.id))?.state, 'serving');
    const nc = await open(b);
    assert.equal(await nc.call('node'), b.id, 'answers its own handshakes again');
  });

  test('handlers see a draining node as draining, and ctx.servers.leastLoaded() leaves it out', async () => {
    const drained = await run(['drain', b.id, '--deadline', '60s']);
    assert.equal(drained.code, 0, drained.err);
    const seen = await open(a);
    const servers = () => seen.call('servers') as Promise<{ states: string[]; least: string | null }>;
    let view = await servers();
    for (const end = Date.now() + 5_000; !view.states.includes(`${b.id} draining`) && Date.now() < end; )
      view = await servers();
    assert.ok(view.states.includes(`${b.id} draining`), `handlers see ${view.states.join(', ')}`);
    assert.equal(view.least, a.id);
    const resumed = await run(['resume', b.id]);
    assert.equal(resumed.code, 0, resumed.err);
  });

  test('status --watch --json prints a line per refresh whose load follows clients connecting', async () => {
    const watch = spawnCli(dir, ['status', '--watch', '--json', '--redis', redis.url]);
    try {
      const lines = () =>
        watch
          .output()
          .split('\n')
          .slice(0, -1)
          .map((l) => JSON.parse(l) as { nodes: NodeEntry[] });
      const loadOf = (id: string) =>
        lines()
          .at(-1)
          ?.nodes.find((n) => n.id === id)?.load;
      await until(() => lines().length > 0, 10_000, 'a first line');
      const before = loadOf(a.id)?.clients ?? -1;
      assert.ok(before >= 0, 'node a is listed');
      const added = await Promise.all(Array.from({ length: 5 }, () => open(a)));
      await Promise.all(added.map((nc) => nc.call('node')));
      await until(() => (loadOf(a.id)?.clients ?? 0) >= before + 5, 10_000, 'the clients in a later line');
      const load = loadOf(a.id);
      assert.ok(load && load.packetsPerSecond > 0 && load.bytesPerSecond > 0, JSON.stringify(load));
      assert.ok(lines().length >= 2, 'one line per refresh');
      watch.child.kill('SIGINT');
      const [code] = await once(watch.child, 'exit');
      assert.equal(code, 0, watch.errors());
    } finally {
      if (watch.child.exitCode === null) watch.child.kill('SIGKILL');
    }
  });

  test('with followRedirects, a connect refused with a redirect (ex.code 302) is made again where it says', async () => {
    const nc = await NetConnection.open(`rtmfp://${a.rtmfp}/app?go=${b.rtmfp}`, { followRedirects: true });
    clients.push(nc);
    assert.equal(await nc.call('node'), b.id);
    assert.equal(nc.url, `rtmfp://${b.rtmfp}/app?go=${b.rtmfp}`);
  });

  test('drain: new handshakes go to the other node; at the deadline every client left is redirected there, none is lost, and the node exits', async () => {
    for (const nc of clients.splice(0)) await nc.close();
    const connected = await Promise.all(Array.from({ length: 10 }, () => open(a)));
    for (const nc of connected) assert.equal(await nc.call('node'), a.id);
    const reconnected: Promise<NetConnection>[] = connected.map(
      (nc) =>
        new Promise((resolve, reject) => {
          nc.once('redirect', resolve);
          nc.once('redirectFailed', reject);
        }),
    );
    const exited = once(a.child, 'exit');

    const drained = await run(['drain', a.id.slice(0, 8), '--deadline', '3s']);
    assert.equal(drained.code, 0, drained.err);
    assert.equal((await record(a.id))?.state, 'draining');

    const late = await open(a);
    assert.equal(await late.call('node'), b.id, 'a new handshake to the draining node lands on the other');

    const finished = connected.slice(0, 3);
    for (const nc of finished) await nc.close();
    const staying = connected.slice(3);
    const moved = await within(Promise.all(reconnected.slice(3)), 'every remaining client redirected');
    clients.push(...moved);
    for (const nc of moved) assert.equal(await nc.call('node'), b.id);
    assert.equal(finished.length + moved.length, connected.length, 'zero sessions lost');
    assert.ok(staying.every((nc) => !nc.connected));

    const [code] = await within(exited, 'the drained node exiting');
    assert.equal(code, 0, a.errors());
    assert.equal(await record(a.id), undefined, 'it left the cluster');
  });

  test('a paused node stays paused across a Redis restart (its own state is re-asserted)', async () => {
    const paused = await run(['pause', b.id]);
    assert.equal(paused.code, 0, paused.err);
    await redis.restart();
    let entry: NodeEntry | undefined;
    const deadline = Date.now() + 15_000;
    while (!entry && Date.now() < deadline) {
      entry = await record(b.id).catch(() => undefined);
      if (!entry) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(entry?.paused, true, 'the re-registered record says paused');
  });

  test('CLI errors are one line and a non-zero exit: unknown node, bad --deadline, no NODE', async () => {
    const unknown = await run(['pause', 'zzzz']);
    assert.equal(unknown.code, 1);
    assert.equal(
      unknown.err,
      'fnhost: no live node "zzzz" in cluster "default" (fnhost status lists them)\n',
    );
    const badDeadline = await run(['drain', b.id, '--deadline', 'soon']);
    assert.equal(badDeadline.code, 2);
    assert.equal(
      badDeadline.err.split('\n')[0],
      'fnhost drain: --deadline must be a duration such as 30s, 10m or 1h, got "soon"',
    );
    const noNode = await run(['resume']);
    assert.equal(noNode.code, 2);
    assert.equal(noNode.err.split('\n')[0], 'fnhost resume: resume takes one NODE, got 0');
  });
});
