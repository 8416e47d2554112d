import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOAD_WINDOW_S, type LoadCounters, LoadMeter } from '../../runtime/host/load-meter.ts';

/** A node whose counters the test moves; one sample per simulated second, as the node's timer takes them. */
function simulated() {
  const counters: LoadCounters = { packets: 0, bytes: 0, cpuMicros: 0 };
  let now = 0;
  const meter = new LoadMeter(() => ({ ...counters }), now);
  const second = (packets: number, bytes: number, cpuMicros: number) => {
    counters.packets += packets;
    counters.bytes += bytes;
    counters.cpuMicros += cpuMicros;
    now += 1000;
    meter.sample(now);
  };
  return { meter, second, counters, now: () => now };
}

test('reports the rates of the last seconds: 100 packets/s, 50 kB/s and half a core', () => {
  const { meter, second, now } = simulated();
  for (let i = 0; i < 10; i++) second(100, 50_000, 500_000);
  const r = meter.rates(now());
  assert.equal(r.packetsPerSecond, 100);
  assert.equal(r.bytesPerSecond, 50_000);
  assert.equal(r.cpu, 0.5);
});

test('a node busy a while ago and idle for the whole window reports idle, not its lifetime average', () => {
  const { meter, second, now } = simulated();
  for (let i = 0; i < 20; i++) second(1_000, 1_000_000, 900_000);
  for (let i = 0; i < LOAD_WINDOW_S; i++) second(0, 0, 0);
  assert.deepEqual(meter.rates(now()), { cpu: 0, packetsPerSecond: 0, bytesPerSecond: 0 });
});

test('a burst shows at once: traffic since the last sample counts, averaged over the window', () => {
  const { meter, second, counters, now } = simulated();
  for (let i = 0; i < 10; i++) second(0, 0, 0);
  counters.packets += 2_500; // after the last sample, before the heartbeat reads the rates
  assert.equal(meter.rates(now() + 500).packetsPerSecond, 2_500 / (LOAD_WINDOW_S - 0.5));
});

test('when sampling stalled past the window, rates run from the newest sample, not from the start', () => {
  const { meter, second, counters, now } = simulated();
  for (let i = 0; i < 3; i++) second(1_000, 0, 0);
  counters.packets += 200; // 20 s without a sample
  assert.equal(meter.rates(now() + 20_000).packetsPerSecond, 10);
});
