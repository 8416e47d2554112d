import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { balanceFigures } from './balance.bench.ts';
import { type BenchContext, since } from './clients.ts';
import { clusterFigures } from './cluster.bench.ts';
import { echoRate } from './echo.bench.ts';
import { FANOUT_STEP_MS, fanoutFigures } from './fanout.bench.ts';
import { groupFigures } from './groups.bench.ts';
import { handlerLatency } from './handlers.bench.ts';
import { memoryPerSession } from './memory.bench.ts';
import { countingCost } from './metrics.bench.ts';
import { p2pStoreFigures } from './p2p-store.bench.ts';
import { runPacketCryptoBench } from './packet-crypto.bench.ts';
import { publicationsStoreFigures } from './publications-store.bench.ts';
import { REFERENCE_ENV, referenceCpu } from './reference.bench.ts';
import { relayFigures } from './relay.bench.ts';
import { rendezvousFigures } from './rendezvous.bench.ts';
import { formatNumber, formatTable, type Row } from './report.ts';
import { lifetimeCost, sealAndSendCost } from './send.bench.ts';
import { ServerProcess } from './server-process.ts';
import { burstRate, sessionCpu } from './sessions.bench.ts';
import { TCLOAD_ENV, tcloadFigures } from './tcload.bench.ts';

/**
 * `npm run bench [-- --json] [-- --only SECTIONS]`: every benchmark (or sections, e.g. `ab`) in turn, each against a baseline measured in
 * the same run. Progress goes to stderr, the table (or JSON) to stdout. Servers run in child
 * processes (server-process.ts) so their CPU and memory are measured apart from the clients.
 * A failing or overrunning step becomes an error row; the rest still run.
 */

/** The tcload step's own time (FNHOST_BENCH_TCLOAD): warm-up, rounds, two 600-session runs per server. */
const TCLOAD_STEP_MS = 240_000;
/** The whole suite stays under this (more with the optional tcload steps); a step past it is skipped. */
const SUITE_BUDGET_MS = 170_000 + (process.env[TCLOAD_ENV] ? TCLOAD_STEP_MS + FANOUT_STEP_MS : 0);
/** Least time worth starting a step with. */
const MIN_STEP_MS = 5_000;

interface Step {
  section: string;
  name: string;
  unit: string;
  timeoutMs: number;
  run(ctx: BenchContext): Promise<Row[]>;
}

const suiteStart = performance.now();

function progress(message: string): void {
  process.stderr.write(`[bench ${formatNumber(since(suiteStart) / 1000).padStart(6)} s] ${message}\n`);
}

/** The session rate of the smallest burst per DH group: what larger bursts are compared with. */
const smallBurst = new Map<number, { clients: number; rate: number }>();

function burstStep(clients: number, group: number): Step {
  return {
    section: 'b',
    name: `sessions/s, ${clients} clients opening at once, DH ${group}`,
    unit: 'sessions/s',
    timeoutMs: 75_000,
    async run(ctx) {
      const { row, rate } = await burstRate(ctx, clients, group, smallBurst.get(group));
      if (!smallBurst.has(group)) smallBurst.set(group, { clients, rate });
      return [row];
    },
  };
}

