import { performance } from 'node:perf_hooks';
import { computeDHSecret, generateDHKeyPair } from '../../runtime/rtmfp/dh.ts';
import { NetConnection } from '../../sdk/client.ts';
import { type BenchContext, closeSessions, cpuMs, openSessions, since, warmUp } from './clients.ts';
import { formatNumber, type Row } from './report.ts';
import type { ServerProcess } from './server-process.ts';

/**
 * Session setup: the server's CPU per handshake + connect + close, set against the DH
 * arithmetic no implementation can skip, and the session rate under bursts of simultaneous
 * opens, set against the rate of a small burst (a collapse shows as a ratio far below 1).
 */

/** rtmfp-cpp tcserver on this machine kind (PERF-NOTES). */
const REFERENCE_MS_PER_SESSION_GROUP_16 = 4.3;
const SEQUENTIAL_TIMEOUT_MS = 10_000;
const BURST_TIMEOUT_MS = 60_000;
const DH_ROUNDS = 6;
/** Sequential DH 2 sessions before the bursts (V8 compiles the session path meanwhile). */
const BURST_WARMUP_SESSIONS = 300;
/** A burst smaller than this is repeated until it adds up to as many sessions (median rate). */
const MIN_BURST_SESSIONS = 50;
/** Sessions a fresh server process opens before the "first sessions" figure (its crypto worker warm). */
const FRESH_WARMUP_SESSIONS = 5;
const FRESH_SESSIONS = 50;
/**
 * Sessions (every fourth in DH 16, the rest in DH 2) before the steady-state figures. V8 is
 * still compiling the session path for the first few hundred sessions: with 300, background
 * compiler and GC threads still add ~0.2 ms per session; past ~1,000 they are down to ~0.05 ms.
 */
const STEADY_WARMUP_SESSIONS = 1_500;
/**
 * Warm sessions per group, in rounds: the figure is the median round, since this machine's
 * speed drifts by tens of per cent within a minute (a slow spell would sway a single mean).
 */
const STEADY_ROUNDS = 5;
const STEADY_SESSIONS: Record<number, number> = { 16: 100, 2: 200 };

/**
 * ms of one DH key pair + shared secret in `group`, in this thread: the server's share of a
 * handshake. Best of DH_ROUNDS, as the floor no implementation gets under.
 */
export function dhCostMs(group: number, iterations: number): number {
  const peer = generateDHKeyPair(group);
  const once = () => {
    const mine = generateDHKeyPair(group);
    return computeDHSecret(group, mine.privateKey, peer.publicKey).length;
  };
  for (let i = 0; i < 3; i++) once();
  const perRound = Math.ceil(iterations / DH_ROUNDS);
  let sink = 0;
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < DH_ROUNDS; round++) {
    const start = performance.now();
    for (let i = 0; i < perRound; i++) sink += once();
    best = Math.min(best, since(start) / perRound);
  }
  if (sink === 0) throw new Error('DH produced no secrets');
  return best;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Opens and closes `sessions` sessions one after another; the server's CPU ms per session. */
async function sequentialCpu(
  server: ServerProcess,
  groupOf: (i: number) => number,
  sessions: number,
): Promise<{ cpu: number; wall: number }> {
  const url = server.url();
  const before = await server.cpu();
  const start = performance.now();
  for (let i = 0; i < sessions; i++) {
    const nc = await NetConnection.open(url, { groups: [groupOf(i)], timeoutMs: SEQUENTIAL_TIMEOUT_MS });
    await nc.close();
  }
  const wall = since(start) / sessions;
  return { cpu: cpuMs(before, await server.cpu()) / sessions, wall };
}

/**
 * Server CPU per handshake + connect + close, sequential sessions, set against the DH
 * arithmetic: in a fresh process (what a node costs right after it starts, V8 compiling
 * as it goes), then in DH 16 and DH 2 once warm (what a node costs for the rest of its life,
 * and what rtmfp-cpp's figure, a C++ server with nothing to compile, compares with).
 */
