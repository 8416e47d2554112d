import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { ClusterNode, sealMessage } from '../../runtime/cluster/cluster.ts';
import { type ForwardHelloRequest, parseForwardHello } from '../../runtime/cluster/forward-hello.ts';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { bundleApp } from '../../runtime/sandbox/bundle.ts';
import { NetConnection } from '../../sdk/client.ts';
import { idleNodeRecord } from '../support/node-records.ts';
import { startRedis } from '../support/redis.ts';
import { sleep } from './clients.ts';
import { ClusterNodeProcess } from './cluster-node-process.ts';
import { formatNumber, type Row } from './report.ts';

/** P2P sessions opened per measured case (after WARMUP). */
const INTRODUCTIONS = 200;
const WARMUP = 10;
/**
 * Clients on the first node taking turns to open: one socket may cause 30 store lookups a
 * second (RENDEZVOUS_LOOKUPS_PER_SOURCE), so one initiator alone would measure that bound.
 */
const INITIATORS = 20;
/** Times each step of a cross-node introduction is measured alone (the median is kept). */
const STEP_SAMPLES = 200;
/** forward-hello messages sealed and parsed to time that CPU work. */
const SEALS = 2_000;
/** Heartbeat of the two nodes: each sees the other within a beat. */
const CONFIG = 'name = "app"\n[node]\nrtmfp = "127.0.0.1:0"\n[cluster]\nheartbeat_ms = 200\n';

/**
 * P2P rendezvous (issue 9) on two node processes sharing a real redis-server: the time from
 * `connectPeer` to a P2P session whose NetConnection the peer accepted (Redirect, Forwarded
 * IHello, the handshake with the peer, DH 2), one after another from 20 clients in turn, to a
 * peer on the same node (the baseline) and, alternately, to a peer on the other node (one store
 * lookup and a signed forward-hello through Redis pub/sub), then each of those two steps alone.
 * Goal: a cross-node introduction < 1 ms more on loopback.
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

    // Same-node and cross-node introductions alternate, so both see the machine's load alike.
    const once = async (i: number, target: NetConnection) => {
      const t0 = performance.now();
      (await initiators[i % INITIATORS].connectPeer(target.peerId)).close();
      return performance.now() - t0;
    };
    for (let i = 0; i < WARMUP; i++) {
      await once(i, near);
      await once(i, far);
    }
    const sameTimes: number[] = [];
    const otherTimes: number[] = [];
    for (let i = 0; i < INTRODUCTIONS; i++) {
      sameTimes.push(await once(i, near));
      otherTimes.push(await once(i, far));
    }
    const sameNode = mean(sameTimes);
    const otherNode = mean(otherTimes);
    const steps = await crossNodeSteps(redis.url, state, far.peerId);
    const base = `same node: ${formatNumber(sameNode)} ms`;
    const extra = otherNode - sameNode;
    return [
      {
        section: 'r',
        name: 'connectPeer to a peer on the same node (P2P session up, DH 2)',
        value: sameNode,
        unit: 'ms',
        note: `${formatNumber(1000 / sameNode)} introductions/s one after another; ${spread(sameTimes)}`,
      },
      {
        section: 'r',
        name: 'connectPeer to a peer on another node',
        value: otherNode,
        unit: 'ms',
        baseline: base,
        ratio: otherNode / sameNode,
        note: `${formatNumber(extra)} ms more (goal < 1 ms); ${formatNumber(1000 / otherNode)}/s; ${spread(otherTimes)}`,
      },
      {
        section: 'r',
        name: 'step: store lookup of the peer (GET, median)',
        value: steps.lookup,
        unit: 'ms',
        baseline: `cross-node extra: ${formatNumber(extra)} ms`,
        ratio: steps.lookup / extra,
        note: 'on the critical path: the Redirect waits for it',
      },
      {
        section: 'r',
        name: 'step: forward-hello node to node (seal, PUBLISH, verify; median)',
        value: steps.forward,
        unit: 'ms',
        baseline: `cross-node extra: ${formatNumber(extra)} ms`,
        ratio: steps.forward / extra,
        note: 'off the critical path on loopback (the target answers the direct IHello); sent after the Redirect',
      },
      {
        section: 'r',
        name: 'step: CPU to seal and parse one forward-hello',
        value: steps.sealMicros,
        unit: 'µs',
        note: 'JSON + HMAC-SHA-256 + field checks; the receiver adds one more HMAC',
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

/**
 * The steps a cross-node introduction adds to a same-node one, each alone on the same
 * redis-server: the node's store lookup of the target (`p2p.peer`), and the signed
 * forward-hello between two cluster members (here two ClusterNodes in this process, in a
 * cluster of their own so the node processes do not see them).
 */
async function crossNodeSteps(
  url: string,
  state: RedisState,
  peerId: string,
): Promise<{ lookup: number; forward: number; sealMicros: number }> {
  const lookups: number[] = [];
  for (let i = 0; i < STEP_SAMPLES; i++) {
    const t0 = performance.now();
    await state.p2p.peer(peerId);
    lookups.push(performance.now() - t0);
  }

  const logger = pino({ level: 'silent' });
  const steps = await RedisState.connect(url, { cluster: 'bench-steps', logger });
  let arrived: (() => void) | undefined;
  const member = (id: string) =>
    new ClusterNode({
      state: steps,
      logger,
      secret: Buffer.alloc(32, 1),
      heartbeatMs: 60_000,
      describe: idleNodeRecord,
      id,
      hooks: { joined() {}, left() {}, message() {}, control() {}, forwardHello: () => arrived?.() },
    });
  const a = member('a');
  const b = member('b');
  const request: ForwardHelloRequest = {
    target: peerId,
    epd: `210f${peerId}`,
    tag: '0123456789abcdef0123456789abcdef',
    address: '127.0.0.1:50000',
    attempt: 0,
    reported: ['192.168.1.20:50000'],
  };
  const forwards: number[] = [];
  try {
    await a.start();
    await b.start();
    await a.heartbeatNow();
    for (let i = 0; i < STEP_SAMPLES; i++) {
      const got = new Promise<void>((r) => {
        arrived = r;
      });
      const t0 = performance.now();
      await a.forwardHello('b', request);
      await got;
      forwards.push(performance.now() - t0);
    }
  } finally {
    await a.stop();
    await b.stop();
    await steps.close();
  }

  const secret = Buffer.alloc(32, 1);
  const t0 = performance.now();
  for (let i = 0; i < SEALS; i++) {
    const sealed = sealMessage(secret, {
      kind: 'forward-hello',
      from: 'a',
      epoch: 'e',
      to: 'b',
      app: '',
      name: '',
      args: [parseForwardHello(request)],
    });
    parseForwardHello((JSON.parse(sealed) as { args: unknown[] }).args[0]);
  }
  const sealMicros = ((performance.now() - t0) * 1000) / SEALS;
  return { lookup: median(lookups), forward: median(forwards), sealMicros };
}

function mean(values: number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** Median and the slowest: one IHello retransmission (500 ms) moves a mean of 200 by 2.5 ms. */
function spread(values: number[]): string {
  return `median ${formatNumber(median(values))} ms, slowest ${formatNumber(Math.max(...values))} ms`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}
