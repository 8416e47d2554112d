import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

let master: TestRedis;
let sentinel: TestRedis;

before(async () => {
  master = await startRedis();
  sentinel = await startRedis({ sentinel: { masterPort: master.port, name: 'fnhost' } });
});

after(async () => {
  await sentinel?.stop();
  await master?.stop();
});

test('a redis+sentinel:// URL finds the master through a real Sentinel and works like a plain one', async () => {
  const url = `redis+sentinel://127.0.0.1:${sentinel.port}/fnhost`;
  const state = await RedisState.connect(url, {
    cluster: 'sentinel-test',
    logger: pino({ level: 'silent' }),
  });
  try {
    await state.kv.set('app', 'k', { through: 'sentinel' }, 0);
    assert.deepEqual(await state.kv.get('app', 'k'), { through: 'sentinel' });
    const direct = await RedisState.connect(master.url, {
      cluster: 'sentinel-test',
      logger: pino({ level: 'silent' }),
    });
    try {
      assert.deepEqual(
        await direct.kv.get('app', 'k'),
        { through: 'sentinel' },
        'the value is on the master',
      );
    } finally {
      await direct.close();
    }
  } finally {
    await state.close();
  }
});
