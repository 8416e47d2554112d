import { execFileSync, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { BenchContext } from './clients.ts';
import { openClose, REFERENCE_ENV, startTcserver, threadsCpuMs } from './reference.bench.ts';
import { formatNumber, type Row } from './report.ts';
import { median } from './sessions.bench.ts';

/**
 * Both servers loaded by a client neither of them wrote: `tcload` (../shared/tools/tcload.cpp, on
 * rtmfp-cpp's library, built by the user; FNHOST_BENCH_TCLOAD names it, nothing here fetches or
 * builds it). Each of its simulated clients is a fresh RTMFP instance that handshakes (DH 16,
 * HMAC and session sequence numbers, as tcconn), connects, then ends abruptly with a Session
 * Close Ack. With FNHOST_BENCH_TCSERVER too, rtmfp-cpp's tcserver is measured the same way in
 * the same run. Servers are pinned to one core and tcload to the other, as rtmfp-cpp's own
 * figures were taken; the CPU of a server is all its threads' run time (/proc schedstat).
 */

export const TCLOAD_ENV = 'FNHOST_BENCH_TCLOAD';

/** tcload's choice against both servers (rtmfp-cpp prefers 16, then 14, then 2). */
const GROUP = 16;
const WARMUP_SESSIONS = 300;
const ROUNDS = 10;
const SESSIONS_PER_ROUND = 80;
const CONCURRENCY = 10;
/** Sessions with our own client per round, interleaved with tcload's, for the side-by-side row. */
const OWN_CLIENT_SESSIONS = 30;
/** The rates the issue asks for: 600 sessions, 10 and 200 at a time. */
const LOAD_SESSIONS = 600;
const LOAD_CONCURRENCY = [10, 200];
/** A session slower than this from start to connect counts as stalled. */
const SLOW_SESSION_S = 2;
/** One tcload run is stopped after this (tcserver collapses under 200 at once: minutes). */
const RUN_TIMEOUT_MS = 45_000;
/** The core the servers are pinned to, and the one tcload and our clients get. */
export const SERVER_CPU = 1;
export const CLIENT_CPU = 0;

/** tcload's `SUMMARY connect …` line. */
interface TcloadSummary {
  connected: number;
  failed: number;
  ratePerS: number;
  latP99S: number;
  latMaxS: number;
}

function parseSummary(output: string): TcloadSummary | undefined {
  const line = output.split('\n').find((l) => l.startsWith('SUMMARY connect '));
  if (!line) return undefined;
  const field = (name: string) => Number(new RegExp(`\\b${name}=([0-9.]+)`).exec(line)?.[1] ?? Number.NaN);
  return {
    connected: field('connected'),
    failed: field('failed'),
    ratePerS: field('rate_connect_per_s'),
    latP99S: field('lat_p99'),
    latMaxS: field('lat_max'),
  };
}

/** Whether `taskset` (util-linux) can pin processes here. */
export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pins every thread of `pid` to `cpus` (a taskset list; threads started later inherit it). */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** Runs tcload to the end (or RUN_TIMEOUT_MS); its summary, or why there is none. */
function runTcload(
  binary: string,
  url: string,
  sessions: number,
  concurrency: number,
  pinned: boolean,
): Promise<TcloadSummary> {
  const args = ['-n', String(sessions), '-c', String(concurrency), url];
  const child = pinned
    ? spawn('taskset', ['-c', String(CLIENT_CPU), binary, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.resume();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`tcload -n ${sessions} -c ${concurrency} did not finish in ${RUN_TIMEOUT_MS / 1000} s`),
      );
    }, RUN_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      const summary = parseSummary(output);
      if (!summary) reject(new Error(`tcload exited with ${code} and no SUMMARY line`));
      else resolve(summary);
    });
  });
}

interface Target {
  name: string;
  url: string;
  pid: number;
}

/** Server CPU ms per session: tcload's sessions and our client's, round after round, server after server. */
async function cpuPerSession(
  ctx: BenchContext,
  binary: string,
  targets: Target[],
  pinned: boolean,
): Promise<{ tcload: number[][]; own: number[][] }> {
  const tcload = targets.map(() => [] as number[]);
  const own = targets.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [k, t] of targets.entries()) {
      let before = threadsCpuMs(t.pid);
      const summary = await runTcload(binary, t.url, SESSIONS_PER_ROUND, CONCURRENCY, pinned);
      if (summary.connected !== SESSIONS_PER_ROUND)
        throw new Error(`${t.name}: tcload connected ${summary.connected}/${SESSIONS_PER_ROUND}`);
      tcload[k].push((threadsCpuMs(t.pid) - before) / SESSIONS_PER_ROUND);
      before = threadsCpuMs(t.pid);
      for (let i = 0; i < OWN_CLIENT_SESSIONS; i++) await openClose(t.url, GROUP);
      own[k].push((threadsCpuMs(t.pid) - before) / OWN_CLIENT_SESSIONS);
    }
    ctx.progress(
      `round ${round + 1}: ` +
        targets
          .map(
            (t, k) =>
              `${t.name} ${formatNumber(tcload[k][round])} ms (tcload), ${formatNumber(own[k][round])} ms (ours)`,
          )
          .join('; '),
    );
  }
  return { tcload, own };
}

