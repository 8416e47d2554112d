import type { NodeStats } from '../../runtime/host/node.ts';
import type { NetConnection } from '../../sdk/client.ts';
import { type BenchContext, closeSessions, openSessions, sleep, warmUp } from './clients.ts';
import { formatNumber, type Row } from './report.ts';
import type { ServerProcess } from './server-process.ts';

/**
 * Server memory per idle session: the child's memory after full GCs with none and with
 * SESSIONS open. Then the sessions are closed and their linger (19 s) left to expire, twice:
 * memory still growing from the first round to the second would be sessions not given back
 * (the first round also pays one-time costs: optimised code, table capacity).
 */

const SESSIONS = 1_000;
const BATCH = 100;
/** Cheapest handshake: only the sessions' memory is measured. */
const GROUP = 2;
/** Session linger after close (19 s) plus a margin. */
const RELEASE_TIMEOUT_MS = 30_000;
/**
 * V8 flushes the bytecode of functions idle for a while (module loading, type stripping), which
 * shrinks the heap by megabytes over the 20 s a round takes and would read as negative memory.
 */
const SERVER_NODE_OPTIONS = ['--no-flush-bytecode'];
/** rtmfp-cpp tcserver (PERF-NOTES). */
const REFERENCE_KB_PER_PLAYER = 40;
const REFERENCE_IDLE_MB = 8;

const kB = (bytes: number) => bytes / 1024;
const MB = (bytes: number) => bytes / 1024 / 1024;

interface Round {
  open: NodeJS.MemoryUsage;
  released: NodeJS.MemoryUsage;
  /** Problems seen: connections left after close, sessions never released. */
  leftovers: string[];
}

/** Opens SESSIONS, reads memory, closes them and waits for the server to release them. */
async function round(ctx: BenchContext, server: ServerProcess, n: number): Promise<Round> {
  const url = server.url();
  const conns: NetConnection[] = [];
  try {
    for (let opened = 0; opened < SESSIONS; opened += BATCH) {
      conns.push(...(await openSessions(url, Math.min(BATCH, SESSIONS - opened), GROUP, 30_000)));
    }
    ctx.progress(`round ${n}: ${conns.length} sessions open`);
    await sleep(500); // let the last acks settle
    const open = await server.mem();
    const { connections } = await server.stats();
    if (connections < SESSIONS)
      throw new Error(`server has ${connections} connections, expected ≥ ${SESSIONS}`);
    const closing = conns.splice(0);
    for (let i = 0; i < closing.length; i += BATCH) await closeSessions(closing.slice(i, i + BATCH));
    const afterClose = await server.stats();
    ctx.progress(`round ${n}: closed; waiting for ${afterClose.sessions} lingering sessions to be released`);
    const stats = await released(server, afterClose);
    const leftovers: string[] = [];
    if (afterClose.connections > 0)
      leftovers.push(`round ${n}: ${afterClose.connections} connections open right after close`);
    if (stats.sessions > 0)
      leftovers.push(`round ${n}: ${stats.sessions} sessions not released in ${RELEASE_TIMEOUT_MS / 1000} s`);
    return { open, released: await server.mem(), leftovers };
  } finally {
    await closeSessions(conns);
  }
}

async function released(server: ServerProcess, stats: NodeStats): Promise<NodeStats> {
  const deadline = Date.now() + RELEASE_TIMEOUT_MS;
  while (stats.sessions > 0 && Date.now() < deadline) {
    await sleep(500);
    stats = await server.stats();
  }
  return stats;
}

export async function memoryPerSession(ctx: BenchContext): Promise<Row[]> {
  const server = await ctx.startServer(SERVER_NODE_OPTIONS);
  await warmUp(server.url(), GROUP, 10);
  const idle = await server.mem();
  const first = await round(ctx, server, 1);
  const second = await round(ctx, server, 2);
  type Key = 'rss' | 'heapUsed' | 'external';
  const perSession = (key: Key) => (first.open[key] - idle[key]) / SESSIONS;
  const growth = (key: Key) => (second.released[key] - first.released[key]) / SESSIONS;
  return [
    {
      section: 'e',
      name: `server rss per idle session, ${SESSIONS} open (DH ${GROUP})`,
      value: kB(perSession('rss')),
      unit: 'kB',
      baseline: `idle node rss ${formatNumber(MB(idle.rss))} MB`,
      ratio: (first.open.rss - idle.rss) / idle.rss,
      note:
        `ratio: all ${SESSIONS} sessions ÷ idle node; ` +
        `rtmfp-cpp ≈ ${REFERENCE_KB_PER_PLAYER} kB/player, ${REFERENCE_IDLE_MB} MB idle`,
    },
    {
      section: 'e',
      name: `server heap+external per idle session, ${SESSIONS} open`,
      value: kB(perSession('heapUsed') + perSession('external')),
      unit: 'kB',
      baseline: `idle heap+ext ${formatNumber(MB(idle.heapUsed + idle.external))} MB`,
      ratio:
        (first.open.heapUsed + first.open.external - idle.heapUsed - idle.external) /
        (idle.heapUsed + idle.external),
      note: `heapUsed ${formatNumber(kB(perSession('heapUsed')))} + external (Buffers) ${formatNumber(kB(perSession('external')))} kB; ratio as above`,
    },
    {
      section: 'e',
      name: 'server heap+external growth per session, 2nd round of open+close+release',
      value: kB(growth('heapUsed') + growth('external')),
      unit: 'kB',
      baseline: `open: ${formatNumber(kB(perSession('heapUsed') + perSession('external')))} kB`,
      ratio: (growth('heapUsed') + growth('external')) / (perSession('heapUsed') + perSession('external')),
      note: [
        `1st round left ${formatNumber(kB((first.released.heapUsed + first.released.external - idle.heapUsed - idle.external) / SESSIONS))} kB/session`,
        `rss growth ${formatNumber(kB(growth('rss')))} kB/session`,
        ...first.leftovers,
        ...second.leftovers,
      ].join('; '),
    },
  ];
}
