import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import { NetConnection } from '../../sdk/client.ts';
import { type BenchContext, closeSessions, openSessions } from './clients.ts';
import { formatNumber, type Row } from './report.ts';
import { median } from './sessions.bench.ts';

/**
 * fnhost against the reference server in the same run: rtmfp-cpp's `tcserver`, when
 * FNHOST_BENCH_TCSERVER names a binary the user built (nothing here fetches or builds it).
 * Sessions alternate between the two servers, one at a time, so both see the same machine
 * (the 2 shared cores here drift by ±10 % within minutes); the CPU of each is the run time of
 * all its threads from /proc (schedstat, ns), read the same way for both.
 */

export const REFERENCE_ENV = 'FNHOST_BENCH_TCSERVER';

const GROUP = 16;
/** Every fourth in DH 16, the rest in DH 2: JIT warm-up for fnhost, the same for tcserver. */
const WARMUP_SESSIONS = 1_000;
const ROUNDS = 5;
const SESSIONS_PER_ROUND = 60;
const OPEN_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 5_000;
const BURST_CLIENTS = 200;
const BURST_REPEATS = 3;
const BURST_TIMEOUT_MS = 60_000;

/** ms of CPU all threads of `pid` have run, from /proc/PID/task/TID/schedstat. */
export function threadsCpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e6;
}

async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export async function openClose(url: string, group: number): Promise<void> {
  const nc = await NetConnection.open(url, { groups: [group], timeoutMs: OPEN_TIMEOUT_MS });
  await nc.close();
}

/** Starts rtmfp-cpp's tcserver on a free port of 127.0.0.1 and waits until it accepts a session. */
export async function startTcserver(binary: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freeUdpPort();
  const child = spawn(binary, ['-B', `127.0.0.1:${port}`], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', resolve);
  });
  const url = `rtmfp://127.0.0.1:${port}/bench`;
  // Ready when a session opens.
  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      await openClose(url, 2);
      return { child, url };
    } catch (e) {
      if (performance.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${binary} did not accept a session: ${e instanceof Error ? e.message : e}`);
      }
    }
  }
}

/**
 * Server CPU per DH 16 session, fnhost ÷ tcserver, sessions interleaved; then the session rate
 * of bursts of simultaneous opens, the servers taking turns.
 */
export async function referenceCpu(ctx: BenchContext): Promise<Row[]> {
  const binary = process.env[REFERENCE_ENV];
  if (!binary) return [];
  const fnhost = await ctx.startServer();
  const reference = await startTcserver(binary);
  try {
    const targets = [
      { url: fnhost.url(), pid: fnhost.pid },
      { url: reference.url, pid: reference.child.pid! },
    ];
    ctx.progress(`warming up both servers with ${WARMUP_SESSIONS} sessions each`);
    for (let i = 0; i < WARMUP_SESSIONS; i++)
      for (const t of targets) await openClose(t.url, i % 4 === 0 ? GROUP : 2);
    const totals = [0, 0];
    const ratios: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const before = targets.map((t) => threadsCpuMs(t.pid));
      for (let i = 0; i < SESSIONS_PER_ROUND; i++) for (const t of targets) await openClose(t.url, GROUP);
      const used = targets.map((t, k) => threadsCpuMs(t.pid) - before[k]);
      totals[0] += used[0];
      totals[1] += used[1];
      ratios.push(used[0] / used[1]);
      ctx.progress(`round ${round + 1}: fnhost ÷ tcserver ${formatNumber(used[0] / used[1])}`);
    }
    const sessions = ROUNDS * SESSIONS_PER_ROUND;
    const mine = totals[0] / sessions;
    const theirs = totals[1] / sessions;
    ratios.sort((a, b) => a - b);

    // Bursts: BURST_CLIENTS open at once, the two servers taking turns.
    const rates: number[][] = [[], []];
    for (let i = 0; i < BURST_REPEATS; i++) {
      for (const [k, t] of targets.entries()) {
        const start = performance.now();
        const conns = await openSessions(t.url, BURST_CLIENTS, GROUP, BURST_TIMEOUT_MS);
        rates[k].push(BURST_CLIENTS / ((performance.now() - start) / 1000));
        await closeSessions(conns);
      }
      ctx.progress(
        `burst ${i + 1}: fnhost ${formatNumber(rates[0][i])}/s, tcserver ${formatNumber(rates[1][i])}/s`,
      );
    }
    const [myRate, theirRate] = rates.map(median);
    return [
      {
        section: 'a',
        name: `server CPU per session, DH ${GROUP}, warm, interleaved with rtmfp-cpp tcserver, ${ROUNDS} × ${SESSIONS_PER_ROUND}`,
        value: mine,
        unit: 'ms',
        baseline: `tcserver ${formatNumber(theirs)} ms`,
        ratio: mine / theirs,
        note: `round ratios ${formatNumber(ratios[0])}–${formatNumber(ratios[ratios.length - 1])}; CPU from /proc schedstat`,
      },
      {
        section: 'b',
        name: `sessions/s, ${BURST_CLIENTS} clients opening at once, DH ${GROUP}, turns with rtmfp-cpp tcserver`,
        value: myRate,
        unit: 'sessions/s',
        baseline: `tcserver ${formatNumber(theirRate)}/s`,
        ratio: myRate / theirRate,
        note: `median of ${BURST_REPEATS}; fnhost ${rates[0].map(formatNumber).join(', ')}; tcserver ${rates[1].map(formatNumber).join(', ')}`,
      },
    ];
  } finally {
    reference.child.kill('SIGKILL');
  }
}
