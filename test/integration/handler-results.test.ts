import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, NetConnection, StatusError } from '../../sdk/client.ts';
import { bundleFiles, LEVEL, type LogRecord, startAppNode, type TestAppNode } from '../support/apps.ts';
import { startNode, type TestNode, until } from '../support/node.ts';

/**
 * Values a handler might return by mistake, by name. `?mode=NAME` (onHandshake), connect
 * argument NAME (onConnection) and `call('wrong', NAME)` (rpc) return WRONG[NAME]();
 * `async:NAME` returns it through a promise.
 */
const WRONG_VALUES = `{
  number: () => 42,
  boolean: () => true,
  string: () => 'not an address',
  array: () => [1, 2],
  object: () => ({ a: 1 }),
  bigint: () => 10n,
  symbol: () => Symbol('s'),
  function: () => () => 1,
  map: () => new Map([['a', 1]]),
  int32: () => new Int32Array(2),
  cycle: () => {
    const o = { list: [] };
    o.list.push(o);
    return o;
  },
  nestedFunction: () => ({ f() {} }),
  nestedBigint: () => ({ n: [1, 10n] }),
  deep: () => {
    let v = {};
    for (let i = 0; i < 70; i++) v = { v };
    return v;
  },
  emptyName: () => ({ '': 1 }),
  badAddress: () => ['127.0.0.1:1935', '127.0.0.1'],
  unresolvable: () => 'nohost.invalid:1935',
  tooMany: () => Array.from({ length: 17 }, (_, i) => '127.0.0.1:' + (2000 + i)),
  hang: () => new Promise(() => {}),
}`;

const APP = `import { defineApp } from 'fnhost/sdk';

const WRONG = ${WRONG_VALUES};

function wrong(mode) {
  const name = String(mode ?? '');
  if (name.startsWith('async:')) return Promise.resolve().then(() => WRONG[name.slice(6)]());
  return WRONG[name] ? WRONG[name]() : undefined;
}

export default defineApp({
  onHandshake(hs, ctx) {
    ctx.log.info('handshake', { mode: hs.properties.mode ?? null });
    return hs.properties.redirect ?? wrong(hs.properties.mode);
  },
  onConnection(client, [mode]) {
    client.data.mode = mode;
    return mode === 'ok' || mode === undefined ? { hello: 'ok' } : wrong(mode);
  },
  onDisconnection(client, ctx) {
    ctx.log.info('left', { mode: client.data.afterwards });
    return wrong(client.data.afterwards);
  },
  rpc: {
    ok: () => 'ok',
    wrong: (_client, [mode]) => wrong(mode),
    afterwards(client, [mode]) {
      client.data.afterwards = mode;
    },
    callBack: (client, [mode]) => client.call('echo', 'fine', wrong(mode)),
  },
});
`;

/** onStart, onStop, onServerConnection, onServerDisconnection and server.ping, all returning WRONG[MODE](). */
const lifecycleApp = (mode: string) => `import { defineApp } from 'fnhost/sdk';

const WRONG = ${WRONG_VALUES};
const value = () => (${JSON.stringify(mode)}.startsWith('async:')
  ? Promise.resolve().then(() => WRONG[${JSON.stringify(mode.replace(/^async:/, ''))}]())
  : WRONG[${JSON.stringify(mode)}]());

export default defineApp({
  onStart: value,
  onStop: value,
  onServerConnection: value,
  onServerDisconnection: value,
  server: { ping: value },
});
`;

/** Bounds each test: a call nobody answers would otherwise wait forever. */
const CASE = { timeout: 15_000 };

const WITH_ASYNC = (modes: string[]) => modes.flatMap((m) => [m, `async:${m}`]);

/** Wrong values for each handler whose result the node acts on, and what the log line says. */
const HANDSHAKE_CASES: [string, RegExp][] = [
  ['number', /returned a number \(42\); return nothing, "host:port" or a list of them/],
  ['boolean', /returned a boolean \(true\)/],
  ['object', /returned an object;/],
  ['bigint', /returned a bigint \(10\)/],
  ['map', /returned a Map;/],
  ['array', /returned an array holding a number \(1\) at \[0\]/],
  ['string', /returned "not an address", which is not "host:port"/],
  ['badAddress', /returned "127\.0\.0\.1", which is not "host:port"/],
  ['unresolvable', /"nohost\.invalid:1935"; host name "nohost\.invalid" does not resolve/],
  ['tooMany', /returned 17 addresses; a redirect carries at most 16/],
  ['function', /cannot be sent/],
  ['symbol', /cannot be sent/],
];

