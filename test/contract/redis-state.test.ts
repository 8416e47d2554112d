import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pino from 'pino';
import { CHANNELS } from '../../runtime/cluster/keys.ts';
import { RedisConnectError, redisOptionsFromUrl } from '../../runtime/cluster/redis-connection.ts';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { StoreUnavailableError } from '../../runtime/cluster/state.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { nodeRecord, sleep, until } from './fixture.ts';
import { stateContract } from './state.contract.ts';

const logger = pino({ level: 'silent' });
let clusters = 0;
/** Each State gets its own cluster name: the key prefix isolates them on one redis-server. */
const nextCluster = () => `t${++clusters}`;

describe('RedisState on a real redis-server', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  stateContract('RedisState', async () => {
    const state = await RedisState.connect(redis.url, { cluster: nextCluster(), logger });
    return { state, cleanup: () => state.close() };
  });

  describe('RedisState: key layout', () => {
    it('every key and channel of a cluster carries its {cluster} hash tag', async () => {
      const state = await RedisState.connect(redis.url, { cluster: 'tagged', logger });
      const raw = new Redis(redis.url);
      try {
        await state.heartbeat(nodeRecord('n1'), 10_000);
        await state.putBundle('chat', { hash: 'h1', code: 'c', map: 'm' });
        await state.deploy('chat', { hash: 'h1', deployedAt: 1, files: [], by: 'me' });
        await state.putSecret('chat', 'S', 'v');
        await state.kv.set('chat', 'k', 1, 0);
        await state.clusterSecret();
        await state.p2p.putPeer('a'.repeat(64), { node: 'n1', address: '203.0.113.1:1', lan: [] });
        await state.p2p.joinGroup('b'.repeat(64), 'a'.repeat(64), 'n1');
        await state.publications.claim({ app: 'chat', name: 'cam', node: 'n1', publisher: 'a'.repeat(64) });
        await state.publications.setSubscribers('chat', 'cam', 'n1', 2);
        await state.subscribe(CHANNELS.rpc('n1'), () => {});
        const keys = await raw.keys('*tagged*');
        assert.equal(keys.length, 21, keys.join(' '));
        for (const key of keys) assert.ok(key.startsWith('fnhost:{tagged}:'), key);
        assert.deepEqual(await raw.pubsub('CHANNELS', '*tagged*'), ['fnhost:{tagged}:rpc:n1']);
        assert.equal(
          Number(await raw.zscore('fnhost:{tagged}:nodes', 'n1')),
          (await state.nodes())[0].heartbeatAt,
        );
      } finally {
        raw.disconnect();
        await state.close();
      }
    });

    it('a publication claim, release, lookup, player count and listing each take one round trip', async () => {
      const state = await RedisState.connect(redis.url, { cluster: nextCluster(), logger });
      try {
        const p = state.publications;
        const cam = { app: 'chat', name: 'cam', node: 'n1', publisher: 'a'.repeat(64) };
        // Warm up: the first call of each script on a server is EVALSHA, NOSCRIPT, then EVAL.
        await p.claim(cam);
        await p.release('chat', 'cam', 'n1', cam.publisher);
        await p.get('chat', 'cam');
        await p.setSubscribers('chat', 'cam', 'n1', 1);
        await p.list();
        let trips = 0;
        state.onRoundTrip(() => trips++);
        const count = async (op: () => Promise<unknown>) => {
          const before = trips;
          await op();
          return trips - before;
        };
        assert.deepEqual(
          [
            await count(() => p.claim(cam)),
            await count(() => p.claim({ ...cam, node: 'n2' })),
            await count(() => p.setSubscribers('chat', 'cam', 'n2', 3)),
            await count(() => p.get('chat', 'cam')),
            await count(() => p.list('chat')),
            await count(() => p.release('chat', 'cam', 'n1', cam.publisher)),
          ],
          [1, 1, 1, 1, 1, 1],
        );
      } finally {
        await state.close();
      }
    });

    it('a join, a leave, a peer lookup and a peer registration each take one round trip', async () => {
      const state = await RedisState.connect(redis.url, { cluster: nextCluster(), logger });
      try {
        const group = 'c'.repeat(64);
        const peers = ['1', '2', '3'].map((d) => d.repeat(64));
        const record = { node: 'n1', address: '203.0.113.1:1', lan: ['10.0.0.1:1'] };
        // Warm up: the first call of each script on a server is EVALSHA, NOSCRIPT, then EVAL.
        await state.p2p.putPeer(peers[0], record);
        await state.p2p.joinGroup(group, peers[0], 'n1');
        await state.p2p.leaveGroup(group, peers[0], 'n1');
        let trips = 0;
        state.onRoundTrip(() => trips++);
        const count = async (op: () => Promise<unknown>) => {
          const before = trips;
          await op();
          return trips - before;
        };
        for (const p of peers) await state.p2p.joinGroup(group, p, 'n1');
        assert.deepEqual(
          [
            await count(() => state.p2p.putPeer(peers[1], record)),
            await count(() => state.p2p.peer(peers[1])),
            await count(() => state.p2p.joinGroup(group, 'd'.repeat(64), 'n1')),
            await count(() => state.p2p.leaveGroup(group, peers[1], 'n1')),
          ],
          [1, 1, 1, 1],
        );
      } finally {
        await state.close();
      }
    });

    it('clusters sharing a redis-server see neither nodes, kv nor messages of each other', async () => {
      const a = await RedisState.connect(redis.url, { cluster: 'left', logger });
      const b = await RedisState.connect(redis.url, { cluster: 'right', logger });
      try {
        const got: string[] = [];
        await b.subscribe('deploy', (m) => got.push(m));
        await b.subscribe('nodes', (m) => got.push(m));
        await a.heartbeat(nodeRecord('n1'), 10_000);
        await a.kv.set('chat', 'k', 'a', 0);
        await a.publish('deploy', 'from a');
        await b.publish('nodes', 'from b');
        await until(() => got.length > 0, 'b hearing itself');
        assert.deepEqual(got, ['from b']);
        assert.deepEqual(await b.nodes(), []);
        assert.equal(await b.kv.get('chat', 'k'), null);
        assert.notEqual(await a.clusterSecret(), await b.clusterSecret());
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('nodes of one cluster share one clusterSecret, whoever asks first', async () => {
      const cluster = nextCluster();
      const states = await Promise.all(
        [1, 2, 3].map(() => RedisState.connect(redis.url, { cluster, logger })),
      );
      try {
        const secrets = await Promise.all(states.map((s) => s.clusterSecret()));
        assert.equal(new Set(secrets).size, 1);
      } finally {
        await Promise.all(states.map((s) => s.close()));
      }
    });
  });
});

describe('RedisState: Redis going away and coming back', () => {
  it('a restart reports down then up; commands and subscriptions work again after up', async () => {
    const redis = await startRedis();
    const state = await RedisState.connect(redis.url, { cluster: nextCluster(), logger });
    try {
      const statuses: string[] = [];
      state.onStatus((s) => statuses.push(s));
      const got: string[] = [];
      await state.subscribe('deploy', (m) => got.push(m));
      await redis.restart();
      await until(() => statuses.length === 2, 'down and up', 5_000);
      assert.deepEqual(statuses, ['down', 'up']);
      await state.heartbeat(nodeRecord('n1'), 10_000);
      assert.equal((await state.nodes()).length, 1);
      await state.publish('deploy', 'after restart');
      await until(() => got.length === 1, 'the resubscribed handler');
      assert.deepEqual(got, ['after restart']);
    } finally {
      await state.close();
      await redis.stop();
    }
  });

  it("after Redis restarts empty, nodes re-asserting their peers and memberships restore them, each once and in each node's order", async () => {
    const redis = await startRedis();
    const state = await RedisState.connect(redis.url, { cluster: nextCluster(), logger });
    try {
      const group = 'e'.repeat(64);
      const peer = (n: number) => n.toString(16).padStart(64, 'a');
      /** What each node holds locally, in its join order: its truth. */
      const local: Record<string, number[]> = { n1: [0, 2, 4], n2: [1, 3] };
      const reassert = async () => {
        for (const [node, peers] of Object.entries(local)) {
          for (const p of peers) {
            await state.p2p.putPeer(peer(p), { node, address: `203.0.113.${p}:1`, lan: [] });
            await state.p2p.joinGroup(group, peer(p), node);
          }
        }
      };
      for (let p = 0; p < 5; p++) {
        await state.p2p.putPeer(peer(p), { node: p % 2 ? 'n2' : 'n1', address: `203.0.113.${p}:1`, lan: [] });
        await state.p2p.joinGroup(group, peer(p), p % 2 ? 'n2' : 'n1');
      }
      const statuses: string[] = [];
      state.onStatus((s) => statuses.push(s));
      await redis.restart();
      await until(() => statuses.at(-1) === 'up', 'up', 5_000);
      assert.deepEqual(await state.p2p.groups(), [], 'the restarted Redis is empty');
      await reassert();
      const restored = (await state.p2p.members(group)).map((m) => m.peerId);
      assert.deepEqual(restored, [0, 2, 4, 1, 3].map(peer));
      await reassert();
      assert.deepEqual(
        (await state.p2p.members(group)).map((m) => m.peerId),
        restored,
        'a second re-assert changes nothing',
      );
      assert.deepEqual(await state.p2p.group(group), { size: 5, nodes: { n1: 3, n2: 2 } });
      assert.equal((await state.p2p.peer(peer(3)))?.node, 'n2');
    } finally {
      await state.close();
      await redis.stop();
    }
  });

  it('while Redis is down, commands fail at once instead of queueing, and nothing replays later', async () => {
    const redis = await startRedis();
    const state = await RedisState.connect(redis.url, { cluster: nextCluster(), logger });
    try {
      const statuses: string[] = [];
      state.onStatus((s) => statuses.push(s));
      redis.kill();
      await until(() => statuses.includes('down'), 'down');
      // Redis comes back while the calls are pending: a queued call would be written then.
      const started = Date.now();
      const failedAfter = (p: Promise<unknown>) =>
        p.then(
          () => 'written',
          () => Date.now() - started,
        );
      const calls = Promise.all([
        failedAfter(state.heartbeat(nodeRecord('n1'), 10_000)),
        failedAfter(state.kv.incr('chat', 'n', 1)),
      ]);
      await redis.restart();
      // Failed, not written: and long before the 5 s command timeout a queued call would wait for
      // (a bound that a loaded machine cannot trip; how fast is for benchmarks).
      for (const after of await calls) assert.ok(typeof after === 'number' && after < 2_000, `${after}`);
      await until(() => statuses.at(-1) === 'up', 'up', 5_000);
      assert.deepEqual(await state.nodes(), []);
      assert.equal(await state.kv.get('chat', 'n'), null);
    } finally {
      await state.close();
      await redis.stop();
    }
  });

  it('close() does not wait on a Redis that hangs', { timeout: 10_000 }, async () => {
    const redis = await startRedis();
    const state = await RedisState.connect(redis.url, { cluster: nextCluster(), logger });
    await state.subscribe('deploy', () => {});
    redis.pause();
    try {
      await state.close();
    } finally {
      redis.resume();
      await redis.stop();
    }
  });

  it('connect waits while Redis is down at start and resolves once it is up', async () => {
    const redis = await startRedis();
    redis.kill();
    let connected: RedisState | undefined;
    const connecting = RedisState.connect(redis.url, { cluster: nextCluster(), logger }).then((s) => {
      connected = s;
      return s;
    });
    try {
      await sleep(300);
      assert.equal(connected, undefined);
      await redis.restart();
      const state = await connecting;
      assert.ok((await state.time()) > 0);
    } finally {
      await (await connecting).close();
      await redis.stop();
    }
  });

  it('while Redis is down, a command rejects with StoreUnavailableError, not the driver text', async () => {
    const redis = await startRedis();
    const state = await RedisState.connect(redis.url, { cluster: nextCluster(), logger });
    try {
      const statuses: string[] = [];
      state.onStatus((s) => statuses.push(s));
      redis.kill();
      await until(() => statuses.includes('down'), 'down');
      for (const call of [
        state.kv.get('chat', 'k'),
        state.active('chat'),
        state.heartbeat(nodeRecord('n1'), 10_000),
      ]) {
        await assert.rejects(
          call,
          (e: Error) => e instanceof StoreUnavailableError && e.message === 'cluster store unavailable',
        );
      }
    } finally {
      await state.close();
      await redis.stop();
    }
  });

  it('with failFast, connect rejects at once on a refused connection, naming where', async () => {
    const redis = await startRedis();
    // Stopped, not killed: a server still dying can accept the connection and reset it.
    await redis.stop();
    await assert.rejects(
      RedisState.connect(redis.url, { cluster: 'c', logger, failFast: true }),
      (e: Error) =>
        e instanceof RedisConnectError && e.reason === `connection refused at 127.0.0.1:${redis.port}`,
    );
  });

  it('connect gives up, and stops retrying, when its signal aborts', async () => {
    const redis = await startRedis();
    await redis.stop();
    await assert.rejects(
      RedisState.connect(redis.url, { cluster: 'c', logger, signal: AbortSignal.timeout(200) }),
      {
        message:
          /^redis: cannot use redis:\/\/127\.0\.0\.1:(\d+): gave up \(connection refused at 127\.0\.0\.1:\1\)$/,
      },
    );
  });
});

describe('RedisState: AUTH', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis({ password: 'secret' });
  });
  after(() => redis.stop());

  it('connects with the password in the URL', async () => {
    assert.equal(redis.url, `redis://:secret@127.0.0.1:${redis.port}`);
    const state = await RedisState.connect(redis.url, { cluster: 'auth', logger });
    try {
      await state.heartbeat(nodeRecord('n1'), 10_000);
      assert.equal((await state.nodes()).length, 1);
    } finally {
      await state.close();
    }
  });

  it('a wrong password fails connect at once with a clear error that hides the password', async () => {
    const started = Date.now();
    const url = `redis://:wrong@127.0.0.1:${redis.port}`;
    const error = await RedisState.connect(url, { cluster: 'auth', logger }).then(
      () => assert.fail('connected with a wrong password'),
      (e: Error) => e,
    );
    assert.match(error.message, /^redis: cannot use redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: WRONGPASS/);
    assert.doesNotMatch(error.message, /wrong@/);
    assert.ok(Date.now() - started < 2_000);
  });

  it('a missing password fails connect with NOAUTH', async () => {
    await assert.rejects(
      RedisState.connect(`redis://127.0.0.1:${redis.port}`, { cluster: 'auth', logger }),
      /NOAUTH/,
    );
  });
});

