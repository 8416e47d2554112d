import { availableParallelism } from 'node:os';
import type { BenchContext } from './clients.ts';
import { startDevProcess } from './dev-process.ts';
import { LiveSource, MESSAGES_PER_S, STREAM_BITS_PER_S } from './live-source.ts';
import { REFERENCE_ENV, startTcserver, threadsCpuMs } from './reference.bench.ts';
import { formatNumber, type Row } from './report.ts';
import { median } from './sessions.bench.ts';
import { CLIENT_CPU, hasTaskset, pin, SERVER_CPU, TCLOAD_ENV } from './tcload.bench.ts';
import { type PlayRun, playRun, steadyFigures } from './tcload-play.ts';

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
const ROUNDS = 2;
const STREAM_NAME = 'fanout';
/** The publisher-alone reading: after this long publishing, over this long. */
const INGEST_SETTLE_MS = 2_000;
const INGEST_WINDOW_MS = 5_000;

interface Server {
  name: string;
  url: string;
  pid: number;
}

/** One publish + tcload run on `server`. */
async function measure(binary: string, server: Server, players: number, pinned: boolean): Promise<PlayRun> {
  const source = await LiveSource.publish(server.url, STREAM_NAME);
  try {
    const seconds = PLAY_SECONDS[players as (typeof PLAYER_COUNTS)[number]];
    return steadyFigures(
      await playRun(binary, `${server.url}#${STREAM_NAME}`, server.pid, players, seconds, pinned),
      players,
      server.name,
    );
  } finally {
    await source.stop();
  }
}

/** Server CPU ms a second while the publisher alone sends: the stream's cost before any player. */
async function ingestCpu(server: Server): Promise<number> {
  const source = await LiveSource.publish(server.url, STREAM_NAME);
  try {
    await new Promise((r) => setTimeout(r, INGEST_SETTLE_MS));
    const before = threadsCpuMs(server.pid);
    await new Promise((r) => setTimeout(r, INGEST_WINDOW_MS));
    return ((threadsCpuMs(server.pid) - before) * 1000) / INGEST_WINDOW_MS;
  } finally {
    await source.stop();
  }
}