const CONNECT_CASES: [string, RegExp][] = [
  ['number', /returned a number \(42\); return an object of extra _result info fields, or nothing/],
  ['boolean', /returned a boolean \(true\)/],
  ['string', /returned the string "not an address"/],
  ['array', /returned an array;/],
  ['bigint', /returned a bigint \(10\)/],
  ['map', /returned a Map;/],
  ['int32', /returned an Int32Array;/],
  ['cycle', /_result info holds a cycle \(an object inside itself\) at \.list\[0\], which AMF cannot carry/],
  ['nestedBigint', /_result info holds a bigint \(10\) at \.n\[1\], which AMF cannot carry/],
  ['deep', /_result info holds objects nested deeper than 64 levels at \.v(\.v)+/],
  ['emptyName', /_result info is an object with an empty member name/],
  ['function', /cannot be sent/],
  ['nestedFunction', /cannot be sent/],
  ['symbol', /cannot be sent/],
];

const RPC_CASES: [string, RegExp][] = [
  ['bigint', /the handler's result is a bigint \(10\), which AMF cannot carry; use numbers, strings/],
  ['map', /the handler's result is a Map, which AMF cannot carry/],
  ['int32', /the handler's result is an Int32Array, which AMF cannot carry/],
  ['cycle', /the handler's result holds a cycle \(an object inside itself\) at \.list\[0\]/],
  ['nestedBigint', /the handler's result holds a bigint \(10\) at \.n\[1\]/],
  ['deep', /the handler's result holds objects nested deeper than 64 levels/],
  ['emptyName', /the handler's result is an object with an empty member name/],
  ['function', /cannot be sent/],
  ['nestedFunction', /cannot be sent/],
  ['symbol', /cannot be sent/],
];

/** What the result-less handlers return, ignored: none of it may fail them or the node. */
const IGNORED = WITH_ASYNC(['number', 'bigint', 'map', 'cycle', 'function', 'nestedFunction', 'symbol']);

function errorLines(logs: LogRecord[], from: number, handler: string): LogRecord[] {
  return logs.slice(from).filter((r) => r.level >= LEVEL.error && r.handler === handler);
}

describe('a handler that returns a wrong value fails only that event', () => {
  let other: TestNode;
  let n: TestAppNode;
  /** Every rejection nobody handled while the file runs: a node must cause none. */
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => void unhandled.push(reason);

  before(async () => {
    process.on('unhandledRejection', record);
    other = await startNode();
    n = await startAppNode({ files: { 'index.ts': APP }, limits: { awaitMs: 300 } });
  });
  after(async () => {
    await n?.stop();
    await other?.stop();
    process.off('unhandledRejection', record);
  });

  /** The fingerprint of the node a client dialling `url` ends up connected to. */
  async function answeredBy(url: string): Promise<string> {
    const nc = await connect(url);
    await nc.close();
    return nc.serverFingerprint;
  }

  /** The node still takes a new client and answers its call. */
  async function stillServing(): Promise<void> {
    const nc = await connect(n.url());
    try {
      assert.equal(await nc.call('ok'), 'ok');
    } finally {
      await nc.close();
    }
  }

  describe('onHandshake: the client is answered here and a log line names the handler and the value', () => {
    for (const [mode, message] of HANDSHAKE_CASES) {
      for (const m of [mode, `async:${mode}`]) {
        test(m, CASE, async () => {
          const from = n.logs.length;
          const here = await answeredBy(n.url(`?mode=${encodeURIComponent(m)}`));
          assert.equal(here, n.node.fingerprint, 'answered here, not redirected');
          const [line] = errorLines(n.logs, from, 'onHandshake');
          assert.ok(line, 'an error line naming onHandshake');
          assert.match(line.msg, /^onHandshake failed: /);
          assert.match(line.msg, message);
          await stillServing();
        });
      }
    }

    test(
      'a host name (localhost:PORT) is resolved and the client redirected to its address',
      CASE,
      async () => {
        // The second time from the resolved-name cache.
        for (let i = 0; i < 2; i++) {
          assert.equal(await answeredBy(n.url(`?redirect=localhost:${other.port}`)), other.node.fingerprint);
        }
      },
    );
  });

  describe('onConnection: the connect is refused with the reason and a log line names the handler', () => {
    for (const [mode, message] of CONNECT_CASES) {
      for (const m of [mode, `async:${mode}`]) {
        test(m, CASE, async () => {
          const from = n.logs.length;
          const e = await connect(n.url(), m).then(
            (nc) => nc.close().then(() => assert.fail('the connect was accepted')),
            (err: unknown) => err,
          );
          assert.ok(e instanceof StatusError, `a StatusError, got ${e}`);
          assert.equal(e.code, 'NetConnection.Connect.Rejected');
          assert.match(e.description, /^onConnection failed: /);
          assert.match(e.description, message);
          const [line] = errorLines(n.logs, from, 'onConnection');
          assert.ok(line, 'an error line naming onConnection');
          assert.match(line.msg, message);
          await stillServing();
        });
      }
    }
  });

  describe('rpc: the caller gets _error with the reason, a log line names the handler', () => {
    let nc: NetConnection;
    before(async () => {
      nc = await connect(n.url());
    });
    after(() => nc?.close());

    for (const [mode, message] of RPC_CASES) {
      for (const m of [mode, `async:${mode}`]) {
        test(m, CASE, async () => {
          const from = n.logs.length;
          const e = await nc.call('wrong', m).then(
            (v) => assert.fail(`the call returned ${JSON.stringify(v)}`),
            (err: unknown) => err,
          );
          assert.ok(e instanceof StatusError, `a StatusError, got ${e}`);
          assert.equal(e.code, 'NetConnection.Call.Failed');
          assert.match(e.description, message);
          const [line] = errorLines(n.logs, from, 'rpc.wrong');
          assert.ok(line, 'an error line naming rpc.wrong');
          assert.match(line.msg, /^rpc\.wrong failed: /);
          assert.equal(await nc.call('ok'), 'ok', 'the same client is still served');
          await stillServing();
        });
      }
    }
  });

  describe('client.call with arguments AMF cannot carry: the handler gets the reason, nothing is sent', () => {
    let nc: NetConnection;
    let echoed = 0;
    before(async () => {
      nc = await connect(n.url());
      nc.handle('echo', (...args) => {
        echoed++;
        return args;
      });
    });
    after(() => nc?.close());

    for (const [mode, message] of [
      ['map', /the argument list of client\.call\('echo'\) holds a Map at \[1\], which AMF cannot carry/],
      ['nestedBigint', /the argument list of client\.call\('echo'\) holds a bigint \(10\) at \[1\]\.n\[1\]/],
      ['int32', /the argument list of client\.call\('echo'\) holds an Int32Array at \[1\]/],
    ] as const) {
      test(mode, CASE, async () => {
        const before = echoed;
        await assert.rejects(nc.call('callBack', mode), (e: unknown) => {
          assert.ok(e instanceof StatusError);
          assert.match(e.description, message);
          return true;
        });
        assert.equal(echoed, before, 'the client was not called');
        assert.deepEqual(
          await nc.call('callBack', 'none'),
          ['fine', undefined],
          'a good call still goes through',
        );
      });
    }
  });

  describe('handlers whose result nothing uses: what they return is ignored', () => {
    test('onDisconnection', CASE, async () => {
      const from = n.logs.length;
      for (const mode of IGNORED) {
        const nc = await connect(n.url());
        await nc.call('afterwards', mode);
        await nc.close();
      }
      await until(
        () => n.logs.slice(from).filter((r) => r.msg === 'left').length === IGNORED.length,
        5_000,
        'every onDisconnection',
      );
      assert.deepEqual(
        n.logs.slice(from).filter((r) => r.level >= LEVEL.error),
        [],
      );
      await stillServing();
    });

    test('onStart, onStop, onServerConnection, onServerDisconnection, server.NAME', CASE, async () => {
      const from = n.logs.length;
      const server = {
        id: 'other',
        publicAddress: '127.0.0.1:1',
        load: { clients: 0 },
        paused: false,
        state: 'serving' as const,
      };
      for (const mode of IGNORED) {
        // Loading runs this version's onStart and the previous one's onStop.
        await n.apps.load('lifecycle', await bundleFiles({ 'index.ts': lifecycleApp(mode) }));
        await n.apps.serverChanged('serverJoined', server);
        await n.apps.serverChanged('serverLeft', server);
        await n.apps.deliver('lifecycle', server, 'ping', []);
      }
      const failures = n.logs.slice(from).filter((r) => r.level >= LEVEL.error);
      assert.deepEqual(failures, []);
      await stillServing();
    });
  });

  test(
    'no handler outcome, settled before or after the node stopped, leaves a rejection unhandled',
    CASE,
    async () => {
      // Long enough an await that the handlers are still pending when the node's sockets close.
      const late = await startAppNode({ files: { 'index.ts': APP }, limits: { awaitMs: 1_500 } });
      let stopped = false;
      try {
        const caller = await connect(late.url());
        const pending = [
          // Each awaits forever; stopping the node (then its apps) settles them as failed.
          NetConnection.open(late.url('?mode=hang'), { timeoutMs: 5_000 }).catch(() => undefined),
          NetConnection.open(late.url(), { args: ['hang'], timeoutMs: 5_000 }).then(
            (nc) => nc.close(),
            () => undefined,
          ),
          caller.call('wrong', 'hang').catch(() => undefined),
        ];
        await until(
          () => late.logs.some((r) => r.msg === 'handshake' && r.mode === 'hang'),
          5_000,
          'the hanging onHandshake',
        );
        await late.stop();
        stopped = true;
        await Promise.all(pending);
        await caller.close();
      } finally {
        if (!stopped) await late.stop();
      }
      // Handlers that the stop settled are acted on in later turns of the event loop.
      await sleep(100);
      assert.deepEqual(unhandled, []);
    },
  );

  test('after all of that the node serves a fresh client, and nothing went unhandled', CASE, async () => {
    await stillServing();
    assert.deepEqual(unhandled, []);
  });
});
