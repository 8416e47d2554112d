import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type { BenchContext } from './clients.ts';
import { startDevProcess } from './dev-process.ts';
import { LiveSource, STREAM_BITS_PER_S } from './live-source.ts';
import { REFERENCE_ENV, startTcserver, threadsCpuMs } from './reference.bench.ts';
import { formatNumber, type Row } from './report.ts';
import { median } from './sessions.bench.ts';
import { CLIENT_CPU, hasTaskset, pin, SERVER_CPU, TCLOAD_ENV } from './tcload.bench.ts';

/**
 * Live fan-out (issue 10): server CPU per delivered media message and memory per player, for
 * fnhost (`fnhost dev`, the whole node) and, with FNHOST_BENCH_TCSERVER, rtmfp-cpp's tcserver,
 * in the same run. One sdk publisher sends a ~290 kbit/s stream in real time (live-source.ts);
 * tcload's play mode (../shared/tools/tcload.cpp `-P`, rtmfp-cpp's client, FNHOST_BENCH_TCLOAD)
 * plays it with 1, 10 and 100 players. Servers on one core, tcload and the publisher on the
 * other; rounds alternate between the servers. Delivered = the audio and video messages
 * tcload's players counted (its per-second lines), the same count for both servers; CPU = all
 * the server's threads (/proc schedstat) over the seconds when every player was playing.
 */

export const FANOUT_STEP_MS = 300_000;
const PLAYER_COUNTS = [1, 10, 100] as const;
/** tcload -d per player count: 100 players take up to ~10 s to connect on a busy machine (DH 16 each). */
const PLAY_SECONDS: Record<(typeof PLAYER_COUNTS)[number], number> = { 1: 8, 10: 8, 100: 20 };
/** tcload -s: players start this far apart (ms), so connects do not pile onto one second. */
const STAGGER_MS = 10;
/** Seconds of every player playing skipped before the measured window (keyframe waits, acks settling). */
const SETTLE_LINES = 2;
const ROUNDS = 2;
/** Beyond its -d: connects and the drain (tcload gives its drain 5 s). */
const RUN_SLACK_MS = 20_000;
const STREAM_NAME = 'fanout';
/** Media messages a player gets a second: 25 video frames and 44.1 kHz / 1024 audio frames. */
const MESSAGES_PER_S = 25 + 44_100 / 1024;

/** One of tcload's per-second lines as this process read it, with the server's state then. */
interface Sample {
  atMs: number;
  playing: number;
  failed: number;
  /** Video and audio messages a second, all players together (tcload's rate over its last second). */
  messagesPerS: number;
  serverCpuMs: number;
  serverRssKb: number;
}

/** What one tcload -P run measured over its steady window. */
interface PlayRun {
  /** Server CPU µs per delivered media message. */
  usPerMessage: number;
  /** Delivered ÷ what the players should have got (players × MESSAGES_PER_S × seconds). */
  delivered: number;
  rssKb: number;
  seconds: number;
}

const LINE =
  /^t=[0-9.]+ connected=(\d+) playing=(\d+) failed=(\d+)\s+video ([0-9.]+) fr\/s .* audio ([0-9.]+) fr\/s/;

function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