function ingestRow(ingest: (number | Error)[][]): Row {
  const name = 'server CPU with the publisher alone (no player), per second of stream';
  const numbers = (v: (number | Error)[]) => v.filter((x): x is number => typeof x === 'number');
  const [mine, theirs] = [numbers(ingest[0]), numbers(ingest[1] ?? [])];
  const problems = ingest.flatMap((v, k) =>
    v.flatMap((x, i) =>
      x instanceof Error ? [`${k ? 'tcserver' : 'fnhost'} round ${i + 1}: ${x.message}`] : [],
    ),
  );
  if (mine.length === 0) return { section: 'o', name, unit: 'ms/s', error: problems.join('; ') };
  return {
    section: 'o',
    name,
    value: median(mine),
    unit: 'ms/s',
    ...(theirs.length > 0
      ? { baseline: `tcserver ${formatNumber(median(theirs))} ms/s`, ratio: median(mine) / median(theirs) }
      : {}),
    note: [
      `what the 1- and 10-player rows carry besides the fan-out; rounds: fnhost ${mine.map(formatNumber).join(', ')}` +
        (theirs.length > 0 ? `, tcserver ${theirs.map(formatNumber).join(', ')}` : ''),
      ...problems,
    ].join('; '),
  };
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
  const reference = process.env[REFERENCE_ENV];
  const where = pinned
    ? `servers on CPU ${SERVER_CPU}, tcload and the publisher on CPU ${CLIENT_CPU}`
    : 'unpinned (taskset or a second CPU missing)';
  ctx.progress(`${formatNumber(STREAM_BITS_PER_S / 1000)} kbit/s stream; ${where}`);
  if (pinned) pin(process.pid, String(CLIENT_CPU));
  try {
    // runs[server][count][round]: what it measured, or why it could not.
    // ingest[server][round]: server CPU ms a second with the publisher and no player.
    const ingest: (number | Error)[][] = reference ? [[], []] : [[]];
    const runs = [0, ...(reference ? [1] : [])].map(() => PLAYER_COUNTS.map(() => [] as (PlayRun | Error)[]));
    for (let round = 0; round < ROUNDS; round++) {
      // Fresh servers each round: freed memory is not given back to the system, so the memory
      // per player is the growth from 1 to 100 players of a process that never had more.
      const fnhost = await startDevProcess();
      const tcserver = reference ? await startTcserver(reference) : undefined;
      try {
        const servers: Server[] = [{ name: 'fnhost', url: fnhost.url, pid: fnhost.pid }];
        if (tcserver) servers.push({ name: 'tcserver', url: tcserver.url, pid: tcserver.child.pid ?? -1 });
        if (pinned) for (const s of servers) pin(s.pid, String(SERVER_CPU));
        // Whoever went first last round goes second this one: neither always gets the fresher machine.
        const order = round % 2 ? [...servers.keys()].reverse() : [...servers.keys()];
        for (const k of order) {
          const cost = await ingestCpu(servers[k]).catch((e: unknown) =>
            e instanceof Error ? e : new Error(String(e)),
          );
          ingest[k].push(cost);
          ctx.progress(
            `round ${round + 1}, publisher alone, ${servers[k].name}: ${cost instanceof Error ? `FAILED: ${cost.message}` : `${formatNumber(cost)} ms/s`}`,
          );
        }
        for (const [c, players] of PLAYER_COUNTS.entries()) {
          for (const k of order) {
            const s = servers[k];
            const run = await measure(binary, s, players, pinned).catch((e: unknown) =>
              e instanceof Error ? e : new Error(String(e)),
            );
            runs[k][c].push(run);
            ctx.progress(
              `round ${round + 1}, ${players} players, ${s.name}: ` +
                (run instanceof Error
                  ? `FAILED: ${run.message}`
                  : `${formatNumber(run.usPerMessage)} µs/message, ${formatNumber(run.delivered * 100)} % delivered, ` +
                    `RSS ${formatNumber(run.rssKb / 1024)} MB over ${formatNumber(run.seconds)} s`),
            );
          }
        }
      } finally {
        tcserver?.child.kill('SIGKILL');
        await fnhost.stop();
      }
    }
    return [
      ingestRow(ingest),
      ...PLAYER_COUNTS.map((players, c) => costRow(players, runs[0][c], runs[1]?.[c])),
      fanoutAloneRow(ingest, runs),
      memoryRow(runs),
    ];
  } finally {
    if (pinned) pin(process.pid, `0-${cpus - 1}`);
  }
}

const ok = (runs: (PlayRun | Error)[]) => runs.filter((r): r is PlayRun => !(r instanceof Error));

/** Round by round, what failed: `round 2: the server … exited …`. */
function failures(name: string, runs: (PlayRun | Error)[]): string[] {
  return runs.flatMap((r, i) => (r instanceof Error ? [`${name} round ${i + 1} failed: ${r.message}`] : []));
}

/** The µs per message row of one player count: fnhost's median, tcserver's, the median of the round ratios. */
function costRow(players: number, mine: (PlayRun | Error)[], theirs: (PlayRun | Error)[] | undefined): Row {
  const name = `server CPU per delivered media message, ${players} player${players === 1 ? '' : 's'} (tcload -P), median of ${ROUNDS} rounds`;
  const cost = (r: (PlayRun | Error)[]) => median(ok(r).map((x) => x.usPerMessage));
  const delivered = (who: string, r: (PlayRun | Error)[]) =>
    `${who} delivered ${ok(r)
      .map((x) => `${formatNumber(x.delivered * 100)} %`)
      .join(', ')}`;
  const problems = [...failures('fnhost', mine), ...(theirs ? failures('tcserver', theirs) : [])];
  if (ok(mine).length === 0) return { section: 'o', name, unit: 'µs', error: problems.join('; ') };
  const ratios = theirs
    ? mine.flatMap((m, i) => {
        const t = theirs[i];
        return m instanceof Error || t === undefined || t instanceof Error
          ? []
          : [m.usPerMessage / t.usPerMessage];
      })
    : [];
  const compared = theirs !== undefined && ratios.length > 0;
  return {
    section: 'o',
    name,
    value: cost(mine),
    unit: 'µs',
    ...(compared ? { baseline: `tcserver ${formatNumber(cost(theirs))} µs`, ratio: median(ratios) } : {}),
    note: [
      compared ? `round ratios ${ratios.map(formatNumber).join(', ')}` : '',
      delivered('fnhost', mine),
      theirs && ok(theirs).length > 0 ? delivered('tcserver', theirs) : '',
      ...problems,
    ]
      .filter(Boolean)
      .join('; '),
  };
}