describe('Redis URLs', () => {
  it('redis:// gives host, port, credentials and database', () => {
    assert.deepEqual(redisOptionsFromUrl('redis://ada:p%40ss@r1.example:6380/2'), {
      username: 'ada',
      password: 'p@ss',
      host: 'r1.example',
      port: 6380,
      db: 2,
    });
    assert.deepEqual(redisOptionsFromUrl('redis://:secret@[::1]'), {
      password: 'secret',
      host: '::1',
      port: 6379,
    });
  });

  it('rediss:// turns on TLS, checked against the host name', () => {
    assert.deepEqual(redisOptionsFromUrl('rediss://r1.example'), {
      tls: { servername: 'r1.example' },
      host: 'r1.example',
      port: 6379,
    });
  });

  it('redis+sentinel:// lists the sentinels, the master name and the database', () => {
    assert.deepEqual(redisOptionsFromUrl('redis+sentinel://:pw@s1:26380,s2,[::1]:26381/mymaster/3'), {
      password: 'pw',
      name: 'mymaster',
      db: 3,
      sentinels: [
        { host: 's1', port: 26380 },
        { host: 's2', port: 26379 },
        { host: '::1', port: 26381 },
      ],
    });
  });

  it('bad URLs are refused with what is wrong, never echoing the password', () => {
    assert.throws(() => redisOptionsFromUrl('http://r1'), /use redis:\/\//);
    assert.throws(() => redisOptionsFromUrl('redis+sentinel://s1'), /masterName/);
    assert.throws(() => redisOptionsFromUrl('redis://:pw@r1/x'), /database must be a number/);
    assert.throws(() => redisOptionsFromUrl('redis://r1:99999'), /port must be/);
    assert.throws(() => redisOptionsFromUrl('redis://r1?tls=1'), /query parameters/);
    assert.throws(
      () => redisOptionsFromUrl('redis://:topsecret@r1/x'),
      (e: Error) => !e.message.includes('topsecret'),
    );
  });
});
