import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { parseConfig } from '../../runtime/config/config.ts';
import { bundleApp } from '../../runtime/sandbox/bundle.ts';
import { type ClusterMember, startClusterMember } from './cluster-member.ts';
import { silentLogger, until } from './node.ts';
import { startRedis, type TestRedis } from './redis.ts';

export const RELAY_HEARTBEAT_MS = 200;
export const RELAY_SECRET = 'relay-test-cluster-secret-0123';
export const RELAY_APP_NAME = 'app';

/** In-process nodes on a real redis-server running one app: what relay tests start. */
export interface RelayCluster {
  redis: TestRedis;
  /** The project folder: config (heartbeat, RELAY_SECRET) and functions/, for node processes too. */
  dir: string;
  members: ClusterMember[];
  /** One more node (with another cluster secret if given), once the others see it serving. */
  add(secret?: string): Promise<ClusterMember>;
  /** `rtmfp://…/app` of a node. */
  url(m: ClusterMember): string;
  /** Stops a node and forgets it. */
  remove(m: ClusterMember): Promise<void>;
  stop(): Promise<void>;
}

/** Redis, `app` deployed as RELAY_APP_NAME, and `nodes` nodes (relay links idle out after `idleMs`). */
export async function startRelayCluster(o: {
  nodes: number;
  app: string;
  idleMs?: number;
}): Promise<RelayCluster> {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'fnhost-relay-'));
  const members: ClusterMember[] = [];
  const cluster: RelayCluster = {
    redis,
    dir,
    members,
    async add(secret = RELAY_SECRET) {
      const config = parseConfig(
        `name = "${RELAY_APP_NAME}"\n[node]\nrtmfp = "127.0.0.1:0"\n[cluster]\nheartbeat_ms = ${RELAY_HEARTBEAT_MS}\nsecret = "${secret}"\n`,
        { dir, env: {} },
      );
      const m = await startClusterMember(config, redis.url, silentLogger, { relayLinkIdleMs: o.idleMs });
      members.push(m);
      const id = m.running.cluster.id;
      await until(
        () =>
          members.every((x) =>
            x.running.cluster.servers().some((s) => s.id === id && s.state === 'serving'),
          ) && m.running.apps.version(RELAY_APP_NAME) !== undefined,
        10_000,
        `node ${id} serving, seen by every node, with the app`,
      );
      return m;
    },
    url: (m) => `rtmfp://${m.running.rtmfp[0]}/${RELAY_APP_NAME}`,
    async remove(m) {
      members.splice(members.indexOf(m), 1);
      await m.stop();
    },
    async stop() {
      for (const m of members.splice(0)) await m.stop().catch(() => {});
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    mkdirSync(join(dir, 'functions'));
    writeFileSync(join(dir, 'functions', 'index.ts'), o.app);
    writeFileSync(
      join(dir, 'wrangler-like.toml'),
      `name = "${RELAY_APP_NAME}"\nmain = "functions/"\n[cluster]\nheartbeat_ms = ${RELAY_HEARTBEAT_MS}\nsecret = "${RELAY_SECRET}"\n`,
    );
    const bundle = await bundleApp(join(dir, 'functions'));
    const deployer = await RedisState.connect(redis.url, { cluster: 'default', logger: silentLogger });
    await deployer.putBundle(RELAY_APP_NAME, bundle);
    await deployer.deploy(RELAY_APP_NAME, {
      hash: bundle.hash,
      deployedAt: await deployer.time(),
      files: [],
      by: 'test',
    });
    await deployer.close();
    for (let i = 0; i < o.nodes; i++) await cluster.add();
    return cluster;
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}
