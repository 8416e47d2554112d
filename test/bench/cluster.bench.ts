import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { NetConnection } from '../../sdk/client.ts';
import { cli, type NodeProcess, startNodeProcess } from '../support/processes.ts';
import { startRedis } from '../support/redis.ts';
import { formatNumber, type Row } from './report.ts';

const DEPLOYS = 5;
const CONNECTS = 100;

/**
 * A real 3-node cluster on one redis-server: how long `fnhost deploy` takes until the new
 * version is active on all three (goal ≤ 1 s on loopback), and how many Redis commands one
 * client connect costs (goal ≤ 3), net of the nodes' own heartbeat traffic.
 */
export async function clusterFigures(): Promise<Row[]> {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'fnhost-bench-'));
  const nodes: NodeProcess[] = [];
  const counter = new Redis(redis.url, { lazyConnect: true });
  try {
    writeFileSync(join(dir, 'wrangler-like.toml'), 'name = "app"\nmain = "functions/"\n');
    mkdirSync(join(dir, 'functions'));
    for (let i = 0; i < 3; i++) nodes.push(await startNodeProcess(dir, ['--redis', redis.url]));
    await counter.connect();

    const total: number[] = [];
    const converge: number[] = [];
    for (let i = 0; i < DEPLOYS; i++) {
      writeFileSync(
        join(dir, 'functions', 'index.ts'),
        `export default { rpc: { v() { return ${i}; } } };\n`,
      );
      const t0 = performance.now();
      const r = await cli(dir, ['deploy', '--redis', redis.url, '--json']);
      total.push(performance.now() - t0);
      if (r.code !== 0) throw new Error(`deploy failed: ${r.err}`);
      const result = JSON.parse(r.out) as { seconds: number; nodes: { ok: boolean }[] };
      if (result.nodes.filter((n) => n.ok).length !== 3) throw new Error(`not on 3 nodes: ${r.out}`);
      converge.push(result.seconds * 1000);
    }

    // Redis commands per connect: count during the connects, minus what the nodes send anyway.
    const idleMs = 2_000;
    const idleBefore = await commands(counter);
    await new Promise((r) => setTimeout(r, idleMs));
    const idleRate = ((await commands(counter)) - idleBefore - 1) / idleMs;
    const before = await commands(counter);
    const t0 = performance.now();
    for (let i = 0; i < CONNECTS; i++) {
      const nc = await NetConnection.open(`rtmfp://${nodes[i % 3].rtmfp}/app`, { groups: [2] });
      await nc.close();
    }
    const elapsed = performance.now() - t0;
    const perConnect = ((await commands(counter)) - before - 1 - idleRate * elapsed) / CONNECTS;

    return [
      {
        section: 'g',
        name: `fnhost deploy until active on 3/3 nodes, median of ${DEPLOYS}`,
        value: median(total),
        unit: 'ms',
        baseline: `publish→all active: ${formatNumber(median(converge))} ms`,
        ratio: median(total) / median(converge),
        note: 'whole CLI run (Node start, esbuild, isolate check, upload); goal ≤ 1,000 ms',
      },
      {
        section: 'g',
        name: 'Redis commands per client connect (+ close)',
        value: Math.max(0, perConnect),
        unit: 'commands',
        baseline: `heartbeats: ${formatNumber(idleRate * 1000)}/s`,
        note: `${CONNECTS} connects over 3 nodes, app without kv; goal ≤ 3`,
      },
    ];
  } finally {
    counter.disconnect();
    for (const n of nodes) n.child.kill('SIGKILL');
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Commands Redis has executed so far (INFO stats), this INFO call included. */
async function commands(redis: Redis): Promise<number> {
  const info = await redis.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? Number.NaN);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
