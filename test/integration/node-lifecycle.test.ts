import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { until } from '../support/node.ts';
import { bindable } from '../support/ports.ts';
import { endProcess, nodePrinted, spawnCli, startNodeProcess } from '../support/processes.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

/** Bounds every wait for a node process to exit: a node that does not is the failure. */
const EXIT_WITHIN_MS = 15_000;

describe('a node process starting and stopping around its Redis', () => {
  let dir: string;
  const redises: TestRedis[] = [];
  const nodes: ChildProcess[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fnhost-lifecycle-'));
  });

  after(async () => {
    await Promise.all(nodes.map((child) => endProcess(child, 'SIGKILL')));
    for (const r of redises) r.resume();
    await Promise.all(redises.map((r) => r.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  const project = (toml: string) => writeFileSync(join(dir, 'wrangler-like.toml'), `name = "app"\n${toml}`);
  const redis = async () => {
    const r = await startRedis();
    redises.push(r);
    return r;
  };

  test('/healthz answers while Redis is unreachable, /readyz says why, each retry is logged with its backoff, and the node joins once Redis is up', async () => {
    project('');
    const r = await redis();
    r.kill();
    const node = spawnCli(dir, [
      'node',
      '--redis',
      r.url,
      '--rtmfp',
      '127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
      '--json',
    ]);
    try {
      await until(() => nodePrinted(node.output()).http !== undefined, 20_000, 'the HTTP address');
      const http = nodePrinted(node.output()).http;
      const health = await fetch(`http://${http}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(await health.text(), 'ok\n');
      let ready = '';
      for (let i = 0; i < 100 && !ready.includes('connection refused'); i++) {
        const res = await fetch(`http://${http}/readyz`);
        assert.equal(res.status, 503);
        ready = await res.text();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.match(
        ready,
        /^not ready: waiting for the cluster store at redis:\/\/127\.0\.0\.1:\d+: connection refused at 127\.0\.0\.1:\d+ \(retry \d+ in \d+ ms\)\n$/,
      );
      await until(() => /retry 2 in \d+ ms/.test(node.errors()), 10_000, 'a second retry in the log');
      assert.match(node.errors(), /"attempt":1,"delayMs":\d+.*retry 1 in \d+ ms/);
      assert.equal(nodePrinted(node.output()).rtmfp, undefined, 'no RTMFP port before the store answers');

      await r.restart();
      await until(() => nodePrinted(node.output()).node !== undefined, 20_000, 'the node to join');
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = (await fetch(`http://${http}/readyz`)).status;
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(status, 200, '/readyz once the node runs');
    } finally {
      await endProcess(node.child, 'SIGKILL');
    }
  });

  /** A node whose Redis then hangs (SIGSTOP): its leave can never be answered. */
  const nodeWithRedisStopped = async (shutdownMs: number) => {
    project(`[node]\nshutdown_ms = ${shutdownMs}\n`);
    const r = await redis();
    const node = await startNodeProcess(dir, ['--redis', r.url]);
    nodes.push(node.child);
    r.pause();
    return node;
  };

  test('SIGTERM with Redis stopped first: the node exits within shutdown_ms, closing its sessions, and frees its ports', async () => {
    const node = await nodeWithRedisStopped(1000);
    const code = await exitWithin(node.child, 'SIGTERM');
    assert.equal(code, 1, 'cut short: the store never answered the leave');
    assert.match(
      node.errors(),
      /shutdown_ms \(1000 ms\) passed while leaving the cluster and closing sessions/,
    );
    assert.ok(await bindable('udp', ...splitHostPort(node.rtmfp)), 'the RTMFP port is free');
    assert.ok(await bindable('tcp', ...splitHostPort(node.http)), 'the HTTP port is free');
  });

  test('a second signal exits at once, whatever the shutdown is waiting for', async () => {
    const node = await nodeWithRedisStopped(600_000);
    node.child.kill('SIGINT');
    await until(() => node.errors().includes('shutting down'), 10_000, 'the shutdown to start');
    assert.equal(await exitWithin(node.child, 'SIGINT'), 130);
    assert.match(node.errors(), /SIGINT again: exiting now, while leaving the cluster/);
  });
});

/** Sends `signal` and resolves with the exit code; rejects if the process is still running after EXIT_WITHIN_MS. */
async function exitWithin(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      endProcess(child, signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`still running ${EXIT_WITHIN_MS} ms after ${signal}`)),
          EXIT_WITHIN_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function splitHostPort(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}
