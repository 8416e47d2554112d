import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, type NetConnection } from '../../sdk/client.ts';
import { endProcess, spawnCli } from '../support/processes.ts';

const app = (version: string) => `
export default {
  onConnection(client) { client.data.first = '${version}'; },
  rpc: {
    version() { return '${version}'; },
    first(client) { return client.data.first; },
  },
};
`;

async function waitFor(read: () => string, pattern: RegExp, what: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const m = pattern.exec(read());
    if (m) return m[0];
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}; got:\n${read()}`);
}

test('fnhost dev rebuilds on save and swaps the app under 20 connected clients; a broken save keeps the running version', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fnhost-dev-'));
  mkdirSync(join(dir, 'functions'));
  writeFileSync(join(dir, 'wrangler-like.toml'), 'name = "app"\n');
  writeFileSync(join(dir, 'functions', 'index.ts'), app('v1'));
  const dev = spawnCli(dir, ['dev', '--rtmfp', '127.0.0.1:0', '--json']);
  const child = dev.child;
  const out = dev.output;
  const err = dev.errors;
  const clients: NetConnection[] = [];
  try {
    const { url } = JSON.parse(await waitFor(out, /^.*\n/, 'the node')) as { url: string };
    for (let i = 0; i < 20; i++) clients.push(await connect(url));
    for (const nc of clients) assert.equal(await nc.call('version'), 'v1');

    writeFileSync(join(dir, 'functions', 'index.ts'), app('v2'));
    await waitFor(out, /{"reloaded":"app","version":"\w+","clients":20}/, 'the reload');
    for (const nc of clients) {
      assert.equal(nc.connected, true);
      assert.equal(await nc.call('version'), 'v2', 'the next call runs the new code');
      assert.equal(await nc.call('first'), 'v1', 'client.data carried over');
    }

    writeFileSync(
      join(dir, 'functions', 'index.ts'),
      'export default {\n  rpc: { version( { return 1; } },\n};\n',
    );
    await waitFor(err, /build failed:[\s\S]*index\.ts:2:\d+[\s\S]*still running version/, 'the build error');
    assert.equal(await clients[0].call('version'), 'v2', 'the old version keeps running');
  } finally {
    await Promise.all(clients.map((nc) => nc.close()));
    await endProcess(child);
    rmSync(dir, { recursive: true, force: true });
  }
});
