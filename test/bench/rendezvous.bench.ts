import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { bundleApp } from '../../runtime/sandbox/bundle.ts';
import { NetConnection } from '../../sdk/client.ts';
import { startRedis } from '../support/redis.ts';
import { sleep } from './clients.ts';
import { ClusterNodeProcess } from './cluster-node-process.ts';
import { formatNumber, type Row } from './report.ts';

/** P2P sessions opened per measured case (after WARMUP). */
const INTRODUCTIONS = 100;
const WARMUP = 10;
/**
 * Clients on the first node taking turns to open: one socket may cause 10 store lookups a
 * second (RENDEZVOUS_LOOKUPS_PER_SOURCE), so one initiator alone would measure that bound.
 */
const INITIATORS = 20;
/** Heartbeat of the two nodes: each sees the other within a beat. */
const CONFIG = 'name = "app"\n[node]\nrtmfp = "127.0.0.1:0"\n[cluster]\nheartbeat_ms = 200\n';

/**
 * P2P rendezvous (issue 9) on two node processes sharing a real redis-server: the time from
 * `connectPeer` to a P2P session whose NetConnection the peer accepted (Redirect, Forwarded
 * IHello, the handshake with the peer, DH 2), one after another from 20 clients in turn, to a peer on the same node
 * (the baseline) and to a peer on the other node (one store lookup and a signed forward-hello
 * through Redis pub/sub). Goal: a cross-node introduction < 1 ms more on loopback.
 */
export async function rendezvousFigures(): Promise<Row[]> {
  const logger = pino({ level: 'silent' });
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'fnhost-bench-rendezvous-'));
  const state = await RedisState.connect(redis.url, { cluster: 'default', logger });
  const nodes: ClusterNodeProcess[] = [];
  const clients: NetConnection[] = [];
  try {
    mkdirSync(join(dir, 'app'));
    writeFileSync(join(dir, 'app', 'index.ts'), 'export default {};\n');
    const bundle = await bundleApp(join(dir, 'app'));
    await state.putBundle('app', bundle);
    await state.deploy('app', { hash: bundle.hash, deployedAt: await state.time(), files: [], by: 'bench' });
    for (let i = 0; i < 2; i++) nodes.push(await ClusterNodeProcess.start(redis.url, CONFIG));
    const open = async (node: ClusterNodeProcess) => {
      const nc = await NetConnection.open(`rtmfp://${node.rtmfp}/app`, { groups: [2] });
      clients.push(nc);
      return nc;
    };
    const initiators: NetConnection[] = [];
    for (let i = 0; i < INITIATORS; i++) initiators.push(await open(nodes[0]));
    const near = await open(nodes[0]);
    const far = await open(nodes[1]);
    await sleep(1_000); // both nodes see each other and every client is in the store

    const measure = async (target: NetConnection) => {
      const once = async (i: number) => (await initiators[i % INITIATORS].connectPeer(target.peerId)).close();
      for (let i = 0; i < WARMUP; i++) await once(i);
      const t0 = performance.now();
      for (let i = 0; i < INTRODUCTIONS; i++) await once(i);
      return (performance.now() - t0) / INTRODUCTIONS;
    };
    const sameNode = await measure(near);
    const otherNode = await measure(far);
    const base = `same node: ${formatNumber(sameNode)} ms`;
    return [
      {
        section: 'r',
        name: 'connectPeer to a peer on the same node (P2P session up, DH 2)',
        value: sameNode,
        unit: 'ms',
        note: `${formatNumber(1000 / sameNode)} introductions/s one after another`,
      },
      {
        section: 'r',
        name: 'connectPeer to a peer on another node',
        value: otherNode,
        unit: 'ms',
        baseline: base,
        ratio: otherNode / sameNode,
        note: `${formatNumber(otherNode - sameNode)} ms more (goal < 1 ms); ${formatNumber(1000 / otherNode)}/s`,
      },
    ];
  } finally {
    await Promise.all(clients.map((c) => c.abort()));
    await Promise.all(nodes.map((n) => n.stop()));
    await state.close();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