const STEPS: Step[] = [
  {
    section: 'a',
    name: 'server CPU per session, DH 16 and 2',
    unit: 'ms',
    timeoutMs: 60_000,
    run: sessionCpu,
  },
  ...(process.env[REFERENCE_ENV]
    ? [
        {
          section: 'a',
          name: 'server CPU per session and burst rate, DH 16, against tcserver',
          unit: 'ms',
          timeoutMs: 120_000,
          run: referenceCpu,
        },
      ]
    : []),
  burstStep(10, 16),
  burstStep(50, 16),
  burstStep(200, 16),
  burstStep(10, 2),
  burstStep(200, 2),
  {
    section: 'c',
    name: 'echo calls/s, 1 client × 32 in flight',
    unit: 'calls/s',
    timeoutMs: 30_000,
    run: async (ctx) => [await echoRate(ctx, 1, 32, 3_000)],
  },
  {
    section: 'c',
    name: 'echo calls/s, 10 clients × 32 in flight',
    unit: 'calls/s',
    timeoutMs: 30_000,
    run: async (ctx) => [await echoRate(ctx, 10, 32, 3_000)],
  },
  {
    section: 'd',
    name: 'packet crypto seal+open',
    unit: 'µs',
    timeoutMs: 30_000,
    run: async () => packetCryptoRows(),
  },
  {
    section: 'd',
    name: 'encrypt+HMAC+send per 1200-byte packet',
    unit: 'µs',
    timeoutMs: 20_000,
    run: async () => [await sealAndSendCost(2_000)],
  },
  {
    section: 'd',
    name: 'write+send+ack per media message, with and without a lifetime',
    unit: 'µs',
    timeoutMs: 20_000,
    run: async () => [lifetimeCost()],
  },
  {
    section: 'e',
    name: 'server memory per idle session',
    unit: 'kB',
    timeoutMs: 100_000,
    run: memoryPerSession,
  },
  {
    section: 'f',
    name: 'handler latency (isolated-vm)',
    unit: 'µs',
    timeoutMs: 60_000,
    run: handlerLatency,
  },
  {
    section: 'm',
    name: 'metrics: counting in the packet path, one scrape',
    unit: 'ns',
    timeoutMs: 30_000,
    run: countingCost,
  },
  {
    section: 'g',
    name: 'cluster: deploy convergence, Redis round trips per connect',
    unit: 'ms',
    timeoutMs: 90_000,
    run: clusterFigures,
  },
  {
    section: 'p',
    name: 'cluster store: peer lookup, group join and leave on Redis',
    unit: 'µs',
    timeoutMs: 30_000,
    run: p2pStoreFigures,
  },
  {
    section: 'p',
    name: 'cluster store: publication claim, release, get, player count and list on Redis',
    unit: 'µs',
    timeoutMs: 60_000,
    run: publicationsStoreFigures,
  },
  {
    section: 'n',
    name: 'NetGroup: join to member ID, same node and across nodes',
    unit: 'ms',
    timeoutMs: 60_000,
    run: groupFigures,
  },
  {
    section: 'r',
    name: 'P2P rendezvous: connectPeer on one node and across two',
    unit: 'ms',
    timeoutMs: 60_000,
    run: rendezvousFigures,
  },
  {
    section: 'l',
    name: 'relay link bytes ÷ stream bytes, 1 and 20 players on the relaying node',
    unit: '×',
    timeoutMs: 60_000,
    run: relayFigures,
  },
  {
    section: 'i',
    name: 'balancing: handshake redirect CPU, /loadbalancer requests/s',
    unit: 'µs',
    timeoutMs: 60_000,
    run: balanceFigures,
  },
  ...(process.env[TCLOAD_ENV]
    ? [
        {
          section: 'h',
          name: 'server CPU per session and session rates under tcload (rtmfp-cpp client)',
          unit: 'ms',
          timeoutMs: TCLOAD_STEP_MS,
          run: tcloadFigures,
        },
      ]
    : []),
  {
    section: 'o',
    name: 'live fan-out: server CPU per delivered message at 1, 10, 100 players, memory per player',
    unit: 'µs',
    timeoutMs: FANOUT_STEP_MS,
    run: fanoutFigures,
  },
];

/** packet-crypto.bench.ts's rows, the PacketCipher one set against its naive baseline. */
function packetCryptoRows(): Row[] {
  const results = runPacketCryptoBench();
  const naive = results.find((r) => r.name.includes('naive (cipher/hmac per packet)'));
  return results.map((r) => {
    const row: Row = { section: 'd', name: r.name, value: r.value, unit: r.unit };
    if (naive && r.name.includes('PacketCipher seal+open')) {
      row.baseline = `naive ${formatNumber(naive.value)} µs`;
      row.ratio = r.value / naive.value;
    }
    return row;
  });
}

