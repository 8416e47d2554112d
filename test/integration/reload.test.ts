import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BuildError } from '../../runtime/sandbox/bundle.ts';
import { connect, type NetConnection } from '../../sdk/client.ts';
import { startAppNode, type TestAppNode } from '../support/apps.ts';

const CLIENTS = 20;

/** One version of the app: `version` answers `tag`; `held` waits on the client before answering. */
const version = (tag: string) => `import { defineApp } from 'fnhost/sdk';

export default defineApp({
  onStop(ctx) {
    ctx.log.info('stopping ${tag}');
  },
  rpc: {
    version: () => '${tag}',
    remember(client, [value]) {
      client.data.value = value;
    },
    recall: (client) => client.data.value ?? null,
    async held(client) {
      await client.call('hold');
      return '${tag}';
    },
  },
});
`;

describe('hot reload with connected clients', () => {
  let n: TestAppNode;
  let clients: NetConnection[] = [];
  before(async () => {
    n = await startAppNode({ files: { 'index.ts': version('v1') } });
    clients = await Promise.all(Array.from({ length: CLIENTS }, () => connect(n.url())));
  });
  after(async () => {
    await Promise.all(clients.map((nc) => nc.close()));
    await n?.stop();
  });

  test('every client stays connected, its next call runs the new version and its data is kept', async () => {
    await Promise.all(clients.map((nc, i) => nc.call('remember', { i })));
    assert.deepEqual(await Promise.all(clients.map((nc) => nc.call('version'))), Array(CLIENTS).fill('v1'));
    const v1 = n.apps.version('app');

    await n.reload({ 'index.ts': version('v2') });

    assert.notEqual(n.apps.version('app'), v1);
    assert.equal(n.node.stats().connections, CLIENTS);
    assert.ok(clients.every((nc) => nc.connected));
    assert.deepEqual(await Promise.all(clients.map((nc) => nc.call('version'))), Array(CLIENTS).fill('v2'));
    assert.deepEqual(
      await Promise.all(clients.map((nc) => nc.call('recall'))),
      clients.map((_, i) => ({ i })),
    );
    assert.ok(
      n.logs.some((r) => r.msg === 'stopping v1'),
      'onStop of the old version ran',
    );
  });

  test('a call in flight finishes on the version that started it', async () => {
    const [nc] = clients;
    let release!: () => void;
    const holding = new Promise<void>((r) => {
      release = r;
    });
    let asked!: () => void;
    const called = new Promise<void>((r) => {
      asked = r;
    });
    nc.handle('hold', async () => {
      asked();
      await holding;
      return null;
    });
    const inFlight = nc.call('held');
    await called;
    await n.reload({ 'index.ts': version('v3') });
    release();
    assert.equal(await inFlight, 'v2');
    assert.equal(await nc.call('version'), 'v3');
    await n.reload({ 'index.ts': version('v2') });
  });

  test('a version with a syntax error is a BuildError and the running version keeps answering', async () => {
    const running = n.apps.version('app');
    await assert.rejects(n.reload({ 'index.ts': `${version('v4')}\nexport const = ;\n` }), (e: unknown) => {
      assert.ok(e instanceof BuildError, `expected a BuildError, got ${e}`);
      assert.match(e.message, /index\.ts:\d+:\d+: error/);
      return true;
    });
    assert.equal(n.apps.version('app'), running);
    assert.equal(await clients[1].call('version'), 'v2');
  });

  test('a version whose top-level code throws is not loaded and the old one keeps running', async () => {
    const running = n.apps.version('app');
    const broken = `throw new Error('cannot start: missing config');\n${version('v5')}`;
    await assert.rejects(n.reload({ 'index.ts': broken }), (e: unknown) => {
      assert.match(String(e), /the app failed to load: .*cannot start: missing config/);
      assert.match(String((e as Error).message), /index\.ts:1:\d+/);
      return true;
    });
    assert.equal(n.apps.version('app'), running);
    assert.equal(n.node.stats().connections, CLIENTS);
    assert.deepEqual(await Promise.all(clients.map((nc) => nc.call('version'))), Array(CLIENTS).fill('v2'));
    assert.deepEqual(await clients[2].call('recall'), { i: 2 });
  });
});