export async function sessionCpu(ctx: BenchContext): Promise<Row[]> {
  // The DH floor is measured before and after the sessions, and the lower kept: a single
  // reading taken in one of this machine's slow spells made sessions look cheaper than DH.
  const dh = new Map<number, number>();
  const measureDh = () => {
    for (const group of [16, 2]) {
      const ms = dhCostMs(group, group === 16 ? 36 : 240);
      dh.set(group, Math.min(ms, dh.get(group) ?? ms));
      ctx.progress(`DH group ${group} keygen + secret in-process: ${formatNumber(ms)} ms`);
    }
  };
  measureDh();
  const server = await ctx.startServer();
  const measured: { name: string; group: number; r: { cpu: number; wall: number }; notes: string[] }[] = [];
  await sequentialCpu(server, () => 16, FRESH_WARMUP_SESSIONS);
  measured.push({
    name: `server CPU per session (handshake+connect+close), DH 16, fresh process, ${FRESH_SESSIONS} sequential`,
    group: 16,
    r: await sequentialCpu(server, () => 16, FRESH_SESSIONS),
    notes: ['V8 still compiling'],
  });
  ctx.progress(`warming up with ${STEADY_WARMUP_SESSIONS} sessions`);
  await sequentialCpu(server, (i) => (i % 4 === 0 ? 16 : 2), STEADY_WARMUP_SESSIONS);
  for (const group of [16, 2]) {
    const n = STEADY_SESSIONS[group];
    const rounds: { cpu: number; wall: number }[] = [];
    for (let i = 0; i < STEADY_ROUNDS; i++)
      rounds.push(await sequentialCpu(server, () => group, n / STEADY_ROUNDS));
    rounds.sort((a, b) => a.cpu - b.cpu);
    const range = `rounds ${formatNumber(rounds[0].cpu)}–${formatNumber(rounds[rounds.length - 1].cpu)} ms`;
    measured.push({
      name: `server CPU per session (handshake+connect+close), DH ${group}, warm, median of ${STEADY_ROUNDS} × ${n / STEADY_ROUNDS} sequential`,
      group,
      r: rounds[rounds.length >> 1],
      notes:
        group === 16
          ? [range, `rtmfp-cpp tcserver: ${REFERENCE_MS_PER_SESSION_GROUP_16} ms in PERF-NOTES`]
          : [range],
    });
  }
  const stats = await server.stats();
  measureDh();
  const rows = measured.map(
    ({ name, group, r, notes }): Row => ({
      section: 'a',
      name,
      value: r.cpu,
      unit: 'ms',
      baseline: `DH keygen+secret ${formatNumber(dh.get(group)!)} ms`,
      ratio: r.cpu / dh.get(group)!,
      note: [`wall ${formatNumber(r.wall)} ms/session`, ...notes].join('; '),
    }),
  );
  const expected =
    FRESH_WARMUP_SESSIONS +
    FRESH_SESSIONS +
    STEADY_WARMUP_SESSIONS +
    STEADY_SESSIONS[16] +
    STEADY_SESSIONS[2];
  if (stats.handshakes !== expected)
    rows[rows.length - 1].note += `; server counted ${stats.handshakes} handshakes, expected ${expected}`;
  return rows;
}

export interface BurstResult {
  row: Row;
  rate: number;
}

/**
 * `clients` sessions opened at once; the rate is clients ÷ time until the last connected.
 * Small bursts last a few tens of ms, so they are repeated and the median rate is kept.
 * The clients run in this process (their DH too), so on 2 cores the rate is client + server.
 */
export async function burstRate(
  ctx: BenchContext,
  clients: number,
  group: number,
  reference?: { clients: number; rate: number },
): Promise<BurstResult> {
  const server = await ctx.startServer();
  const url = server.url();
  // Past V8's compiling phase, so the CPU note is a warm node's (as in section a).
  await warmUp(url, 2, BURST_WARMUP_SESSIONS);
  await warmUp(url, group, 2);
  const repeats = Math.ceil(MIN_BURST_SESSIONS / clients);
  const rates: number[] = [];
  const walls: number[] = [];
  const before = await server.cpu();
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    const conns = await openSessions(url, clients, group, BURST_TIMEOUT_MS);
    const wall = since(start);
    rates.push(clients / (wall / 1000));
    walls.push(wall);
    await closeSessions(conns);
  }
  const after = await server.cpu();
  const stats = await server.stats();
  const rate = median(rates);
  const notes = [
    repeats > 1
      ? `median of ${repeats}, all open in ${formatNumber(median(walls))} ms`
      : `all open in ${formatNumber(walls[0])} ms`,
    `server CPU ${formatNumber(cpuMs(before, after) / (clients * repeats))} ms/session incl. close`,
  ];
  if (stats.dropped > 0) notes.push(`server drops ${JSON.stringify(stats.drops)}`);
  // PERF-NOTES' figure, with rtmfp-cpp's own clients; with ours it did 69–139/s here (run with
  // FNHOST_BENCH_TCSERVER for a same-run figure).
  if (clients >= 200) notes.push('rtmfp-cpp: 5–40/s at 200 in PERF-NOTES');
  return {
    rate,
    row: {
      section: 'b',
      name: `sessions/s, ${clients} clients opening at once, DH ${group}`,
      value: rate,
      unit: 'sessions/s',
      baseline: reference ? `${reference.clients} clients: ${formatNumber(reference.rate)}/s` : undefined,
      ratio: reference ? rate / reference.rate : undefined,
      note: notes.join('; '),
    },
  };
}
