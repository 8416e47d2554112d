import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { INTRODUCE_NEWEST, MAX_GROUPS_LISTED, MAX_MEMBERS_LISTED } from '../../runtime/cluster/p2p.ts';
import { type MakeState, nodeRecord, sleep, useState } from './fixture.ts';

/** A peer ID (64 hex digits), distinct per `n`. */
const peer = (n: number) => `p${n.toString(16)}`.padStart(64, '0').replace('p', 'a');
/** A group ID (64 hex digits), distinct per `n`. */
const group = (n: number) => `9${n.toString(16)}`.padEnd(64, 'e');
const G = group(1);
const at = (node: string, n = 1) => ({
  node,
  address: `203.0.113.${n}:50000`,
  lan: [`192.168.1.${n}:50000`],
});

/** Peers and NetGroup members in the cluster store (issue 9), for every State. */
export function p2pContract(name: string, make: MakeState): void {
  peersContract(name, make);
  groupsContract(name, make);
  reapContract(name, make);
}

function peersContract(name: string, make: MakeState): void {
  describe(`${name}: peers`, () => {
    const state = useState(make);

    it('finds a registered peer by ID with its node and addresses; an update replaces them', async () => {
      await state().p2p.putPeer(peer(1), at('n1'));
      assert.deepEqual(await state().p2p.peer(peer(1)), at('n1'));
      const update = { node: 'n1', address: '203.0.113.1:50001', lan: ['10.0.0.2:50001', '[fe80::1]:50001'] };
      await state().p2p.putPeer(peer(1), update);
      await state().p2p.putPeer(peer(1), update);
      assert.deepEqual(await state().p2p.peer(peer(1)), update);
      assert.deepEqual(await state().p2p.peer(peer(1).toUpperCase()), update, 'IDs are hex, any case');
      assert.equal(await state().p2p.peer(peer(2)), undefined);
    });

    it('a node removes only a peer it still holds: one that reconnected elsewhere stays', async () => {
      await state().p2p.putPeer(peer(1), at('n1'));
      await state().p2p.putPeer(peer(1), at('n2', 2));
      assert.equal(
        await state().p2p.removePeer(peer(1), 'n1'),
        false,
        'the old node, after the client moved',
      );
      assert.deepEqual(await state().p2p.peer(peer(1)), at('n2', 2));
      assert.equal(await state().p2p.removePeer(peer(1), 'n2'), true);
      assert.equal(await state().p2p.peer(peer(1)), undefined);
      assert.equal(await state().p2p.removePeer(peer(1), 'n2'), false, 'already gone');
    });

    it('refuses peer IDs, addresses and node ids it could not use, storing nothing', async () => {
      await assert.rejects(
        state().p2p.putPeer('abc', at('n1')),
        /a peer ID must be 64 hex digits \(SHA-256\), got "abc"/,
      );
      await assert.rejects(state().p2p.peer('zz'.repeat(32)), /peer ID must be 64 hex digits/);
      const lan = Array.from({ length: 17 }, (_, i) => `10.0.0.${i}:1`);
      await assert.rejects(state().p2p.putPeer(peer(1), { ...at('n1'), lan }), /at most 16 LAN addresses/);
      await assert.rejects(state().p2p.putPeer(peer(1), { ...at('n1'), address: '' }), /observed address/);
      await assert.rejects(
        state().p2p.putPeer(peer(1), { ...at('n1'), lan: ['10.0.0.1'] }),
        /a LAN address of a peer must be "host:port" or "\[v6\]:port" of at most 64 characters, got "10\.0\.0\.1"/,
      );
      await assert.rejects(state().p2p.putPeer(peer(1), at('n:1')), /node id must be non-empty without ':'/);
      assert.equal(await state().p2p.peer(peer(1)), undefined);
    });
  });
}

