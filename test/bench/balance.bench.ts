import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import pino from 'pino';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { ChunkType } from '../../runtime/rtmfp/chunks.ts';
import { Initiator } from '../../runtime/rtmfp/handshake-initiator.ts';
import { PacketReader } from '../../runtime/rtmfp/packet.ts';
import { PacketCipher } from '../../runtime/rtmfp/packet-crypto.ts';
import { bundleApp } from '../../runtime/sandbox/bundle.ts';
import { nodeRecord } from '../contract/fixture.ts';
import { startRedis } from '../support/redis.ts';
import { cpuMs, since, sleep } from './clients.ts';
import { ClusterNodeProcess } from './cluster-node-process.ts';
import { formatNumber, type Row } from './report.ts';

const startup = PacketCipher.startup();
const ANSWERS: Record<number, string> = { [ChunkType.rHello]: 'RHello', [ChunkType.redirect]: 'Redirect' };

/** IHellos per measured run, sent in batches whose answers are awaited. */
const IHELLOS = 3_000;
const IHELLO_BATCH = 50;
const IHELLO_WARMUP = 500;
/** Time each HTTP path is hammered, and requests in flight. */
const HTTP_MS = 2_000;
const HTTP_IN_FLIGHT = 8;

/** `balance` redirects every IHello elsewhere; `plain` has no onHandshake (RHello at once). */
const APPS: Record<string, string> = {
  balance: `import { defineApp, leastLoaded, roundRobin } from 'fnhost/sdk';
export default defineApp({
  onHandshake(hs, ctx) {
    const options = { exceptSelf: true };
    return hs.properties.s === 'least' ? leastLoaded(ctx, options) : roundRobin(ctx, options);
  },
});
`,
  plain: 'export default { rpc: { noop() {} } };\n',
};

/**
 * Balancing costs on a node process (CPU of all its threads) joined to a real redis-server,
 * with two more nodes in the cluster as redirect targets (records only): node CPU per IHello
 * answered with a Redirect by `roundRobin()` / `leastLoaded()` in onHandshake (sandbox call,
 * seat reads and writes in Redis), against an IHello of an app without onHandshake (RHello)
 * in the same run; and `/loadbalancer` requests/s against `/healthz`.
 */
