import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { connect, type NetConnection, StatusError } from '../../sdk/client.ts';
import { startTestCluster, type TestCluster } from '../support/test-cluster.ts';

/** The example app `fnhost dev` runs (functions/index.ts), as a user deploys it. */
const EXAMPLE = readFileSync(new URL('../../functions/index.ts', import.meta.url), 'utf8');

describe('the example app: subscribers past a per-node limit go to the least-loaded node', () => {
  let cluster: TestCluster;
  const connections: NetConnection[] = [];

  before(async () => {
    cluster = await startTestCluster({ nodes: 2, app: EXAMPLE, vars: { MAX_PLAYERS_PER_NODE: '2' } });
  });
  after(async () => {
    await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
    await cluster?.stop();
  });

  const open = async (node: number, name: string) => {
    const nc = await connect(`rtmfp://${cluster.nodes[node].rtmfp}/app`, name);
    connections.push(nc);
    return nc;
  };

  test('the 3rd player on a node is redirected to the other node, and plays there', async () => {
    const publisher = await open(0, 'pub');
    await publisher.publish('show');
    await (await open(0, 'p1')).play('show');
    await (await open(0, 'p2')).play('show');
    const refused = await (await open(0, 'p3')).play('show').catch((e: unknown) => e);
    assert.ok(refused instanceof StatusError, String(refused));
    assert.equal(refused.code, 'NetStream.Play.Failed');
    assert.equal(refused.description, cluster.nodes[1].rtmfp);
    const followed = await (await open(0, 'p4')).play('show', { followRedirect: true });
    connections.push(followed.connection);
    assert.equal(followed.connection.url, `rtmfp://${cluster.nodes[1].rtmfp}/app`);
  });

  test('ctx.publications.get counts players on every node; a publisher of the name on another node gets BadName', async () => {
    const [n0, n1] = cluster.nodes;
    const asker = await open(1, 'asker');
    const deadline = Date.now() + 5_000;
    type Seen = { node?: string; nodes?: Record<string, number> } | null;
    let info: Seen = null;
    while (Date.now() < deadline) {
      info = (await asker.call('stream', 'show')) as Seen;
      if (info?.nodes?.[n0.id] === 2 && info.nodes[n1.id] === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(info?.node, n0.id, 'the origin is the publisher’s node');
    assert.deepEqual(info?.nodes, { [n0.id]: 2, [n1.id]: 1 });
    const second = await asker.publish('show').catch((e: unknown) => e);
    assert.ok(second instanceof StatusError, String(second));
    assert.equal(second.code, 'NetStream.Publish.BadName');
    assert.match(second.description, new RegExp(`on node ${n0.id}`));
  });
});