function groupsContract(name: string, make: MakeState): void {
  describe(`${name}: groups`, () => {
    const state = useState(make);
    /** Members 0..count-1 join G in order, even ones on n1, odd ones on n2. */
    const fill = async (count: number) => {
      for (let i = 0; i < count; i++) await state().p2p.joinGroup(G, peer(i), i % 2 ? 'n2' : 'n1', 0);
    };

    it('lists members in join order across nodes, with the size per node and in the groups list', async () => {
      await fill(5);
      await state().p2p.joinGroup(group(2), peer(9), 'n3', 0);
      assert.deepEqual(await state().p2p.members(G), [
        { peerId: peer(0), node: 'n1' },
        { peerId: peer(1), node: 'n2' },
        { peerId: peer(2), node: 'n1' },
        { peerId: peer(3), node: 'n2' },
        { peerId: peer(4), node: 'n1' },
      ]);
      assert.deepEqual(await state().p2p.group(G), { size: 5, nodes: { n1: 3, n2: 2 } });
      assert.deepEqual(await state().p2p.groups(), [
        { id: G, size: 5 },
        { id: group(2), size: 1 },
      ]);
      assert.deepEqual(await state().p2p.group(group(3)), { size: 0, nodes: {} });
      assert.deepEqual(await state().p2p.members(group(3)), []);
    });

    it(`a join gets its place and the ${INTRODUCE_NEWEST} newest others, newest first, plus one random older one`, async () => {
      assert.deepEqual(await state().p2p.joinGroup(G, peer(0), 'n1', 0), {
        position: 0,
        size: 1,
        introduce: [],
      });
      await fill(9);
      const newest = [8, 7, 6, 5, 4].map(peer);
      assert.deepEqual(await state().p2p.joinGroup(G, peer(20), 'n3', 0), {
        position: 9,
        size: 10,
        introduce: [...newest, peer(0)],
      });
      const last = await state().p2p.joinGroup(G, peer(21), 'n3', 0.999);
      assert.deepEqual(last.introduce, [peer(20), ...newest.slice(0, 4), peer(4)], 'the newest older one');
      const middle = await state().p2p.joinGroup(G, peer(22), 'n3', 0.5);
      assert.equal(middle.introduce.length, INTRODUCE_NEWEST + 1);
      assert.equal(
        middle.introduce[INTRODUCE_NEWEST],
        peer(3),
        'older ones are 0..5 here: 6 × 0.5 → the 4th',
      );
    });

    it('a member joining again keeps its place, is not listed twice, and is not introduced to itself', async () => {
      await fill(8);
      const again = await state().p2p.joinGroup(G, peer(2), 'n1', 0.99);
      assert.equal(again.position, 2);
      assert.equal(again.size, 8);
      assert.deepEqual(again.introduce, [7, 6, 5, 4, 3, 1].map(peer), 'older ones skip itself');
      assert.equal((await state().p2p.joinGroup(G, peer(1), 'n2', 0)).introduce.at(-1), peer(0));
      assert.equal((await state().p2p.members(G)).length, 8);
    });

    it('re-asserting every membership after a store reconnect changes neither order nor counts', async () => {
      await fill(7);
      const before = [await state().p2p.members(G), await state().p2p.group(G), await state().p2p.groups()];
      for (const i of [6, 0, 3, 5, 1, 4, 2]) await state().p2p.joinGroup(G, peer(i), i % 2 ? 'n2' : 'n1');
      assert.deepEqual(
        [await state().p2p.members(G), await state().p2p.group(G), await state().p2p.groups()],
        before,
      );
    });

    it('a leave names the successor and the member 6 places before it, to keep the mesh connected', async () => {
      await fill(10);
      assert.deepEqual(await state().p2p.leaveGroup(G, peer(7), 'n2'), {
        size: 9,
        reconnect: { to: { peerId: peer(8), node: 'n1' }, peerId: peer(2) },
      });
      assert.deepEqual(
        await state().p2p.leaveGroup(G, peer(9), 'n2'),
        { size: 8 },
        'the newest: no successor',
      );
      assert.deepEqual(await state().p2p.leaveGroup(G, peer(3), 'n2'), { size: 7 }, 'fewer than 6 before');
      assert.deepEqual(
        (await state().p2p.members(G)).map((m) => m.peerId),
        [0, 1, 2, 4, 5, 6, 8].map(peer),
      );
    });

    it('only the node holding a member removes it: a member that rejoined from another node stays', async () => {
      await fill(3);
      assert.equal(await state().p2p.leaveGroup(G, peer(0), 'n2'), undefined, 'n2 does not hold it');
      assert.equal(await state().p2p.leaveGroup(G, peer(7), 'n1'), undefined, 'not a member');
      assert.equal(await state().p2p.leaveGroup(group(5), peer(0), 'n1'), undefined, 'no such group');
      const moved = await state().p2p.joinGroup(G, peer(0), 'n3', 0);
      assert.equal(moved.position, 0, 'a client that reconnected elsewhere keeps its place');
      assert.equal(await state().p2p.leaveGroup(G, peer(0), 'n1'), undefined, 'the old node is stale');
      assert.deepEqual(await state().p2p.group(G), { size: 3, nodes: { n2: 1, n1: 1, n3: 1 } });
    });

    it('the last member leaving removes the group from the list', async () => {
      await state().p2p.joinGroup(G, peer(1), 'n1');
      await state().p2p.joinGroup(group(2), peer(1), 'n1');
      assert.deepEqual(await state().p2p.leaveGroup(G, peer(1), 'n1'), { size: 0 });
      assert.deepEqual(await state().p2p.groups(), [{ id: group(2), size: 1 }]);
      assert.deepEqual(await state().p2p.joinGroup(G, peer(2), 'n1', 0), {
        position: 0,
        size: 1,
        introduce: [],
      });
    });

    it('bounds what one call returns and refuses bad IDs, limits and picks', async () => {
      await fill(6);
      for (let i = 2; i <= 4; i++) await state().p2p.joinGroup(group(i), peer(1), 'n1');
      assert.deepEqual(
        (await state().p2p.members(G, 2)).map((m) => m.peerId),
        [peer(0), peer(1)],
      );
      assert.deepEqual(await state().p2p.groups(1), [{ id: G, size: 6 }]);
      await assert.rejects(state().p2p.members(G, MAX_MEMBERS_LISTED + 1), /state\.members: limit must be/);
      await assert.rejects(state().p2p.groups(0), /state\.groups: limit must be a whole number from 1 to/);
      await assert.rejects(state().p2p.groups(MAX_GROUPS_LISTED + 1), /limit/);
      await assert.rejects(
        state().p2p.joinGroup('G:hello', peer(1), 'n1'),
        /a group ID must be 64 hex digits/,
      );
      await assert.rejects(state().p2p.joinGroup(G, peer(1), 'n1', 1), /pick must be in \[0, 1\)/);
      await assert.rejects(state().p2p.joinGroup(G, peer(30), 'bad node'), /node id/);
      assert.equal((await state().p2p.group(G)).size, 6);
    });
  });
}

