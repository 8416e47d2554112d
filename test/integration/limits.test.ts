import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type AmfValue, connect, type NetConnection, StatusError } from '../../sdk/client.ts';
import { bundleFiles, startAppNode, type TestAppNode } from '../support/apps.ts';
import { until } from '../support/node.ts';

const LIMITS = { cpuMs: 50, memoryMb: 32, awaitMs: 200 };
/** Filling 32 MB takes tens of ms, more on a busy machine: CPU must not be the limit that trips. */
const MEMORY_LIMITS = { cpuMs: 2_000, memoryMb: 32, awaitMs: 2_000 };

/** Handlers that break each limit, and ones that look for a way out of the isolate. */
const APP = `import { defineApp } from 'fnhost/sdk';

export default defineApp({
  rpc: {
    ok: () => 'ok',
    spin() {
      for (;;) {}
    },
    async spinAfterAwait(_client, _args, ctx) {
      await ctx.kv.get('x');
      for (;;) {}
    },
    bomb() {
      const a = [];
      for (;;) a.push(new Array(1e6).fill(1));
    },
    hang: () => new Promise(() => {}),
    ask: (client, [tag]) => client.call('ask', tag),
    fn: () => () => 1,
    asyncFn: async () => () => 1,
    throwString() {
      throw 'x';
    },
    async escape() {
      const attempt = (f) => {
        try {
          return f();
        } catch (e) {
          return 'threw: ' + (e && e.message);
        }
      };
      let dynamicImport;
      try {
        await (0, eval)("import('fs')");
        dynamicImport = 'resolved';
      } catch (e) {
        dynamicImport = 'rejected: ' + (e && e.message);
      }
      return {
        process: typeof process,
        // the bundle's require is esbuild's shim, which only throws; the global does not exist
        requireGlobal: (0, eval)('typeof require'),
        requireFs: attempt(() => require(['f', 's'].join(''))),
        hostOp: typeof globalThis.__host_op,
        hostGlobals: Object.getOwnPropertyNames(globalThis).filter((k) => k.startsWith('__host')),
        functionThisProcess: attempt(() => typeof Function('return this')().process),
        indirectEval: attempt(() => (0, eval)('typeof process')),
        constructorProcess: attempt(() => typeof globalThis.constructor.constructor('return process')()),
        dynamicImport,
      };
    },
  },
});
`;

async function callError(nc: NetConnection, name: string, ...args: AmfValue[]): Promise<string> {
  const e = await nc.call(name, ...args).then(
    (v) => assert.fail(`${name} was expected to fail, got ${JSON.stringify(v)}`),
    (err: unknown) => err,
  );
  assert.ok(e instanceof StatusError, `expected a StatusError, got ${e}`);
  assert.equal(e.code, 'NetConnection.Call.Failed');
  return e.description;
}

