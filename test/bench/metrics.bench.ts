import { Counter, Registry } from 'prom-client';
import { NodeMetrics } from '../../runtime/host/node-metrics.ts';
import { formatNumber, type Row } from './report.ts';

/**
 * What counting costs in the packet path: `n++` on a field (what RtmfpNode does, read by
 * NodeMetrics at scrape time) against prom-client's `inc()`, plain and with a label, and what
 * one scrape of a node's registry costs. The median of ROUNDS rounds, each of OPS operations.
 */

const OPS = 2_000_000;
const ROUNDS = 7;
const SCRAPES = 200;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Nanoseconds per call of `op`, median of ROUNDS rounds of `ops` calls. */
function nsPerOp(op: () => void, ops = OPS): number {
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) op();
    rounds.push(Number(process.hrtime.bigint() - start) / ops);
  }
  return median(rounds);
}

export async function countingCost(): Promise<Row[]> {
  const registry = new Registry();
  const plain = new Counter({ name: 'bench_plain_total', help: 'bench', registers: [registry] });
  const labelled = new Counter({
    name: 'bench_labelled_total',
    help: 'bench',
    labelNames: ['reason'],
    registers: [registry],
  });
  const node = { received: 0 };
  const field = nsPerOp(() => {
    node.received++;
  });
  const inc = nsPerOp(() => plain.inc());
  const incLabel = nsPerOp(() => labelled.inc({ reason: 'short' }));

  const metrics = new NodeMetrics();
  metrics.readFrom(() => ({
    sessions: 1000,
    connections: 1000,
    hellos: node.received,
    redirects: 0,
    keyings: 1000,
    opened: 1000,
    received: node.received,
    sent: node.received,
    sendErrors: 0,
    bytesReceived: node.received,
    bytesSent: node.received,
    drops: { short: 1, 'unknown-session': 2, 'bad-checksum': 3 },
    handshakesOverBound: 0,
    heap: { chat: 1 << 20 },
    groupMemberships: 0,
    groupJoinsFailed: {},
    publications: 0,
    players: 0,
    streamDrops: {},
    streamsRefused: {},
    relayLinksOut: 0,
    relayLinksIn: 0,
    relayedIn: 0,
    relayedOut: 0,
    relayLinksFailed: {},
    relayLinksRefused: {},
  }));
  for (let i = 0; i < 100; i++) metrics.handled('chat', `rpc.m${i % 10}`, 0.001, undefined);
  const start = process.hrtime.bigint();
  for (let i = 0; i < SCRAPES; i++) await metrics.text();
  const scrapeUs = Number(process.hrtime.bigint() - start) / SCRAPES / 1000;

  const baseline = `n++ on a field: ${formatNumber(field)} ns`;
  return [
    { section: 'm', name: 'count a packet: n++ on a field (what the node does)', value: field, unit: 'ns' },
    {
      section: 'm',
      name: 'count a packet: prom-client inc()',
      value: inc,
      unit: 'ns',
      baseline,
      ratio: inc / field,
    },
    {
      section: 'm',
      name: 'count a drop: prom-client inc({ reason })',
      value: incLabel,
      unit: 'ns',
      baseline,
      ratio: incLabel / field,
    },
    {
      section: 'm',
      name: 'one /metrics scrape of a node (10 handler series)',
      value: scrapeUs,
      unit: 'µs',
      note: 'default process metrics included',
    },
  ];
}
