import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bindable } from '../support/ports.ts';

const SCRIPT = fileURLToPath(new URL('../../infra/local-cluster.sh', import.meta.url));
const NODES = 2;
/** Bounds the wait for the cluster to come up, and for Ctrl-C to stop it: hanging is the failure. */
const WAIT_MS = 30_000;

test('infra/local-cluster.sh: Ctrl-C stops every node and Redis, and frees their ports', async () => {
  const ports = await freeRanges();
  // Detached: the script gets a process group of its own, as in a terminal, for Ctrl-C to reach.
  const script = spawn('bash', [SCRIPT], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FNHOST_'))),
      NODES: String(NODES),
      REDIS_PORT: String(ports.redis),
      RTMFP_BASE: String(ports.rtmfp),
      HTTP_BASE: String(ports.http),
    },
  });
  let log = '';
  script.stderr.setEncoding('utf8').on('data', (c: string) => {
    log += c;
  });
  const exited = once(script, 'exit');
  const group = script.pid ?? 0;
  try {
    const deadline = Date.now() + WAIT_MS;
    for (let i = 1; i <= NODES; i++) {
      while (!(await ready(ports.http + i))) {
        assert.ok(Date.now() < deadline, `node ${i} did not become ready:\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    process.kill(-group, 'SIGINT');
    const timer = setTimeout(() => process.kill(-group, 'SIGKILL'), WAIT_MS);
    const [, signal] = await exited;
    clearTimeout(timer);
    assert.notEqual(signal, 'SIGKILL', `the script did not stop within ${WAIT_MS} ms:\n${log}`);
    for (let i = 1; i <= NODES; i++) {
      assert.ok(await bindable('tcp', '127.0.0.1', ports.http + i), `HTTP port of node ${i} is free`);
      assert.ok(await bindable('udp', '127.0.0.1', ports.rtmfp + i), `RTMFP port of node ${i} is free`);
    }
    assert.ok(await bindable('tcp', '127.0.0.1', ports.redis), 'the Redis port is free');
  } finally {
    // Whatever is left of the script's processes (each job has a group of its own) goes with it.
    if (script.exitCode === null && script.signalCode === null) process.kill(-group, 'SIGKILL');
  }
});

async function ready(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

/** Base ports with NODES free ports after each (and a free Redis port), picked at random. */
async function freeRanges(): Promise<{ redis: number; rtmfp: number; http: number }> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    const redis = base;
    const rtmfp = base + 10;
    const http = base + 20;
    const checks = [bindable('tcp', '127.0.0.1', redis)];
    for (let i = 1; i <= NODES; i++)
      checks.push(bindable('udp', '127.0.0.1', rtmfp + i), bindable('tcp', '127.0.0.1', http + i));
    if ((await Promise.all(checks)).every(Boolean)) return { redis, rtmfp, http };
  }
}