describe('handlers that break the limits fail only their own event', () => {
  let n: TestAppNode;
  let a: NetConnection;
  let b: NetConnection;
  before(async () => {
    n = await startAppNode({ files: { 'index.ts': APP }, limits: LIMITS });
    [a, b] = await Promise.all([connect(n.url()), connect(n.url())]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await n?.stop();
  });

  test('an endless loop fails with the CPU limit and the next calls are served', async () => {
    assert.match(await callError(a, 'spin'), /50 ms CPU limit/);
    assert.equal(await a.call('ok'), 'ok');
    assert.equal(await b.call('ok'), 'ok');
  });

  test('an endless loop after an await fails with the CPU limit too', async () => {
    assert.match(await callError(a, 'spinAfterAwait'), /50 ms CPU limit/);
    assert.equal(await a.call('ok'), 'ok');
    assert.equal(await b.call('ok'), 'ok');
  });

  test('a handler that awaits forever fails after awaitMs with a clear message', async () => {
    assert.match(await callError(a, 'hang'), /did not finish within 200 ms/);
    assert.equal(await a.call('ok'), 'ok');
  });

  test('returning a function fails with "cannot be sent"', async () => {
    assert.match(await callError(a, 'fn'), /cannot be sent/);
    assert.match(await callError(a, 'asyncFn'), /cannot be sent/);
  });

  test('throwing a non-Error fails the call with _error', async () => {
    assert.match(await callError(a, 'throwString'), /a non-Error was thrown: x/);
  });

  test('escape attempts find no Node API and no host globals', async () => {
    const found = (await a.call('escape')) as Record<string, unknown>;
    assert.equal(found.process, 'undefined');
    assert.equal(found.requireGlobal, 'undefined');
    assert.match(String(found.requireFs), /^threw: Dynamic require of "fs" is not supported/);
    assert.equal(found.hostOp, 'undefined');
    assert.deepEqual(found.hostGlobals, []);
    assert.equal(found.functionThisProcess, 'undefined');
    assert.equal(found.indirectEval, 'undefined');
    assert.equal(found.constructorProcess, 'threw: process is not defined');
    assert.match(String(found.dynamicImport), /^rejected/);
  });

  test('a version whose top-level code loops or exhausts memory fails to load, saying which', async () => {
    const load = async (code: string) => n.apps.load('boot', await bundleFiles({ 'index.ts': code }));
    await assert.rejects(load('for (;;) {}\nexport default {};\n'), /top-level code ran longer than \d+ ms/);
    await assert.rejects(
      load('const a = [];\nfor (;;) a.push(new Array(1e6).fill(1));\nexport default {};\n'),
      /top-level code exceeded the 32 MB memory limit/,
    );
    assert.deepEqual(n.apps.appNames, ['app']);
  });

  test('after all of that the node still serves a fresh client', async () => {
    const fresh = await connect(n.url());
    try {
      assert.equal(await fresh.call('ok'), 'ok');
    } finally {
      await fresh.close();
    }
  });
});

describe('a handler that exhausts its memory', () => {
  let n: TestAppNode;
  let a: NetConnection;
  let b: NetConnection;
  before(async () => {
    n = await startAppNode({ files: { 'index.ts': APP }, limits: MEMORY_LIMITS });
    [a, b] = await Promise.all([connect(n.url()), connect(n.url())]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await n?.stop();
  });

  test('a memory bomb fails its call, the isolate is rebuilt and the next call is served', async () => {
    assert.equal(n.apps.rebuilds('app'), 0);
    assert.match(await callError(a, 'bomb'), /exceeded the 32 MB memory limit/);
    assert.equal(n.apps.rebuilds('app'), 1);
    assert.equal(await a.call('ok'), 'ok');
    assert.equal(await b.call('ok'), 'ok');
  });

  test("an answer to the isolate before a rebuild is dropped, never reaching the rebuilt isolate's handler", async () => {
    /** Holds each `ask` a client gets until the test releases it. */
    const held = (nc: NetConnection) => {
      const release: (() => void)[] = [];
      nc.handle(
        'ask',
        (tag) => new Promise((resolve) => release.push(() => resolve(`${tag} from ${nc.peerId}`))),
      );
      return release;
    };
    const releaseA = held(a);
    const releaseB = held(b);
    const dropped = n.apps.droppedResults('app') ?? 0;
    // a's rpc awaits its client in the isolate that the bomb then takes down.
    const first = callError(a, 'ask', 'first');
    await until(() => releaseA.length === 1, 5_000, "a's ask");
    assert.match(await callError(b, 'bomb'), /exceeded the 32 MB memory limit/);
    assert.match(await first, /restarted after exceeding its memory limit/);
    // The rebuilt isolate's first op awaits b; a's answer to the dead isolate's op comes first.
    const second = b.call('ask', 'second');
    await until(() => releaseB.length === 1, 5_000, "b's ask");
    releaseA[0]();
    await until(() => n.apps.droppedResults('app') === dropped + 1, 5_000, "a's answer dropped");
    releaseB[0]();
    assert.equal(await second, `second from ${b.peerId}`);
  });
});
