import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { groupIdOfSpecifier } from '../../runtime/rtmfp/net-group.ts';
import { connect, type NetConnection, type NetGroup } from '../../sdk/client.ts';
import { cli } from '../support/processes.ts';
import { startTestCluster, TEST_HEARTBEAT_MS, type TestCluster } from '../support/test-cluster.ts';

const SPECIFIER = 'G:010101210d636c75737465722d67726f757000';
const GROUP_ID = groupIdOfSpecifier(SPECIFIER).toString('hex');
const CLIENTS = 30;

const APP = `import { defineApp } from 'fnhost/sdk';
export default defineApp({
  onJoinGroup() {},
  rpc: { group: (_client, [id], ctx) => ctx.groups.get(String(id)) },
});
`;

interface Member {
  nc: NetConnection;
  group: NetGroup;
  /** The node it is connected to. */
  node: string;
}

describe('NetGroup across 3 nodes', () => {
  let cluster: TestCluster;
  let state: RedisState;
  const members: Member[] = [];
  const nodeOf = new Map<string, string>();

  before(async () => {
    cluster = await startTestCluster({ nodes: 3, app: APP });
    state = await RedisState.connect(cluster.redis.url, {
      cluster: 'default',
      logger: pino({ level: 'silent' }),
    });
  });

  after(async () => {
    await Promise.all(members.map((m) => m.nc.abort().catch(() => {})));
    await state?.close();
    await cluster?.stop();
  });

  /** A client on node `n` joins; resolves once it heard of `expect` members. */
  const join = async (n: number, expect: number): Promise<Member> => {
    const node = cluster.nodes[n];
    const nc = await connect(`rtmfp://${node.rtmfp}/app`);
    nodeOf.set(nc.peerId, node.id);
    const group = nc.joinGroup(SPECIFIER);
    await group.waitForMembers(expect);
    const member = { nc, group, node: node.id };
    members.push(member);
    return member;
  };

  test('30 clients over 3 nodes join one group, each hearing of members on the other nodes', async () => {
    for (let i = 0; i < CLIENTS; i++) await join(i % 3, Math.min(i, 6));
    const ids = members.map((m) => m.nc.peerId);
    for (const [i, m] of members.entries()) {
      // The newest 5 others, newest first (from every node), then one random older one.
      assert.deepEqual(
        m.group.members.slice(0, 5),
        ids.slice(Math.max(0, i - 5), i).reverse(),
        `client ${i}`,
      );
      if (i >= 6) assert.ok(ids.slice(0, i - 5).includes(m.group.members[5]), `client ${i}: the older one`);
      // Clients join the nodes in turn: of the 5 newest, only the one 3 places back shares its node.
      const elsewhere = m.group.members.slice(0, 5).filter((id) => nodeOf.get(id) !== m.node);
      assert.equal(
        elsewhere.length,
        Math.min(i, 5) - (i >= 3 ? 1 : 0),
        `client ${i}: members on other nodes`,
      );
    }
    const view = (await members[0].nc.call('group', GROUP_ID)) as {
      size: number;
      members: { peerId: string; node: string }[];
    };
    assert.equal(view.size, CLIENTS);
    assert.deepEqual(
      view.members.map((m) => [m.peerId, m.node]),
      members.map((m) => [m.nc.peerId, m.node]),
      'in join order, with their nodes, seen from any node',
    );
  });

  test("each node's /metrics counts the memberships it holds", async () => {
    for (const node of cluster.nodes) {
      const text = await (await fetch(`http://${node.http}/metrics`)).text();
      assert.match(text, /^fnhost_group_memberships 10$/m, `node ${node.id}`);
    }
  });

  test('fnhost status shows the group and its size', async () => {
    const r = await cli(cluster.dir, ['status', '--redis', cluster.redis.url, '--json']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual((JSON.parse(r.out) as { groups: unknown }).groups, [{ id: GROUP_ID, size: CLIENTS }]);
  });

  test('a leave tells the successor, on another node, of the member 6 places before it', async () => {
    // Client 20 is on node 2 and its successor, client 21, on node 0: 21 learns of 21 − 6 = 15.
    const leaver = members[20];
    const successor = members[21];
    assert.notEqual(leaver.node, successor.node);
    const told = once(successor.group, 'member');
    await leaver.nc.close();
    members.splice(20, 1);
    const [peerId] = (await told) as [string];
    assert.equal(peerId, members[15].nc.peerId);
    const view = (await members[0].nc.call('group', GROUP_ID)) as { size: number };
    assert.equal(view.size, CLIENTS - 1);
  });

  test('a node killed mid-group: its members leave every list within 3 heartbeats and are not introduced afterwards', async () => {
    const victim = cluster.nodes[2];
    const record = (await state.nodes()).find((n) => n.id === victim.id);
    assert.ok(record);
    victim.child.kill('SIGKILL');
    await once(victim.child, 'exit');
    const onVictim = members.filter((m) => m.node === victim.id).length;
    assert.ok(onVictim >= 9);
    // The record lives 3 heartbeats past its last; a survivor reaps at its next heartbeat
    // (+1), and two more cover a busy machine's timers (as test/integration/cluster.test.ts).
    const bound = record.heartbeatAt + (3 + 1 + 2) * TEST_HEARTBEAT_MS;
    let left: { peerId: string; node: string }[] = [];
    for (;;) {
      left = await state.p2p.members(GROUP_ID);
      if (!left.some((m) => m.node === victim.id)) break;
      assert.ok(Date.now() <= bound + 2_000, 'still listed long after the reap was due');
      await new Promise((r) => setTimeout(r, TEST_HEARTBEAT_MS / 4));
    }
    const goneAt = Date.now();
    assert.ok(
      goneAt <= bound,
      `gone ${goneAt - record.heartbeatAt} ms after the last heartbeat (heartbeat ${TEST_HEARTBEAT_MS} ms)`,
    );
    assert.equal(left.length, CLIENTS - 1 - onVictim);
    for (const m of members) if (m.node === victim.id) await m.nc.abort({ tellPeer: false });

    const late = await join(0, 6);
    for (const id of late.group.members)
      assert.notEqual(nodeOf.get(id), victim.id, 'a member of the dead node');
    const view = (await late.nc.call('group', GROUP_ID)) as { size: number };
    assert.equal(view.size, CLIENTS - onVictim);
  });

  test("after Redis restarts empty, the nodes put their memberships back, in each node's join order", async () => {
    const expected = (await state.p2p.members(GROUP_ID)).map((m) => m.peerId);
    await cluster.redis.restart();
    let back: string[] = [];
    for (let i = 0; i < 200 && back.length < expected.length; i++) {
      await new Promise((r) => setTimeout(r, 50));
      back = await state.p2p
        .members(GROUP_ID)
        .then((list) => list.map((m) => m.peerId))
        .catch(() => []);
    }
    assert.deepEqual([...back].sort(), [...expected].sort());
    for (const node of cluster.nodes.slice(0, 2)) {
      const own = (m: string) => nodeOf.get(m) === node.id;
      assert.deepEqual(back.filter(own), expected.filter(own), `node ${node.id} keeps its order`);
    }
  });
});