export async function balanceFigures(): Promise<Row[]> {
  const logger = pino({ level: 'silent' });
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'fnhost-bench-balance-'));
  const state = await RedisState.connect(redis.url, { cluster: 'default', logger });
  const counter = new Redis(redis.url, { lazyConnect: true });
  let node: ClusterNodeProcess | undefined;
  try {
    for (const [app, code] of Object.entries(APPS)) {
      mkdirSync(join(dir, app));
      writeFileSync(join(dir, app, 'index.ts'), code);
      const bundle = await bundleApp(join(dir, app));
      await state.putBundle(app, bundle);
      await state.deploy(app, { hash: bundle.hash, deployedAt: await state.time(), files: [], by: 'bench' });
    }
    for (const id of ['target1', 'target2'])
      await state.heartbeat(
        nodeRecord(id, { publicAddress: `127.0.0.1:${id === 'target1' ? 9 : 13}` }),
        600_000,
      );
    node = await ClusterNodeProcess.start(
      redis.url,
      'name = "plain"\n[node]\nrtmfp = "127.0.0.1:0"\n[limits]\nhandshakes = 1000000\n',
    );
    await sleep(1_500); // a heartbeat: the node sees the two targets

    await counter.connect();
    const plain = await ihelloCost(node, counter, `rtmfp://${node.rtmfp}/plain`);
    const roundRobin = await ihelloCost(node, counter, `rtmfp://${node.rtmfp}/balance?s=rr`);
    const least = await ihelloCost(node, counter, `rtmfp://${node.rtmfp}/balance?s=least`);
    const healthz = await httpRate(node.http, '/healthz');
    const lb = await httpRate(node.http, '/loadbalancer');
    const seats = Object.values(await state.seats(['target1', 'target2', ...(await nodeIds(state))])).reduce(
      (a, b) => a + b,
      0,
    );

    const redirectRow = (what: string, r: IHelloCost): Row => ({
      section: 'i',
      name: `node CPU per IHello answered with a Redirect by ${what} in onHandshake`,
      value: r.us,
      unit: 'µs',
      baseline: `RHello, no onHandshake: ${formatNumber(plain.us)} µs`,
      ratio: r.us / plain.us,
      note: `${r.answer}; redis-server +${formatNumber(r.redisUs)} µs (RHello: +${formatNumber(plain.redisUs)}); ${IHELLO_BATCH} at a time`,
    });
    return [
      redirectRow('roundRobin()', roundRobin),
      redirectRow('leastLoaded()', least),
      {
        section: 'i',
        name: '/loadbalancer requests/s',
        value: lb.rate,
        unit: 'req/s',
        baseline: `/healthz: ${formatNumber(healthz.rate)} req/s`,
        ratio: lb.rate / healthz.rate,
        note: `${HTTP_IN_FLIGHT} in flight, keep-alive; ${lb.statuses}; ${seats} seats live after`,
      },
    ];
  } finally {
    await node?.stop();
    counter.disconnect();
    await state.close();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function nodeIds(state: RedisState): Promise<string[]> {
  return (await state.nodes()).map((n) => n.id);
}

interface IHelloCost {
  us: number;
  redisUs: number;
  /** What the answers were. */
  answer: string;
}

/** Node CPU per IHello to `url` (each with a fresh tag), and what Redis spent on each. */
async function ihelloCost(node: ClusterNodeProcess, redis: Redis, url: string): Promise<IHelloCost> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const [host, port] = [
    node.rtmfp.slice(0, node.rtmfp.lastIndexOf(':')),
    Number(node.rtmfp.split(':').pop()),
  ];
  let answers = 0;
  const kinds = new Map<string, number>();
  socket.on('message', (m) => {
    answers++;
    const packet = new PacketReader(startup.open(m));
    const kind = packet.nextChunk() ? (ANSWERS[packet.chunkType] ?? `chunk ${packet.chunkType}`) : 'empty';
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  });
  const run = async (count: number) => {
    const datagrams = Array.from({ length: count }, () =>
      new Initiator({ uri: url, groups: [2] }).current(performance.now()),
    );
    for (let i = 0; i < count; i += IHELLO_BATCH) {
      const expected = answers + Math.min(IHELLO_BATCH, count - i);
      for (const d of datagrams.slice(i, i + IHELLO_BATCH)) socket.send(d, port, host);
      const start = performance.now();
      while (answers < expected && since(start) < 5_000) await sleep(1);
      if (answers < expected) throw new Error(`${expected - answers} IHellos to ${url} got no answer`);
    }
  };
  try {
    await run(IHELLO_WARMUP);
    kinds.clear();
    const redisBefore = await redisCpuUs(redis);
    const before = await node.cpu();
    await run(IHELLOS);
    const after = await node.cpu();
    const redisUs = ((await redisCpuUs(redis)) - redisBefore) / IHELLOS;
    return {
      us: (cpuMs(before, after) * 1000) / IHELLOS,
      redisUs,
      answer: [...kinds].map(([k, n]) => `${n} × ${k}`).join(', '),
    };
  } finally {
    socket.close();
  }
}

/** redis-server's CPU so far (INFO cpu: used_cpu_sys + used_cpu_user, seconds), µs. */
async function redisCpuUs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const seconds = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? Number.NaN);
  return (seconds('used_cpu_sys') + seconds('used_cpu_user')) * 1e6;
}

/** Requests/s on `path` with HTTP_IN_FLIGHT requests in flight over keep-alive for HTTP_MS. */
async function httpRate(http: string, path: string): Promise<{ rate: number; statuses: string }> {
  const [host, port] = [http.slice(0, http.lastIndexOf(':')), Number(http.split(':').pop())];
  const agent = new Agent({ keepAlive: true, maxSockets: HTTP_IN_FLIGHT });
  const statuses = new Map<number, number>();
  const get = () =>
    new Promise<void>((resolve, reject) => {
      request({ host, port, path, agent }, (res) => {
        statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
        res.resume().on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: HTTP_IN_FLIGHT }, async () => {
      while (since(start) < HTTP_MS) {
        await get();
        done++;
      }
    }),
  );
  const elapsed = since(start);
  agent.destroy();
  return {
    rate: done / (elapsed / 1000),
    statuses: [...statuses].map(([code, n]) => `${n} × ${code}`).join(', '),
  };
}
