import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TCServerHandler } from '../../runtime/rtmfp/tc-server.ts';
import { NetConnection } from '../../sdk/client.ts';
import { echoApp } from '../support/echo-app.ts';
import { LossyPath } from '../support/lossy-path.ts';
import { silentLogger, startNode } from '../support/node.ts';

test('over a lossy, reordering, duplicating path every call reply arrives exactly once and in order', async () => {
  const app = echoApp(silentLogger);
  const seen: number[] = [];
  const handler: TCServerHandler = {
    ...app,
    call(conn, name, args, reply) {
      seen.push(typeof args[0] === 'string' ? Number(args[0].split(':')[0]) : (args[0] as number));
      app.call(conn, name, args, reply);
    },
  };
  const n = await startNode({ handler });
  const path = new LossyPath(n.port, { loss: 0.1, duplicate: 0.1, reorder: 0.1, jitterMs: 5, seed: 7 });
  const port = await path.start();
  try {
    const nc = await NetConnection.open(`rtmfp://127.0.0.1:${port}/app`, { timeoutMs: 30_000 });
    const results: number[] = [];
    const big = 'z'.repeat(20_000);
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      // Small calls and a few that span many packets, all in flight together.
      const arg = i % 50 === 0 ? `${i}:${big}` : i;
      calls.push(
        nc.call('echo', arg).then((v) => {
          results.push(typeof v === 'string' ? Number(v.split(':')[0]) : (v as number));
          if (typeof v === 'string') assert.equal(v, arg);
        }),
      );
    }
    await Promise.all(calls);
    assert.deepEqual(
      results,
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.deepEqual(seen, results, 'the node ran each call once, in order');
    assert.ok(path.dropped > 0, 'the path really lost datagrams');
    await nc.close();
  } finally {
    await path.stop();
    await n.stop();
  }
});
