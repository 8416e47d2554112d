import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import pino from 'pino';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { startRedis } from '../support/redis.ts';
import { formatNumber, type Row } from './report.ts';

/** Members already in the group the measured joins and leaves go to. */
const GROUP_SIZE = 1_000;
/** Calls per measured operation. */
export const STORE_OPS = 2_000;

const hex = (n: number, tag: string) => `${tag}${n.toString(16)}`.padStart(64, '0');

/** What one kind of store call costs: time, round trips and Redis commands per call. */
export interface StoreCost {
  micros: number;
  trips: number;
  commands: number;
  /** A bare round trip (Redis TIME) on the same connection, measured right before the calls. */
  bareMicros: number;
}

/** How a bench measures store calls (see withStoreMeter). */
export interface StoreMeter {
  measure(op: (i: number) => Promise<unknown>): Promise<StoreCost>;
  row(name: string, cost: StoreCost): Row;
}

/**
 * A RedisState on its own redis-server, and how to measure calls on it: `measure` runs `op`
 * STORE_OPS times in turn and reports the cost per call, with a bare round trip (Redis TIME on
 * the same connection) measured just before it: on a busy machine, a baseline taken once at the
 * start drifts from the calls measured later. `row` sets the cost against that baseline.
 */
export async function withStoreMeter(
  run: (state: RedisState, meter: StoreMeter) => Promise<Row[]>,
): Promise<Row[]> {
  const redis = await startRedis();
  const state = await RedisState.connect(redis.url, { cluster: 'bench', logger: pino({ level: 'silent' }) });
  const counter = new Redis(redis.url);
  let trips = 0;
  state.onRoundTrip(() => trips++);
  const timed = async (op: (i: number) => Promise<unknown>) => {
    const t0 = performance.now();
    for (let i = 0; i < STORE_OPS; i++) await op(i);
    return ((performance.now() - t0) * 1000) / STORE_OPS;
  };
  const measure = async (op: (i: number) => Promise<unknown>): Promise<StoreCost> => {
    const bareMicros = await timed(() => state.time());
    const [tripsBefore, commandsBefore] = [trips, await commands(counter)];
    const micros = await timed(op);
    const perCall = (trips - tripsBefore) / STORE_OPS;
    // The second INFO is counted too: one command not made by the calls measured.
    const perCallCommands = ((await commands(counter)) - commandsBefore - 1) / STORE_OPS;
    return { micros, trips: perCall, commands: perCallCommands, bareMicros };
  };
  const row = (name: string, m: StoreCost): Row => ({
    section: 'p',
    name,
    value: m.micros,
    unit: 'µs',
    baseline: `bare round trip ${formatNumber(m.bareMicros)} µs`,
    ratio: m.micros / m.bareMicros,
    note: `${formatNumber(m.trips)} round trips, ${formatNumber(m.commands)} Redis commands per call`,
  });
  try {
    await timed(() => state.time());
    return await run(state, { measure, row });
  } finally {
    counter.disconnect();
    await state.close();
    await redis.stop();
  }
}

/**
 * The cluster store's P2P calls on a real redis-server (issue 9): a peer lookup (what an IHello
 * for an unknown peer costs), a group join and a leave in a group of GROUP_SIZE, each as time
 * per call against a bare round trip (Redis TIME) in the same run, with the round trips per
 * call (goal: 1) and the Redis commands each runs (INFO commandstats, script steps included).
 */
export function p2pStoreFigures(): Promise<Row[]> {
  return withStoreMeter(async (state, { measure, row }) => {
    const group = hex(1, 'a');
    const record = { node: 'n1', address: '203.0.113.1:50000', lan: ['192.168.1.2:50000'] };
    for (let i = 0; i < GROUP_SIZE; i++) {
      await state.p2p.putPeer(hex(i, 'b'), record);
      await state.p2p.joinGroup(group, hex(i, 'b'), i % 2 ? 'n1' : 'n2');
    }
    // Warm up: scripts loaded (the first EVALSHA of each is NOSCRIPT, then EVAL), code compiled.
    await state.p2p.peer(hex(0, 'b'));
    await state.p2p.leaveGroup(group, hex(0, 'b'), 'n2');
    await state.p2p.joinGroup(group, hex(0, 'b'), 'n2');
    const lookup = await measure((i) => state.p2p.peer(hex(i % GROUP_SIZE, 'b')));
    const join = await measure((i) => state.p2p.joinGroup(group, hex(i, 'c'), 'n3'));
    const leave = await measure((i) => state.p2p.leaveGroup(group, hex(i, 'c'), 'n3'));
    return [
      row('store: peer lookup by peer ID (Redis)', lookup),
      row(`store: group join, group of ${GROUP_SIZE}+ (Redis)`, join),
      row(`store: group leave, group of ${GROUP_SIZE}+ (Redis)`, leave),
    ];
  });
}

/** Commands Redis has run so far, those run by scripts included (INFO commandstats). */
async function commands(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  let total = 0;
  for (const m of info.matchAll(/:calls=(\d+)/g)) total += Number(m[1]);
  return total;
}