async function runStep(step: Step): Promise<Row[]> {
  const left = SUITE_BUDGET_MS - since(suiteStart);
  if (left < MIN_STEP_MS)
    return [
      { section: step.section, name: step.name, unit: step.unit, error: 'skipped: suite time budget spent' },
    ];
  const servers: ServerProcess[] = [];
  const ctx: BenchContext = {
    progress: (m) => progress(`  ${m}`),
    startServer: async (nodeOptions) => {
      const s = await ServerProcess.start(nodeOptions);
      servers.push(s);
      return s;
    },
  };
  const timeoutMs = Math.min(step.timeoutMs, left);
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`did not finish in ${formatNumber(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
  });
  progress(`${step.section}: ${step.name}`);
  try {
    const rows = await Promise.race([step.run(ctx), overrun]);
    for (const r of rows)
      progress(`  → ${r.name}: ${r.value === undefined ? '' : formatNumber(r.value)} ${r.unit}`);
    return rows;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    progress(`  → FAILED: ${message}`);
    return [{ section: step.section, name: step.name, unit: step.unit, error: message }];
  } finally {
    clearTimeout(timer);
    await Promise.all(servers.map((s) => s.stop()));
  }
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  // Whatever else runs on the machine shares its 2 cores with client and server: say how busy it was.
  const load = loadavg()[0];
  progress(
    `fnhost bench on Node ${process.version}, ${availableParallelism()} CPUs, load ${formatNumber(load)}`,
  );
  // `--only ab` runs sections a and b.
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt >= 0 ? (process.argv[onlyAt + 1] ?? '') : '';
  const rows: Row[] = [];
  for (const step of STEPS) if (!only || only.includes(step.section)) rows.push(...(await runStep(step)));
  const seconds = since(suiteStart) / 1000;
  progress(`done in ${formatNumber(seconds)} s`);
  const failed = rows.filter((r) => r.error).length;
  const out = json
    ? JSON.stringify(
        { node: process.version, cpus: availableParallelism(), loadBefore: load, seconds, rows },
        null,
        2,
      )
    : [
        `fnhost bench — Node ${process.version}, ${availableParallelism()} CPUs, ` +
          `1-min load before ${formatNumber(load)}, ${formatNumber(seconds)} s` +
          (failed ? `, ${failed} failed` : ''),
        '',
        formatTable(rows),
        '',
        'a: server = a child process, CPU of all its threads; clients run in the bench process.',
        process.env[REFERENCE_ENV]
          ? 'a: the interleaved row alternates sessions between fnhost and the tcserver binary given in ' +
            `${REFERENCE_ENV}.`
          : `a: set ${REFERENCE_ENV} to a tcserver binary (rtmfp-cpp, built by you) to measure it in the same run.`,
        'b: ratio vs the smallest burst in the same DH group (≈1 = no collapse).',
        'c: ratio vs raw UDP ping-pong in one process with the same number in flight.',
        'c: echo batches ~16 calls per datagram; the raw ping-pong sends one datagram per round trip.',
        'e: ratio = memory added by all sessions ÷ the idle node, except the growth row (÷ per open session).',
        'f: node side, TC event to answer; ratio = with the handler ÷ the echo handler (no sandbox) path.',
        'g: 3 node processes + redis-server; deploy ratio = whole CLI run ÷ publish-to-converged.',
        'm: in the bench process; ratio vs n++ on a field, which is what the node does per packet (prom-client reads it at scrape).',
        'p: RedisState in the bench process on its own redis-server, one call at a time; ratio vs a bare round trip (TIME).',
        'n: 2 node processes + redis-server, sdk clients in the bench process; one join at a time, each to a fresh group of one member.',
        'r: 2 node processes + redis-server, sdk clients in the bench process; same- and cross-node introductions alternate; step rows: ratio = that step ÷ the cross-node extra.',
        'i: a node process + redis-server, 2 more nodes as redirect targets; ratio vs the same node answering RHello (no onHandshake), or vs /healthz.',
        'l: 2 in-process nodes + redis-server, an sdk publisher on one, sdk players on the other; ratio of 20 players vs 1.',
        process.env[TCLOAD_ENV]
          ? `h: tcload (${TCLOAD_ENV}) against fnhost${process.env[REFERENCE_ENV] ? ' and tcserver' : ''}; ratio vs tcserver, or vs our own client without it.`
          : `h: set ${TCLOAD_ENV} to a built tcload (../shared/tools/tcload.cpp) to load the servers with rtmfp-cpp's client.`,
        process.env[TCLOAD_ENV]
          ? `o: fnhost dev${process.env[REFERENCE_ENV] ? ' and tcserver, rounds alternating' : ''}, an sdk publisher (~290 kbit/s, real time), tcload -P players; ` +
            "message = an audio or video message tcload's players counted; ratio vs tcserver (median of the round ratios)."
          : `o: needs ${TCLOAD_ENV} (tcload -P plays the stream).`,
      ].join('\n');
  // Clients of a step that overran may still hold sockets and timers: exit once the output is out.
  process.stdout.write(`${out}\n`, () => process.exit(failed ? 1 : 0));
}

if (import.meta.main) await main();
