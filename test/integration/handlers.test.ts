import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type AmfValue, connect, type NetConnection, StatusError } from '../../sdk/client.ts';
import { bundleFiles, LEVEL, type LogRecord, startAppNode, type TestAppNode } from '../support/apps.ts';
import { startNode, type TestNode, until } from '../support/node.ts';

const CRASH_LINE = "throw new Error('onConnection crashed for ' + String(detail));";

/** Exercises every handler and every part of ctx a test below looks at. */
const MAIN_APP = `import { defineApp, redirect, reject } from 'fnhost/sdk';

export default defineApp({
  onStart(ctx) {
    ctx.log.info('started', { node: ctx.node.id });
  },
  onStop(ctx) {
    ctx.log.info('stopping');
  },
  onConnection(client, args, ctx) {
    const [mode, detail] = args;
    if (mode === 'reject') {
      ctx.log.info('refusing', { id: client.id });
      throw reject(String(detail));
    }
    if (mode === 'redirect') throw redirect(String(detail));
    if (mode === 'crash') {
      ${CRASH_LINE}
    }
    ctx.log.info('connected', { id: client.id });
    return { greeting: 'welcome', args, id: client.id, path: client.path, properties: client.properties };
  },
  async onDisconnection(client, ctx) {
    ctx.log.info('left', { id: client.id });
    await ctx.kv.incr('disconnections');
  },
  rpc: {
    whoami: (client) => ({ id: client.id, path: client.path, properties: { ...client.properties } }),
    echo: (_client, args) => args,
    fail() {
      throw new Error('rpc failed on purpose');
    },
    async kvCycle(_client, [key, value], ctx) {
      await ctx.kv.set(String(key), value);
      const got = await ctx.kv.get(String(key));
      await ctx.kv.delete(String(key));
      return { got, afterDelete: await ctx.kv.get(String(key)) };
    },
    incr: (_client, [key, by], ctx) => ctx.kv.incr(String(key), by as number | undefined),
    set: (_client, [key, value, ttlMs], ctx) =>
      ctx.kv.set(String(key), value, ttlMs ? { ttlMs: Number(ttlMs) } : undefined),
    get: (_client, [key], ctx) => ctx.kv.get(String(key)),
    remember(client, [value]) {
      client.data.value = value;
    },
    recall: (client) => client.data.value ?? null,
    pingBack: (client, args) => client.call('ping', ...args),
    kick(client, [reason]) {
      client.close(String(reason));
    },
    context: (_client, _args, ctx) => ({
      env: { ...ctx.env },
      nodeId: ctx.node.id,
      servers: ctx.servers.count,
      clients: ctx.clients.count,
    }),
  },
});
`;

/** A second app on the same node: no onConnection, its own kv. */
const OTHER_APP = `import { defineApp } from 'fnhost/sdk';

export default defineApp({
  rpc: {
    set: (_client, [key, value], ctx) => ctx.kv.set(String(key), value),
    get: (_client, [key], ctx) => ctx.kv.get(String(key)),
  },
});
`;

/** Resolves to the StatusError `p` rejects with (fails the test if it resolves). */
async function statusError(p: Promise<unknown>): Promise<StatusError> {
  const e = await p.then(
    (v) => assert.fail(`expected a StatusError, got ${JSON.stringify(v)}`),
    (err: unknown) => err,
  );
  assert.ok(e instanceof StatusError, `expected a StatusError, got ${e}`);
  return e;
}

function field(v: AmfValue, name: string): AmfValue {
  return (v as Record<string, AmfValue>)[name];
}

function line(logs: LogRecord[], msg: string): LogRecord | undefined {
  return logs.find((r) => r.msg === msg);
}