/**
 * µs per message at the most players once the publisher-alone CPU is taken out, round by round:
 * what each delivered message adds, the figure the fan-out path itself decides.
 */
function fanoutAlone(ingest: (number | Error)[], most: (PlayRun | Error)[]): number[] {
  const players = PLAYER_COUNTS[PLAYER_COUNTS.length - 1];
  return most.flatMap((r, i) => {
    const alone = ingest[i];
    if (r instanceof Error || alone === undefined || alone instanceof Error) return [];
    const messagesPerS = r.delivered * players * MESSAGES_PER_S;
    return [r.usPerMessage - (alone * 1000) / messagesPerS];
  });
}

function fanoutAloneRow(ingest: (number | Error)[][], runs: (PlayRun | Error)[][][]): Row {
  const players = PLAYER_COUNTS[PLAYER_COUNTS.length - 1];
  const name = `server CPU per delivered media message, ${players} players, less the publisher-alone CPU`;
  const mine = fanoutAlone(ingest[0], runs[0][PLAYER_COUNTS.length - 1]);
  const theirs = runs[1] ? fanoutAlone(ingest[1], runs[1][PLAYER_COUNTS.length - 1]) : [];
  if (mine.length === 0) return { section: 'o', name, unit: 'µs', error: 'no round with both readings' };
  const us = (v: number[]) => v.map(formatNumber).join(', ');
  return {
    section: 'o',
    name,
    value: median(mine),
    unit: 'µs',
    ...(theirs.length > 0
      ? { baseline: `tcserver ${formatNumber(median(theirs))} µs`, ratio: median(mine) / median(theirs) }
      : {}),
    note: `the fan-out's own cost; rounds: fnhost ${us(mine)}${theirs.length > 0 ? `, tcserver ${us(theirs)}` : ''}`,
  };
}

/** kB per player of each round where both the 1- and the 100-player runs of `server` worked. */
function perPlayerKb(server: (PlayRun | Error)[][]): number[] {
  const fewest = server[0];
  const most = server[server.length - 1];
  const added = PLAYER_COUNTS[PLAYER_COUNTS.length - 1] - PLAYER_COUNTS[0];
  return most.flatMap((m, i) => {
    const f = fewest[i];
    return m instanceof Error || f instanceof Error ? [] : [(m.rssKb - f.rssKb) / added];
  });
}

function memoryRow(runs: (PlayRun | Error)[][][]): Row {
  const most = PLAYER_COUNTS[PLAYER_COUNTS.length - 1];
  const fewest = PLAYER_COUNTS[0];
  const name = `server memory per player, RSS at ${most} players − at ${fewest}, ÷ ${most - fewest}`;
  const mine = perPlayerKb(runs[0]);
  const theirs = runs[1] ? perPlayerKb(runs[1]) : [];
  if (mine.length === 0)
    return {
      section: 'o',
      name,
      unit: 'kB',
      error: `no round had both the ${fewest}- and the ${most}-player run`,
    };
  const kb = (v: number[]) => v.map(formatNumber).join(', ');
  return {
    section: 'o',
    name,
    value: median(mine),
    unit: 'kB',
    ...(theirs.length > 0
      ? { baseline: `tcserver ${formatNumber(median(theirs))} kB`, ratio: median(mine) / median(theirs) }
      : {}),
    note: `RSS while playing, a fresh server each round, no forced GC; rounds: fnhost ${kb(mine)} kB${theirs.length > 0 ? `, tcserver ${kb(theirs)} kB` : ''}`,
  };
}
