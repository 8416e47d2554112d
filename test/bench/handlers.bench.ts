import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { MemoryKv } from '../../runtime/cluster/memory-kv.ts';
import { AppHost } from '../../runtime/host/apps.ts';
import type { AmfValue } from '../../runtime/rtmfp/amf-value.ts';
import type {
  CallReply,
  ConnectRequest,
  TCServerConnection,
  TCServerHandler,
} from '../../runtime/rtmfp/tc-server.ts';
import type { Bundle } from '../../runtime/sandbox/bundle.ts';
import { echoApp } from '../support/echo-app.ts';
import { formatNumber, type Row } from './report.ts';

const WARMUP = 2_000;
const SAMPLES = 20_000;

/**
 * Latency a no-op handler adds to a connect and to a call, measured on the node side from
 * the TC event to the answer: the sandboxed app (isolated-vm) against the echo handler
 * (test/support/echo-app.ts) that answers in plain JS. Goal (issue): p50 ≤ 20 µs, p99 ≤ 200 µs.
 */
export async function handlerLatency(): Promise<Row[]> {
  const logger = pino({ level: 'silent' });
  const apps = new AppHost({
    logger,
    limits: { cpuMs: 50, memoryMb: 128, awaitMs: 5000 },
    env: () => ({}),
    kv: new MemoryKv(),
    node: { id: 'bench', publicAddress: '127.0.0.1:1935' },
    handshakesPerSecond: 1000,
  });
  const code = 'globalThis.__fnhostApp = { onConnection() {}, rpc: { noop() {} } };';
  const bundle: Bundle = {
    code,
    map: '{"version":3,"sources":[],"names":[],"mappings":""}',
    hash: 'bench',
    form: 'index',
    files: [],
  };
  await apps.load('bench', bundle);
  const echo = echoApp(logger);
  try {
    const rows: Row[] = [];
    for (const [what, measure] of [
      ['onConnection', connectLatency],
      ['rpc', callLatency],
    ] as const) {
      const base = await measure(echo);
      const sandboxed = await measure(apps);
      for (const q of ['p50', 'p99'] as const) {
        const added = sandboxed[q] - base[q];
        rows.push({
          section: 'f',
          name: `added latency of a no-op ${what}, ${q}`,
          value: added,
          unit: 'µs',
          baseline: `no handler: ${formatNumber(base[q])} µs`,
          ratio: sandboxed[q] / base[q],
          note: `with handler ${formatNumber(sandboxed[q])} µs; goal ≤ ${q === 'p50' ? 20 : 200} µs added`,
        });
      }
    }
    return rows;
  } finally {
    await apps.stop();
  }
}

interface Quantiles {
  p50: number;
  p99: number;
}

function quantiles(samples: number[]): Quantiles {
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(samples.length * 0.5)], p99: samples[Math.floor(samples.length * 0.99)] };
}

/** A stand-in NetConnection: only what the handlers touch. */
function fakeConnection(id: number, answered: () => void): TCServerConnection {
  return {
    peerId: id.toString(16).padStart(64, '0'),
    state: 'connecting',
    session: { address: { address: '127.0.0.1', port: 40000 + (id % 20000) } },
    accept() {
      (this as { state: string }).state = 'connected';
      answered();
    },
    reject: answered,
    close() {},
  } as unknown as TCServerConnection;
}

const request: ConnectRequest = {
  app: 'bench',
  tcUrl: 'rtmfp://127.0.0.1/bench',
  objectEncoding: 0,
  commandObject: {},
  args: [],
};

async function connectLatency(handler: TCServerHandler): Promise<Quantiles> {
  const samples: number[] = [];
  for (let i = 0; i < WARMUP + SAMPLES; i++) {
    let t0 = 0;
    const done = new Promise<void>((resolve) => {
      const conn = fakeConnection(i, resolve);
      t0 = performance.now();
      handler.connect(conn, request);
    });
    await done;
    const us = (performance.now() - t0) * 1000;
    if (i >= WARMUP) samples.push(us);
    handler.closed(fakeConnection(i, () => {}));
  }
  return quantiles(samples);
}

async function callLatency(handler: TCServerHandler): Promise<Quantiles> {
  const conn = fakeConnection(1, () => {});
  handler.connect(conn, request);
  await new Promise((r) => setTimeout(r, 10));
  const name = handler instanceof AppHost ? 'noop' : 'echo';
  const samples: number[] = [];
  for (let i = 0; i < WARMUP + SAMPLES; i++) {
    let t0 = 0;
    await new Promise<void>((resolve) => {
      const reply: CallReply = { result: (_v: AmfValue) => resolve(), error: () => resolve() };
      t0 = performance.now();
      handler.call(conn, name, [], reply);
    });
    const us = (performance.now() - t0) * 1000;
    if (i >= WARMUP) samples.push(us);
  }
  handler.closed(conn);
  return quantiles(samples);
}