describe('app handlers on a node', () => {
  let n: TestAppNode;
  const open: NetConnection[] = [];
  /** Connects and closes the client after the test file. */
  const client = async (url: string, ...args: AmfValue[]) => {
    const nc = await connect(url, ...args);
    open.push(nc);
    return nc;
  };

  before(async () => {
    n = await startAppNode({ files: { 'index.ts': MAIN_APP }, vars: { GREETING: 'hi', REGION: 'eu' } });
    await n.apps.load('other', await bundleFiles({ 'index.ts': OTHER_APP }));
  });
  after(async () => {
    await Promise.all(open.map((nc) => nc.close()));
    await n.stop();
  });

  describe('onConnection', () => {
    test('fields it returns appear in the connect _result info', async () => {
      const nc = await client(n.url());
      assert.equal(field(nc.info, 'code'), 'NetConnection.Connect.Success');
      assert.equal(field(nc.info, 'greeting'), 'welcome');
    });

    test('throw reject(msg) refuses with NetConnection.Connect.Rejected and msg as description', async () => {
      const e = await statusError(connect(n.url(), 'reject', 'members only'));
      assert.equal(e.code, 'NetConnection.Connect.Rejected');
      assert.equal(e.description, 'members only');
    });

    test('throw redirect(addr) refuses with info.ex.code 302 and the new URL in info.ex.redirect', async () => {
      const e = await statusError(connect(`${n.url('room1')}?token=t1`, 'redirect', '10.0.0.9:1935'));
      assert.equal(e.code, 'NetConnection.Connect.Rejected');
      const ex = field(e.info, 'ex');
      assert.equal(field(ex, 'code'), 302);
      assert.equal(
        field(ex, 'redirect'),
        'rtmfp://10.0.0.9:1935/app/room1?token=t1',
        'same path and query, new host',
      );
    });

    test('a plain throw refuses with its message and logs an error whose stack points at the author file', async () => {
      const e = await statusError(connect(n.url(), 'crash', 'carol'));
      assert.equal(e.code, 'NetConnection.Connect.Rejected');
      assert.match(e.description, /onConnection crashed for carol/);
      const record = n.logs.find((r) => r.level === LEVEL.error && /onConnection crashed/.test(r.msg));
      assert.ok(record, 'an error log line');
      assert.equal(record.event, 'connect');
      const crashLine = MAIN_APP.split('\n').findIndex((l) => l.includes(CRASH_LINE)) + 1;
      const stack = String((record.err as { stack?: string }).stack);
      assert.match(stack, new RegExp(`index\\.ts:${crashLine}:\\d+`), stack);
    });

    test('an app without onConnection accepts every connect', async () => {
      const nc = await client(n.url().replace(/\/app$/, '/other'), 'anything');
      assert.equal(field(nc.info, 'code'), 'NetConnection.Connect.Success');
    });

    test('a path naming no loaded app is refused with NetConnection.Connect.InvalidApp', async () => {
      const e = await statusError(connect(n.url().replace(/\/app$/, '/nope')));
      assert.equal(e.code, 'NetConnection.Connect.InvalidApp');
    });

    test('connect args reach the handler', async () => {
      const when = new Date(Date.UTC(2026, 0, 2));
      const nc = await client(n.url(), 'alice', 42, { role: 'admin', tags: ['a', 'b'] }, when);
      assert.deepEqual(field(nc.info, 'args'), ['alice', 42, { role: 'admin', tags: ['a', 'b'] }, when]);
    });

    test('client.id is the peer ID; client.path and client.properties come from the URL', async () => {
      const nc = await client(n.url('room1?x=1&y=two'));
      assert.equal(field(nc.info, 'id'), nc.peerId);
      assert.equal(field(nc.info, 'path'), 'room1');
      assert.deepEqual(field(nc.info, 'properties'), { x: '1', y: 'two' });
      assert.deepEqual(await nc.call('whoami'), {
        id: nc.peerId,
        path: 'room1',
        properties: { x: '1', y: 'two' },
      });
    });
  });

  describe('rpc', () => {
    test('the result is the _result value', async () => {
      const nc = await client(n.url());
      assert.deepEqual(await nc.call('echo', 1, 'two', [3]), [1, 'two', [3]]);
    });

    test('a throw becomes _error with its message', async () => {
      const nc = await client(n.url());
      const e = await statusError(nc.call('fail'));
      assert.equal(e.code, 'NetConnection.Call.Failed');
      assert.match(e.description, /rpc failed on purpose/);
      assert.deepEqual(await nc.call('echo', 'still here'), ['still here']);
    });

    test('an unknown name is answered with Method not found', async () => {
      const nc = await client(n.url());
      const e = await statusError(nc.call('nope'));
      assert.match(e.description, /Method not found/);
    });

    test('client.data persists across calls of one client and is separate per client', async () => {
      const [a, b] = await Promise.all([client(n.url()), client(n.url())]);
      await a.call('remember', 'for a');
      assert.equal(await a.call('recall'), 'for a');
      assert.equal(await b.call('recall'), null);
      await b.call('remember', 'for b');
      assert.equal(await a.call('recall'), 'for a');
      assert.equal(await b.call('recall'), 'for b');
    });

    test('client.call reaches the client and resolves to what its handler returns', async () => {
      const nc = await client(n.url());
      nc.handle('ping', (...args) => ({ pong: args }));
      assert.deepEqual(await nc.call('pingBack', 'x', 2), { pong: ['x', 2] });
    });

    test('client.close(reason) closes the client with NetConnection.Connect.Closed and the reason', async () => {
      const nc = await client(n.url());
      const closed = once(nc, 'close');
      await nc.call('kick', 'too chatty').catch(() => undefined);
      const [info] = await closed;
      assert.equal(field(info, 'code'), 'NetConnection.Connect.Closed');
      assert.equal(field(info, 'description'), 'too chatty');
    });
  });

  describe('lifecycle', () => {
    test('onStart runs when the version loads', () => {
      const started = line(n.logs, 'started');
      assert.ok(started, 'the onStart log line');
      assert.equal(started.app, 'app');
      assert.equal(started.event, 'start');
    });

    test('onDisconnection runs when the client closes', async () => {
      const nc = await connect(n.url());
      const peer = nc.peerId;
      await nc.close();
      await until(
        () => n.logs.some((r) => r.msg === 'left' && r.id === peer),
        3_000,
        'the onDisconnection log line',
      );
      const probe = await client(n.url());
      assert.ok(Number(await probe.call('get', 'disconnections')) >= 1);
    });

    test('a client refused by onConnection never reaches onDisconnection', async () => {
      await statusError(connect(n.url(), 'reject', 'not you'));
      const refused = n.logs.findLast((r) => r.msg === 'refusing')?.id;
      assert.ok(refused, 'the refusing log line');
      // onDisconnection logs before its first await, and the node closes a refused client
      // before the client hears _error: a call to it would show by now.
      assert.equal(
        n.logs.some((r) => r.msg === 'left' && r.id === refused),
        false,
      );
    });
  });

  describe('ctx.kv', () => {
    test('set, get and delete', async () => {
      const nc = await client(n.url());
      assert.deepEqual(await nc.call('kvCycle', 'k1', 'v1'), { got: 'v1', afterDelete: null });
    });

    test('incr counts from 0 and by the given step', async () => {
      const nc = await client(n.url());
      assert.equal(await nc.call('incr', 'counter'), 1);
      assert.equal(await nc.call('incr', 'counter', 5), 6);
      assert.equal(await nc.call('get', 'counter'), 6);
    });

    test('a key set with ttlMs is gone after it expires', async () => {
      const nc = await client(n.url());
      // The read back needs two calls through the node inside the ttl: 400 ms leaves room.
      await nc.call('set', 'short', 'lived', 400);
      assert.equal(await nc.call('get', 'short'), 'lived');
      await sleep(500);
      assert.equal(await nc.call('get', 'short'), null);
    });

    test('objects, arrays and dates round-trip', async () => {
      const nc = await client(n.url());
      const value = { name: 'x', list: [1, 'two', { three: 3 }], when: new Date(Date.UTC(2025, 5, 6)) };
      assert.deepEqual(await nc.call('kvCycle', 'structured', value), { got: value, afterDelete: null });
      await nc.call('set', 'list', [[1], [2, 3]]);
      assert.deepEqual(await nc.call('get', 'list'), [[1], [2, 3]]);
    });

    test('keys are app-scoped: two apps on one node do not see each other', async () => {
      const app = await client(n.url());
      const other = await client(n.url().replace(/\/app$/, '/other'));
      await app.call('set', 'shared', 'from app');
      assert.equal(await other.call('get', 'shared'), null);
      await other.call('set', 'shared', 'from other');
      assert.equal(await app.call('get', 'shared'), 'from app');
      assert.equal(await other.call('get', 'shared'), 'from other');
    });
  });

  describe('ctx', () => {
    test('env has the vars, node.id is a string, one server, clients counts this app only', async () => {
      const before = Number(field(await (await client(n.url())).call('context'), 'clients'));
      const mine = await Promise.all([client(n.url()), client(n.url())]);
      await client(n.url().replace(/\/app$/, '/other'));
      const ctx = await mine[0].call('context');
      assert.deepEqual(field(ctx, 'env'), { GREETING: 'hi', REGION: 'eu' });
      assert.equal(typeof field(ctx, 'nodeId'), 'string');
      assert.ok(String(field(ctx, 'nodeId')).length > 0);
      assert.equal(field(ctx, 'servers'), 1);
      assert.equal(field(ctx, 'clients'), before + 2);
    });
  });
});