export async function tcloadFigures(ctx: BenchContext): Promise<Row[]> {
  const binary = process.env[TCLOAD_ENV];
  if (!binary) return [];
  const cpus = availableParallelism();
  const pinned = cpus >= 2 && hasTaskset();
  const fnhost = await ctx.startServer();
  const targets: Target[] = [{ name: 'fnhost', url: fnhost.url(), pid: fnhost.pid }];
  const reference = process.env[REFERENCE_ENV] ? await startTcserver(process.env[REFERENCE_ENV]) : undefined;
  try {
    if (reference) targets.push({ name: 'tcserver', url: reference.url, pid: reference.child.pid! });
    if (pinned) {
      for (const t of targets) pin(t.pid, String(SERVER_CPU));
      // Our own client (this process) stays off the servers' core too.
      pin(process.pid, String(CLIENT_CPU));
    }
    const where = pinned
      ? `servers on CPU ${SERVER_CPU}, tcload on CPU ${CLIENT_CPU}`
      : 'unpinned (taskset or a second CPU missing)';
    ctx.progress(`warming up with ${WARMUP_SESSIONS} tcload sessions per server (${where})`);
    for (const t of targets) await runTcload(binary, t.url, WARMUP_SESSIONS, CONCURRENCY, pinned);

    const { tcload, own } = await cpuPerSession(ctx, binary, targets, pinned);
    const [mineTc, theirsTc] = tcload.map(median);
    const [mineOwn, theirsOwn] = own.map(median);
    // This machine's speed drifts by ±15 % within minutes: each round's ratio compares the two
    // servers a few seconds apart, so the median of those is the figure, not a ratio of medians.
    const ratios = (costs: number[][]) => costs[0].map((mine, i) => mine / costs[1][i]).sort((a, b) => a - b);
    const range = (r: number[]) => `round ratios ${formatNumber(r[0])}–${formatNumber(r[r.length - 1])}`;
    const rows: Row[] = [
      {
        section: 'h',
        name: `server CPU per session, DH ${GROUP}, tcload -c ${CONCURRENCY} (rtmfp-cpp client), median of ${ROUNDS} × ${SESSIONS_PER_ROUND}`,
        value: mineTc,
        unit: 'ms',
        ...(reference
          ? { baseline: `tcserver ${formatNumber(theirsTc)} ms`, ratio: median(ratios(tcload)) }
          : { baseline: `our client ${formatNumber(mineOwn)} ms`, ratio: mineTc / mineOwn }),
        note: reference ? `${where}; ratio = median of ${range(ratios(tcload))}` : where,
      },
      {
        section: 'h',
        name: `server CPU per session, DH ${GROUP}, our client, sequential, median of ${ROUNDS} × ${OWN_CLIENT_SESSIONS}`,
        value: mineOwn,
        unit: 'ms',
        ...(reference
          ? { baseline: `tcserver ${formatNumber(theirsOwn)} ms`, ratio: median(ratios(own)) }
          : {}),
        note: reference
          ? `same rounds as the tcload row; median of ${range(ratios(own))}`
          : 'same rounds as the tcload row',
      },
    ];

    for (const concurrency of LOAD_CONCURRENCY) {
      const results = new Map<string, TcloadSummary | Error>();
      for (const t of targets) {
        try {
          results.set(t.name, await runTcload(binary, t.url, LOAD_SESSIONS, concurrency, pinned));
        } catch (e) {
          results.set(t.name, e instanceof Error ? e : new Error(String(e)));
        }
      }
      const describe = (r: TcloadSummary | Error | undefined) =>
        r === undefined
          ? ''
          : r instanceof Error
            ? r.message
            : `${formatNumber(r.ratePerS)}/s, p99 ${formatNumber(r.latP99S)} s, slowest ${formatNumber(r.latMaxS)} s, ${r.failed} failed`;
      const mine = results.get('fnhost');
      const theirs = results.get('tcserver');
      ctx.progress(
        `tcload -n ${LOAD_SESSIONS} -c ${concurrency}: fnhost ${describe(mine)}; tcserver ${describe(theirs)}`,
      );
      if (mine instanceof Error || mine === undefined) {
        rows.push({
          section: 'h',
          name: `tcload -n ${LOAD_SESSIONS} -c ${concurrency}`,
          unit: 'sessions/s',
          error: describe(mine),
        });
        continue;
      }
      const stalled = mine.latMaxS > SLOW_SESSION_S ? `; SLOWEST OVER ${SLOW_SESSION_S} s` : '';
      rows.push({
        section: 'h',
        name: `sessions/s, tcload -n ${LOAD_SESSIONS} -c ${concurrency}, DH ${GROUP}`,
        value: mine.ratePerS,
        unit: 'sessions/s',
        ...(theirs && !(theirs instanceof Error)
          ? {
              baseline: `tcserver ${formatNumber(theirs.ratePerS)}/s`,
              ratio: mine.ratePerS / theirs.ratePerS,
            }
          : {}),
        note: `fnhost slowest session ${formatNumber(mine.latMaxS)} s (p99 ${formatNumber(mine.latP99S)} s)${stalled}${theirs ? `; tcserver ${describe(theirs)}` : ''}`,
      });
    }
    return rows;
  } finally {
    reference?.child.kill('SIGKILL');
    if (pinned) pin(process.pid, `0-${cpus - 1}`);
  }
}
