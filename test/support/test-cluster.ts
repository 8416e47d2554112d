import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, endProcess, type NodeProcess, startNodeProcess } from './processes.ts';
import { startRedis, type TestRedis } from './redis.ts';

/** Short, so a connected client shows in node records (and the dashboard) within a fraction of a second. */
export const TEST_HEARTBEAT_MS = 200;

/** A real redis-server and `fnhost node` processes sharing it, with `app` deployed as app "app". */
export interface TestCluster {
  redis: TestRedis;
  /** The project folder (config, functions/). */
  dir: string;
  nodes: NodeProcess[];
  /** Ends the nodes and Redis and removes the folder; safe after a failed start. */
  stop(): Promise<void>;
}

/** Starts Redis and `nodes` node processes, then deploys `app` (functions/index.ts) to them with `vars`. */
export async function startTestCluster(o: {
  nodes: number;
  app: string;
  vars?: Record<string, string>;
}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'fnhost-cluster-'));
  const nodes: NodeProcess[] = [];
  let redis: TestRedis | undefined;
  const stop = async () => {
    await Promise.all(nodes.map((n) => endProcess(n.child, 'SIGKILL')));
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    redis = await startRedis();
    writeFileSync(
      join(dir, 'wrangler-like.toml'),
      `name = "app"\nmain = "functions/"\n[cluster]\nheartbeat_ms = ${TEST_HEARTBEAT_MS}\nsecret = "test-cluster-secret-0123"\n` +
        `[vars]\n${Object.entries(o.vars ?? {})
          .map(([k, v]) => `${k} = ${JSON.stringify(v)}\n`)
          .join('')}`,
    );
    mkdirSync(join(dir, 'functions'));
    writeFileSync(join(dir, 'functions', 'index.ts'), o.app);
    for (let i = 0; i < o.nodes; i++) nodes.push(await startNodeProcess(dir, ['--redis', redis.url]));
    const deployed = await cli(dir, ['deploy', '--redis', redis.url]);
    if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.err}`);
    return { redis, dir, nodes, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