describe('onStop', () => {
  test('runs when the app is unloaded', async () => {
    const n = await startAppNode({ files: { 'index.ts': MAIN_APP } });
    try {
      assert.equal(line(n.logs, 'stopping'), undefined);
      await n.apps.stop();
      const stopping = line(n.logs, 'stopping');
      assert.ok(stopping, 'the onStop log line');
      assert.equal(stopping.event, 'stop');
    } finally {
      await n.stop();
    }
  });
});

/** Redirects to REDIRECT_TO when the URL says ?go=away; ?crash=1 throws. */
const HANDSHAKE_APP = `import { defineApp } from 'fnhost/sdk';

export default defineApp({
  onHandshake(hs, ctx) {
    ctx.log.info('handshake', { path: hs.path, attempts: hs.attempts });
    if (hs.properties.crash) throw new Error('onHandshake crashed');
    if (hs.properties.go === 'away') return ctx.env.REDIRECT_TO;
    return undefined;
  },
});
`;

describe('onHandshake', () => {
  let second: TestNode;
  let n: TestAppNode;
  before(async () => {
    second = await startNode();
    n = await startAppNode({
      files: { 'index.ts': HANDSHAKE_APP },
      vars: { REDIRECT_TO: `127.0.0.1:${second.port}` },
    });
  });
  after(async () => {
    await n?.stop();
    await second?.stop();
  });

  test('returning an address sends the client to that node', async () => {
    const nc = await connect(n.url('?go=away'));
    try {
      assert.equal(nc.serverFingerprint, second.node.fingerprint);
    } finally {
      await nc.close();
    }
  });

  test('returning nothing accepts the client here', async () => {
    const nc = await connect(n.url());
    try {
      assert.equal(nc.serverFingerprint, n.node.fingerprint);
    } finally {
      await nc.close();
    }
  });

  test('a throwing onHandshake accepts the client here and logs the error', async () => {
    const nc = await connect(n.url('?crash=1'));
    try {
      assert.equal(nc.serverFingerprint, n.node.fingerprint);
      const record = n.logs.find((r) => r.level === LEVEL.error && r.event === 'handshake');
      assert.ok(record, 'an error log line for the handshake');
      assert.match(record.msg, /onHandshake crashed/);
    } finally {
      await nc.close();
    }
  });

  test('past the per-second bound onHandshake is skipped and the default (accept here) applies', async () => {
    const bounded = await startAppNode({
      files: { 'index.ts': HANDSHAKE_APP },
      vars: { REDIRECT_TO: `127.0.0.1:${second.port}` },
      handshakesPerSecond: 1,
    });
    try {
      // The second IHello must fall in the second the first handshake opened: it is sent as soon
      // as onHandshake has run for the first, not after the first's whole handshake (which a
      // loaded machine can stretch past a second).
      const firstConnect = connect(bounded.url());
      await until(() => bounded.logs.some((r) => r.msg === 'handshake'), 5_000, 'the first onHandshake');
      const over = await connect(bounded.url('?go=away'));
      const first = await firstConnect;
      try {
        assert.equal(over.serverFingerprint, bounded.node.fingerprint);
        assert.equal(bounded.apps.handshakesOverBound, 1);
        assert.equal(bounded.logs.filter((r) => r.msg === 'handshake').length, 1);
      } finally {
        await Promise.all([first.close(), over.close()]);
      }
    } finally {
      await bounded.stop();
    }
  });
});

describe('the example app in functions/', () => {
  test('greets a named user with GREETING, counts visits and refuses a connect without a name', async () => {
    const dir = fileURLToPath(new URL('../../functions/', import.meta.url));
    const n = await startAppNode({ files: { dir }, name: 'chat', vars: { GREETING: 'hey' } });
    try {
      const nc = await connect(n.url(), 'alice');
      try {
        assert.equal(field(nc.info, 'greeting'), 'hey, alice');
        assert.equal(field(nc.info, 'visits'), 1);
        assert.equal(field(await nc.call('whoami'), 'name'), 'alice');
      } finally {
        await nc.close();
      }
      const e = await statusError(connect(n.url()));
      assert.match(e.description, /a user name is required/);
    } finally {
      await n.stop();
    }
    assert.ok(existsSync(dir), 'a given folder is left in place');
  });
});
