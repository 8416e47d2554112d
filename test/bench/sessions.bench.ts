import { performance } from 'node:perf_hooks';
import { computeDHSecret, generateDHKeyPair } from '../../runtime/rtmfp/dh.ts';
import { NetConnection } from '../../sdk/client.ts';
import { type BenchContext, closeSessions, cpuMs, openSessions, since, warmUp } from './clients.ts';
import { formatNumber, type Row } from './report.ts';

/**
 * Session setup: the server's CPU per handshake + connect + close, set against the DH
 * arithmetic no implementation can skip, and the session rate under bursts of simultaneous
 * opens, set against the rate of a small burst (a collapse shows as a ratio far below 1).
 */

/** rtmfp-cpp tcserver on this machine kind (PERF-NOTES). */
const REFERENCE_MS_PER_SESSION_GROUP_16 = 4.3;
const WARMUP_SESSIONS = 5;
const SEQUENTIAL_TIMEOUT_MS = 10_000;
const BURST_TIMEOUT_MS = 60_000;
const DH_ROUNDS = 6;
/** A burst smaller than this is repeated until it adds up to as many sessions (median rate). */
const MIN_BURST_SESSIONS = 50;

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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Server CPU per session over `sessions` sequential open + close, DH group `group`. */
export async function handshakeCpu(ctx: BenchContext, group: number, sessions: number): Promise<Row> {
  const dh = dhCostMs(group, group === 16 ? 36 : 240);
  ctx.progress(`DH group ${group} keygen + secret in-process: ${formatNumber(dh)} ms`);
  const server = await ctx.startServer();
  const url = server.url();
  await warmUp(url, group, WARMUP_SESSIONS);
  const before = await server.cpu();
  const start = performance.now();
  for (let i = 0; i < sessions; i++) {
    const nc = await NetConnection.open(url, { groups: [group], timeoutMs: SEQUENTIAL_TIMEOUT_MS });
    await nc.close();
  }
  const wall = since(start);
  const after = await server.cpu();
  const stats = await server.stats();
  const perSession = cpuMs(before, after) / sessions;
  const notes = [`wall ${formatNumber(wall / sessions)} ms/session`];
  if (group === 16) notes.push(`rtmfp-cpp tcserver: ${REFERENCE_MS_PER_SESSION_GROUP_16} ms`);
  if (stats.handshakes !== WARMUP_SESSIONS + sessions)
    notes.push(`server counted ${stats.handshakes} handshakes, expected ${WARMUP_SESSIONS + sessions}`);
  return {
    section: 'a',
    name: `server CPU per session (handshake+connect+close), DH ${group}, ${sessions} sequential`,
    value: perSession,
    unit: 'ms',
    baseline: `DH keygen+secret ${formatNumber(dh)} ms`,
    ratio: perSession / dh,
    note: notes.join('; '),
  };
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
  await warmUp(url, group, 1);
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
  if (clients >= 200) notes.push('rtmfp-cpp collapses to 5–40/s at 200');
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
