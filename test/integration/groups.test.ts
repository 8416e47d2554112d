import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { groupIdOfSpecifier } from '../../runtime/rtmfp/net-group.ts';
import { connect, type NetConnection, type NetGroup } from '../../sdk/client.ts';
import { startAppNode, type TestAppNode } from '../support/apps.ts';
import { until } from '../support/node.ts';

/** Polls an async `condition` every 20 ms until true; throws after `timeoutMs`. */
async function eventually(condition: () => Promise<boolean>, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const size = async (nc: NetConnection, group: string) =>
  ((await nc.call('group', group)) as { size: number }).size;

/** A version 1 group specifier as librtmfp builds one: options, then the 00 end marker. */
const SPECIFIER = 'G:010101210e6e65742d67726f75702d7465737400';
const GROUP_ID = groupIdOfSpecifier(SPECIFIER).toString('hex');

/** onJoinGroup refuses clients that connected with "deny"; the others are counted in kv. */
const APP = `import { defineApp, reject } from 'fnhost/sdk';

export default defineApp({
  onConnection(client, [mode]) {
    client.data.mode = mode ?? null;
  },
  async onJoinGroup(client, group, ctx) {
    if (client.data.mode === 'deny') throw reject('not in this group');
    await ctx.kv.incr('joined:' + group.id);
  },
  async onUnjoinGroup(_client, group, ctx) {
    await ctx.kv.incr('unjoined:' + group.id);
  },
  rpc: {
    group: (_client, [id], ctx) => ctx.groups.get(String(id)),
    count: (_client, [key], ctx) => ctx.kv.get(String(key)),
  },
});
`;

describe('NetGroup on one node', () => {
  let node: TestAppNode;
  const clients: NetConnection[] = [];

  before(async () => {
    node = await startAppNode({ files: { 'index.ts': APP }, groupsPerClient: 2 });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await node?.stop();
  });

  const client = async (...args: string[]) => {
    const nc = await connect(node.url(), ...args);
    clients.push(nc);
    return nc;
  };

  /** Joins `count` new clients one after the other, each once told of everyone it should be. */
  const joinMany = async (count: number, already: number) => {
    const joined: { nc: NetConnection; group: NetGroup }[] = [];
    for (let i = 0; i < count; i++) {
      const nc = await client();
      const group = nc.joinGroup(SPECIFIER);
      await group.waitForMembers(Math.min(already + i, 6));
      joined.push({ nc, group });
    }
    return joined;
  };

  test('each joiner is told of the newest 5 members and one random older one, newest first', async () => {
    const joined = await joinMany(8, 0);
    const ids = joined.map((j) => j.nc.peerId);
    assert.deepEqual(joined[0].group.members, [], 'the first member hears of nobody');
    assert.deepEqual(joined[1].group.members, [ids[0]]);
    assert.deepEqual(joined[5].group.members, ids.slice(0, 5).reverse());
    const last = joined[7].group.members;
    assert.deepEqual(last.slice(0, 5), ids.slice(2, 7).reverse());
    assert.equal(last.length, 6);
    assert.ok(ids.slice(0, 2).includes(last[5]), 'the sixth is one of the two older members');
    assert.equal(joined[0].group.id, GROUP_ID, 'the client hashes the specifier as librtmfp does');
    const view = (await joined[0].nc.call('group', SPECIFIER)) as {
      id: string;
      size: number;
      members: { peerId: string }[];
    };
    assert.equal(view.id, GROUP_ID);
    assert.equal(view.size, 8);
    assert.deepEqual(
      view.members.map((m) => m.peerId),
      ids,
    );
    assert.equal(await joined[0].nc.call('count', `joined:${GROUP_ID}`), 8);
  });

  test('a leave tells the successor of the member 6 places before it, and runs onUnjoinGroup', async () => {
    const before = (await clients[0].call('group', GROUP_ID)) as { members: { peerId: string }[] };
    const ids = before.members.map((m) => m.peerId);
    assert.equal(ids.length, 8);
    const joined = await joinMany(1, 8);
    const successor = joined[0].group;
    const heard: string[] = [];
    successor.on('member', (id) => heard.push(id));
    // The 8th member (index 7) leaves: its successor (index 8) learns of index 8 − 6 = 2.
    const leaver = clients[7];
    const told = once(successor, 'member');
    await leaver.close();
    await told;
    assert.deepEqual(heard, [ids[2]]);
    await eventually(
      async () => (await clients[0].call('count', `unjoined:${GROUP_ID}`)) === 1,
      'onUnjoinGroup',
    );
    assert.equal(await size(clients[0], GROUP_ID), 8, 'the leaver is out of the group');
  });

  test('onJoinGroup throwing refuses the membership with a flow exception; the connection stays', async () => {
    const nc = await client('deny');
    const group = nc.joinGroup(SPECIFIER);
    const [why] = await once(group, 'close');
    assert.equal(why, 'refused');
    assert.equal(node.groups.joinsFailed.refused, 1);
    assert.equal(await size(nc, GROUP_ID), 8, 'not counted in the group');
  });

  test('a join past [limits] groups_per_client is refused, and a group left frees its place', async () => {
    const nc = await client();
    const a = nc.joinGroup('a'.repeat(64));
    const b = nc.joinGroup('b'.repeat(64));
    const c = nc.joinGroup('c'.repeat(64));
    const [why] = await once(c, 'close');
    assert.equal(why, 'refused');
    assert.equal(node.groups.joinsFailed['groups-per-client'], 1);
    assert.equal(a.ended, undefined);
    assert.equal(b.ended, undefined);
    await until(() => node.groups.memberships >= 8 + 2, 2_000, 'both joins');
    a.leave();
    await eventually(async () => (await size(nc, 'a'.repeat(64))) === 0, 'the leave');
    const d = nc.joinGroup('d'.repeat(64));
    await eventually(async () => (await size(nc, 'd'.repeat(64))) === 1, 'the join in its place');
    assert.equal(d.ended, undefined);
  });

  test('ctx.groups.get names what is wrong with a bad group ID', async () => {
    await assert.rejects(
      clients[0].call('group', 'nope'),
      /ctx\.groups\.get: a group ID must be 64 hex digits/,
    );
  });
});
