import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { MESSAGES_PER_S } from './live-source.ts';
import { threadsCpuMs } from './reference.bench.ts';
import { CLIENT_CPU } from './tcload.bench.ts';

/**
 * One run of tcload's play mode (../shared/tools/tcload.cpp `-P`: N players of one stream,
 * a line a second with what they received) read as it runs: at each of its lines the server's
 * CPU (all threads, /proc schedstat) and RSS are read too, so a window of steady playing gives
 * server CPU per delivered message.
 */

/** tcload -s: players start this far apart (ms), so connects do not pile onto one second. */
const STAGGER_MS = 10;
/** Seconds of every player playing skipped before the measured window (keyframe waits, acks settling). */
const SETTLE_LINES = 2;
/** Beyond its -d: connects and the drain (tcload gives its drain 5 s). */
const RUN_SLACK_MS = 20_000;

/** One of tcload's per-second lines as this process read it, with the server's state then. */
export interface Sample {
  atMs: number;
  playing: number;
  failed: number;
  /** Video and audio messages a second, all players together (tcload's rate over its last second). */
  messagesPerS: number;
  serverCpuMs: number;
  serverRssKb: number;
}

/** What one tcload -P run measured over its steady window. */
export interface PlayRun {
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

/** Runs tcload -P on `streamUrl` (`rtmfp://…/app#stream`) for `seconds` and samples the server at each of its per-second lines. */
export function playRun(
  binary: string,
  streamUrl: string,
  pid: number,
  players: number,
  seconds: number,
  pinned: boolean,
): Promise<Sample[]> {
  const args = ['-P', '-n', String(players), '-d', String(seconds), '-s', String(STAGGER_MS), streamUrl];
  const child = pinned
    ? spawn('taskset', ['-c', String(CLIENT_CPU), binary, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
    : spawn(binary, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  const samples: Sample[] = [];
  let summary = '';
  let serverGone = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith('SUMMARY play ')) summary = line;
    const m = LINE.exec(line);
    if (!m || serverGone) return;
    try {
      samples.push({
        atMs: performance.now(),
        playing: Number(m[2]),
        failed: Number(m[3]),
        messagesPerS: Number(m[4]) + Number(m[5]),
        serverCpuMs: threadsCpuMs(pid),
        serverRssKb: rssKb(pid),
      });
    } catch {
      // Its /proc entry is gone: the server exited (tcserver has been seen to die under this load).
      serverGone = true;
      child.kill('SIGKILL');
    }
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
      if (serverGone) reject(new Error(`the server (pid ${pid}) exited while ${players} players played`));
      else if (!summary) reject(new Error(`tcload -P -n ${players} exited with ${code} and no SUMMARY line`));
      else resolve(samples);
    });
  });
}

/** The steady window of a run: from SETTLE_LINES after every player plays to the last line. */
export function steadyFigures(samples: Sample[], players: number, server: string): PlayRun {
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