function reapContract(name: string, make: MakeState): void {
  describe(`${name}: a node's peers and members go with it`, () => {
    const state = useState(make);

    /** n1 (short-lived) and n2 each hold a peer; G has members on both, group(2) only on n1. */
    const populate = async (ttlMs: number) => {
      await state().heartbeat(nodeRecord('n1'), ttlMs);
      await state().heartbeat(nodeRecord('n2'), 10_000);
      await state().p2p.putPeer(peer(1), at('n1'));
      await state().p2p.putPeer(peer(2), at('n2', 2));
      await state().p2p.joinGroup(G, peer(1), 'n1');
      await state().p2p.joinGroup(G, peer(2), 'n2');
      await state().p2p.joinGroup(G, peer(3), 'n1');
      await state().p2p.joinGroup(group(2), peer(1), 'n1');
    };
    const assertOnlyN2Left = async () => {
      assert.equal(await state().p2p.peer(peer(1)), undefined);
      assert.deepEqual(await state().p2p.peer(peer(2)), at('n2', 2));
      assert.deepEqual(await state().p2p.members(G), [{ peerId: peer(2), node: 'n2' }]);
      assert.deepEqual(await state().p2p.group(G), { size: 1, nodes: { n2: 1 } });
      assert.deepEqual(await state().p2p.groups(), [{ id: G, size: 1 }]);
    };

    it("reaping a dead node removes its peers and group members, and leaves the others'", async () => {
      await populate(100);
      await sleep(160);
      assert.deepEqual(await state().reap(), ['n1']);
      await assertOnlyN2Left();
    });

    it('a clean leave removes them at once', async () => {
      await populate(10_000);
      await state().leave('n1', 'epoch-1');
      await assertOnlyN2Left();
    });

    it('a peer and a member that moved to a live node survive the reap of the node they left', async () => {
      await populate(100);
      await state().p2p.putPeer(peer(1), at('n2', 1));
      await state().p2p.joinGroup(G, peer(1), 'n2');
      await sleep(160);
      assert.deepEqual(await state().reap(), ['n1']);
      assert.deepEqual(await state().p2p.peer(peer(1)), at('n2', 1));
      assert.deepEqual(await state().p2p.members(G), [
        { peerId: peer(1), node: 'n2' },
        { peerId: peer(2), node: 'n2' },
      ]);
      assert.deepEqual(await state().p2p.groups(), [{ id: G, size: 2 }]);
    });
  });
}