/** Runs tcload -P against `url`'s stream and samples the server at each of its per-second lines. */
function playRun(
  binary: string,
  url: string,
  pid: number,
  players: number,
  pinned: boolean,
): Promise<Sample[]> {
  const seconds = PLAY_SECONDS[players as (typeof PLAYER_COUNTS)[number]];
  const args = [
    '-P',
    '-n',
    String(players),
    '-d',
    String(seconds),
    '-s',
    String(STAGGER_MS),
    `${url}#${STREAM_NAME}`,
  ];
  const child = pinned
    ? spawn('taskset', ['-c', String(CLIENT_CPU), binary, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
    : spawn(binary, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  const samples: Sample[] = [];
  let summary = '';
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith('SUMMARY play ')) summary = line;
    const m = LINE.exec(line);
    if (!m) return;
    samples.push({
      atMs: performance.now(),
      playing: Number(m[2]),
      failed: Number(m[3]),
      messagesPerS: Number(m[4]) + Number(m[5]),
      serverCpuMs: threadsCpuMs(pid),
      serverRssKb: rssKb(pid),
    });
  });
  const limitMs = seconds * 1000 + RUN_SLACK_MS;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tcload -P -n ${players} did not finish in ${limitMs / 1000} s`));
    }, limitMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (!summary) reject(new Error(`tcload -P -n ${players} exited with ${code} and no SUMMARY line`));
      else resolve(samples);
    });
  });
}

/** The steady window of a run: from SETTLE_LINES after every player plays to the last line. */
function steadyFigures(samples: Sample[], players: number, server: string): PlayRun {
  const first = samples.findIndex((s) => s.playing === players);
  const from = first + SETTLE_LINES;
  const to = samples.length - 1;
  if (first < 0 || to - from < 2) {
    const last = samples.at(-1);
    throw new Error(
      `${server}: ${last?.playing ?? 0}/${players} players playing (${last?.failed ?? 0} failed), ` +
        `too short a steady window (${samples.length} lines): is the stream published?`,
    );
  }
  let messages = 0;
  for (let i = from + 1; i <= to; i++)
    messages += (samples[i].messagesPerS * (samples[i].atMs - samples[i - 1].atMs)) / 1000;
  const seconds = (samples[to].atMs - samples[from].atMs) / 1000;
  if (messages === 0) throw new Error(`${server}: ${players} players playing but no media delivered`);
  return {
    usPerMessage: ((samples[to].serverCpuMs - samples[from].serverCpuMs) * 1000) / messages,
    delivered: messages / (players * MESSAGES_PER_S * seconds),
    rssKb: samples[to].serverRssKb,
    seconds,
  };
}

interface Server {
  name: string;
  url: string;
  pid: number;
}

/** One publish + tcload run on `server`. */
async function measure(binary: string, server: Server, players: number, pinned: boolean): Promise<PlayRun> {
  const source = await LiveSource.publish(server.url, STREAM_NAME);
  try {
    return steadyFigures(
      await playRun(binary, server.url, server.pid, players, pinned),
      players,
      server.name,
    );
  } finally {
    await source.stop();
  }
}

function skipped(why: string): Row[] {
  return [{ section: 'o', name: 'live fan-out under tcload -P', unit: 'µs', note: `skipped: ${why}` }];
}

export async function fanoutFigures(ctx: BenchContext): Promise<Row[]> {
  const binary = process.env[TCLOAD_ENV];
  if (!binary)
    return skipped(
      `set ${TCLOAD_ENV} to a built tcload (../shared/tools/tcload.cpp): its play mode is the players, a client neither server wrote`,
    );
  const cpus = availableParallelism();
  const pinned = cpus >= 2 && hasTaskset();
  const fnhost = await startDevProcess();
  const reference = process.env[REFERENCE_ENV] ? await startTcserver(process.env[REFERENCE_ENV]) : undefined;
  try {
    const servers: Server[] = [{ name: 'fnhost', url: fnhost.url, pid: fnhost.pid }];
    if (reference) servers.push({ name: 'tcserver', url: reference.url, pid: reference.child.pid ?? -1 });
    if (pinned) {
      for (const s of servers) pin(s.pid, String(SERVER_CPU));
      pin(process.pid, String(CLIENT_CPU));
    }
    const where = pinned
      ? `servers on CPU ${SERVER_CPU}, tcload and the publisher on CPU ${CLIENT_CPU}`
      : 'unpinned (taskset or a second CPU missing)';
    ctx.progress(`${formatNumber(STREAM_BITS_PER_S / 1000)} kbit/s stream; ${where}`);
    // runs[server][count] = one PlayRun per round.
    const runs = servers.map(() => PLAYER_COUNTS.map(() => [] as PlayRun[]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [c, players] of PLAYER_COUNTS.entries()) {
        for (const [k, s] of servers.entries()) {
          const run = await measure(binary, s, players, pinned);
          runs[k][c].push(run);
          ctx.progress(
            `round ${round + 1}, ${players} players, ${s.name}: ${formatNumber(run.usPerMessage)} µs/message, ` +
              `${formatNumber(run.delivered * 100)} % delivered, RSS ${formatNumber(run.rssKb / 1024)} MB over ${formatNumber(run.seconds)} s`,
          );
        }
      }
    }
    const rows: Row[] = PLAYER_COUNTS.map((players, c) => {
      const mine = runs[0][c];
      const theirs = runs[1]?.[c];
      const cost = (r: PlayRun[]) => median(r.map((x) => x.usPerMessage));
      const deliveredText = (name: string, r: PlayRun[]) =>
        `${name} delivered ${r.map((x) => `${formatNumber(x.delivered * 100)} %`).join(', ')}`;
      const roundRatios = theirs ? mine.map((m, i) => m.usPerMessage / theirs[i].usPerMessage) : [];
      return {
        section: 'o',
        name: `server CPU per delivered media message, ${players} player${players === 1 ? '' : 's'} (tcload -P), median of ${ROUNDS}`,
        value: cost(mine),
        unit: 'µs',
        ...(theirs
          ? { baseline: `tcserver ${formatNumber(cost(theirs))} µs`, ratio: median(roundRatios) }
          : {}),
        note: [
          theirs ? `round ratios ${roundRatios.map(formatNumber).join(', ')}` : '',
          deliveredText('fnhost', mine),
          theirs ? deliveredText('tcserver', theirs) : '',
        ]
          .filter(Boolean)
          .join('; '),
      };
    });
    const last = PLAYER_COUNTS.length - 1;
    const perPlayerKb = (k: number) =>
      median(
        runs[k][last].map(
          (r, i) => (r.rssKb - runs[k][0][i].rssKb) / (PLAYER_COUNTS[last] - PLAYER_COUNTS[0]),
        ),
      );
    const mineKb = perPlayerKb(0);
    rows.push({
      section: 'o',
      name: `server memory per player, RSS at ${PLAYER_COUNTS[last]} players − at ${PLAYER_COUNTS[0]}, ÷ ${PLAYER_COUNTS[last] - PLAYER_COUNTS[0]}`,
      value: mineKb,
      unit: 'kB',
      ...(reference
        ? { baseline: `tcserver ${formatNumber(perPlayerKb(1))} kB`, ratio: mineKb / perPlayerKb(1) }
        : {}),
      note: `RSS while playing, no forced GC; fnhost ${runs[0][0].map((r) => formatNumber(r.rssKb / 1024)).join(', ')} → ${runs[0][last].map((r) => formatNumber(r.rssKb / 1024)).join(', ')} MB`,
    });
    return rows;
  } finally {
    reference?.child.kill('SIGKILL');
    await fnhost.stop();
    if (pinned) pin(process.pid, `0-${cpus - 1}`);
  }
}
