import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { NetConnection } from '../../sdk/client.ts';
import { type BenchContext, closeSessions, cpuMs, openSessions, since, sleep } from './clients.ts';
import { formatNumber, type Row } from './report.ts';

/**
 * Calls/s through the whole stack (AMF, flows, acks, crypto, both directions) with a fixed
 * number of calls kept in flight, against raw UDP round trips on the same loopback with the
 * same number in flight: what is left of the wire's speed after RTMFP and TC.
 */

const WARMUP_MS = 500;
const RAW_DURATION_MS = 1_500;
/** Small, like an echo call's datagram. */
const RAW_PAYLOAD_BYTES = 64;
/** As the node asks for: 320 datagrams in flight overflow the 212 kB default. */
const RAW_RECV_BUFFER_BYTES = 4 * 1024 * 1024;
/** DH group for opening: the cheapest, since only the calls are measured here. */
const GROUP = 2;

/**
 * Round trips/s between `clients` sockets and one echoing socket, `inFlight` each, all in this
 * process: replies counted over a fixed window, so a datagram lost on loopback costs only its slot.
 */
export async function rawRoundTrips(clients: number, inFlight: number, durationMs: number): Promise<number> {
  const open = async () => {
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize: RAW_RECV_BUFFER_BYTES });
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return s;
  };
  const echo = await open();
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  const port = echo.address().port;
  const sockets = await Promise.all(Array.from({ length: clients }, open));
  try {
    const countFrom = performance.now() + WARMUP_MS;
    const end = countFrom + durationMs;
    let counted = 0;
    const payload = Buffer.alloc(RAW_PAYLOAD_BYTES, 0x42);
    for (const s of sockets) {
      s.on('message', (m) => {
        const now = performance.now();
        if (now >= end) return;
        if (now >= countFrom) counted++;
        s.send(m, port, '127.0.0.1');
      });
      for (let i = 0; i < inFlight; i++) s.send(payload, port, '127.0.0.1');
    }
    await sleep(end - performance.now() + 50);
    return counted / (durationMs / 1000);
  } finally {
    for (const s of [echo, ...sockets]) s.close();
  }
}

/** Calls completed in about `durationMs`, `inFlight` kept outstanding on every connection. */
async function callLoad(
  conns: NetConnection[],
  inFlight: number,
  durationMs: number,
): Promise<{ calls: number; seconds: number }> {
  const start = performance.now();
  const end = start + durationMs;
  let calls = 0;
  const lane = async (nc: NetConnection) => {
    for (let i = 0; performance.now() < end; i++) {
      await nc.call('echo', i);
      calls++;
    }
  };
  await Promise.all(conns.flatMap((nc) => Array.from({ length: inFlight }, () => lane(nc))));
  return { calls, seconds: since(start) / 1000 };
}

/** Echo calls/s from `clients` connections with `inFlight` calls outstanding on each. */
export async function echoRate(
  ctx: BenchContext,
  clients: number,
  inFlight: number,
  durationMs: number,
): Promise<Row> {
  const raw = await rawRoundTrips(clients, inFlight, RAW_DURATION_MS);
  ctx.progress(`raw UDP round trips, ${clients}×${inFlight} in flight: ${formatNumber(raw)}/s`);
  const server = await ctx.startServer();
  const conns = await openSessions(server.url(), clients, GROUP, 30_000);
  try {
    await callLoad(conns, inFlight, WARMUP_MS);
    const [before, statsBefore] = [await server.cpu(), await server.stats()];
    const { calls, seconds } = await callLoad(conns, inFlight, durationMs);
    const rate = calls / seconds;
    const [after, statsAfter] = [await server.cpu(), await server.stats()];
    const datagrams = statsAfter.received - statsBefore.received;
    return {
      section: 'c',
      name: `echo calls/s, ${clients} client${clients > 1 ? 's' : ''} × ${inFlight} in flight`,
      value: rate,
      unit: 'calls/s',
      baseline: `raw UDP ping-pong ${formatNumber(raw)}/s`,
      ratio: rate / raw,
      note:
        `server CPU ${formatNumber((cpuMs(before, after) * 1000) / calls)} µs/call; ` +
        `server received ${formatNumber(datagrams / calls)} datagrams/call (calls share packets)`,
    };
  } finally {
    await closeSessions(conns);
  }
}
