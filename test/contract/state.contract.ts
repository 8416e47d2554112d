import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_VERSIONS, type StoredBundle, type VersionInfo } from '../../runtime/cluster/state.ts';
import { type MakeState, nodeRecord, sleep, until, useState } from './fixture.ts';
import { kvContract } from './kv.contract.ts';
import { p2pContract } from './p2p.contract.ts';
import { publicationsContract } from './publications.contract.ts';

export type { MakeState, StateFixture } from './fixture.ts';

/**
 * The State contract (runtime/cluster/state.ts): what every implementation must do, run
 * against each by its own test file. `make` gives a fresh, empty State per test.
 */
export function stateContract(name: string, make: MakeState): void {
  nodesContract(name, make);
  appsContract(name, make);
  secretsContract(name, make);
  pubSubContract(name, make);
  seatsContract(name, make);
  kvContract(name, make);
  p2pContract(name, make);
  publicationsContract(name, make);
}

function seatsContract(name: string, make: MakeState): void {
  describe(`${name}: pending seats`, () => {
    const state = useState(make);

    it('counts live seats per node, and knows which client holds a seat where', async () => {
      assert.deepEqual(await state().seats(['n1', 'n2']), {});
      await state().addSeat('n1', 'aa01', 10_000);
      await state().addSeat('n1', 'aa02', 10_000);
      await state().addSeat('n2', 'aa03', 10_000);
      await state().addSeat('n1', 'aa01', 10_000);
      assert.deepEqual(await state().seats(['n1', 'n2', 'n3']), { n1: 2, n2: 1 });
      assert.deepEqual(await state().seats(['n2']), { n2: 1 }, 'only the nodes asked about');
      assert.equal(await state().hasSeat('n1', 'aa01'), true);
      assert.equal(await state().hasSeat('n2', 'aa01'), false, 'a seat is at one node');
      assert.equal(await state().hasSeat('n3', 'ffff'), false);
    });

    it('a seat lapses after its ttl, by the store clock', async () => {
      await state().addSeat('n1', 'bb01', 150);
      await state().addSeat('n1', 'bb02', 10_000);
      await sleep(300);
      assert.deepEqual(await state().seats(['n1']), { n1: 1 });
      assert.equal(await state().hasSeat('n1', 'bb01'), false);
      assert.equal(await state().hasSeat('n1', 'bb02'), true);
    });

    it("leaves out a node's seats that lapse by the time given for it", async () => {
      await state().addSeat('n1', 'dd01', 10_000);
      const now = await state().time();
      await sleep(40);
      await state().addSeat('n1', 'dd02', 10_000);
      await state().addSeat('n2', 'dd03', 10_000);
      const between = now + 10_000 + 20;
      assert.deepEqual(await state().seats(['n1', 'n2'], { n1: between }), { n1: 1, n2: 1 });
      assert.deepEqual(await state().seats(['n1', 'n2'], { n1: now + 60_000 }), { n2: 1 });
    });

    it('refuses a ttl that is not a positive whole number of ms', async () => {
      await assert.rejects(
        state().addSeat('n1', 'cc01', 0),
        /state\.addSeat: ttlMs must be a positive whole number/,
      );
    });
  });
}

function nodesContract(name: string, make: MakeState): void {
  describe(`${name}: nodes`, () => {
    const state = useState(make);

    it('heartbeat registers the node, stamped with the store clock', async () => {
      const before = await state().time();
      await state().heartbeat(nodeRecord('n1'), 10_000);
      const after = await state().time();
      const [entry, ...rest] = await state().nodes();
      assert.equal(rest.length, 0);
      const { heartbeatAt, ...record } = entry;
      assert.deepEqual(record, nodeRecord('n1'));
      assert.ok(heartbeatAt >= before && heartbeatAt <= after, `${before} <= ${heartbeatAt} <= ${after}`);
    });

    it('a repeated heartbeat updates the one record and moves its heartbeat time forward', async () => {
      await state().heartbeat(nodeRecord('n1', { http: '127.0.0.1:8080' }), 10_000);
      const [first] = await state().nodes();
      await sleep(5);
      const load = { clients: 9, cpu: 1.5, packetsPerSecond: 1, bytesPerSecond: 2 };
      await state().heartbeat(nodeRecord('n1', { http: '127.0.0.1:8080', load, state: 'draining' }), 10_000);
      const nodes = await state().nodes();
      assert.equal(nodes.length, 1);
      assert.deepEqual(nodes[0].load, load);
      assert.equal(nodes[0].state, 'draining');
      assert.equal(nodes[0].http, '127.0.0.1:8080');
      assert.ok(nodes[0].heartbeatAt > first.heartbeatAt);
    });

    it('a node whose ttl lapses leaves nodes() and is reaped exactly once by concurrent reapers', async () => {
      await state().heartbeat(nodeRecord('dead-1'), 100);
      await state().heartbeat(nodeRecord('dead-2'), 100);
      await state().heartbeat(nodeRecord('alive'), 10_000);
      await sleep(160);
      assert.deepEqual(
        (await state().nodes()).map((n) => n.id),
        ['alive'],
      );
      const [a, b] = await Promise.all([state().reap(), state().reap()]);
      assert.deepEqual([...a, ...b].sort(), ['dead-1', 'dead-2']);
      assert.deepEqual(await state().reap(), []);
      assert.deepEqual(
        (await state().nodes()).map((n) => n.id),
        ['alive'],
      );
    });

    it('a heartbeat within the ttl keeps the node alive', async () => {
      // 800 ms after the first heartbeat, 400 after the second: only the second keeps it.
      await state().heartbeat(nodeRecord('n1'), 600);
      await sleep(400);
      await state().heartbeat(nodeRecord('n1'), 600);
      await sleep(400);
      assert.deepEqual(await state().reap(), []);
      assert.equal((await state().nodes()).length, 1);
    });

    it('leave removes the node at once, and it is not reaped afterwards', async () => {
      await state().heartbeat(nodeRecord('n1'), 10_000);
      await state().heartbeat(nodeRecord('n2'), 10_000);
      await state().leave('n1', 'epoch-1');
      assert.deepEqual(
        (await state().nodes()).map((n) => n.id),
        ['n2'],
      );
      assert.deepEqual(await state().reap(), []);
    });

    it('leave with a stale epoch (an earlier run of the same id) changes nothing', async () => {
      await state().heartbeat(nodeRecord('n1', { epoch: 'epoch-2' }), 10_000);
      await state().leave('n1', 'epoch-1');
      await state().leave('unknown', 'epoch-1');
      assert.deepEqual(
        (await state().nodes()).map((n) => [n.id, n.epoch]),
        [['n1', 'epoch-2']],
      );
    });

    it('a node that left registers again with its next heartbeat', async () => {
      await state().heartbeat(nodeRecord('n1'), 10_000);
      await state().leave('n1', 'epoch-1');
      await state().heartbeat(nodeRecord('n1', { epoch: 'epoch-2' }), 10_000);
      assert.deepEqual(
        (await state().nodes()).map((n) => n.epoch),
        ['epoch-2'],
      );
    });

    it('heartbeat refuses a ttl that is not a positive whole number of ms', async () => {
      await assert.rejects(state().heartbeat(nodeRecord('n1'), 0), /ttlMs/);
      await assert.rejects(state().heartbeat(nodeRecord('n1'), 1.5), /ttlMs/);
      assert.deepEqual(await state().nodes(), []);
    });

    it('time() follows the wall clock and never goes backwards', async () => {
      let last = 0;
      for (let i = 0; i < 20; i++) {
        const t = await state().time();
        assert.ok(t >= last, `${t} >= ${last}`);
        last = t;
      }
      assert.ok(Math.abs(last - Date.now()) < 5_000);
    });
  });
}

const version = (hash: string, deployedAt = 1_700_000_000_000): VersionInfo => ({
  hash,
  deployedAt,
  files: ['functions/index.ts'],
  by: 'ada@laptop',
});
const bundle = (hash: string): StoredBundle => ({
  hash,
  code: `export default { onStart() { return "${hash} ✓"; } };`,
  map: '{"version":3}',
});

function appsContract(name: string, make: MakeState): void {
  describe(`${name}: deployed apps`, () => {
    const state = useState(make);

    it('deploy makes the version active and lists the history newest first', async () => {
      await state().deploy('chat', version('h1', 1));
      await state().deploy('chat', version('h2', 2));
      assert.equal(await state().active('chat'), 'h2');
      assert.deepEqual(await state().versions('chat'), [version('h2', 2), version('h1', 1)]);
      assert.equal(await state().active('other'), undefined);
      assert.deepEqual(await state().versions('other'), []);
    });

    it('apps() lists apps with an active version, not apps that only stored a bundle', async () => {
      await state().deploy('chat', version('h1'));
      await state().deploy('game', version('h2'));
      await state().putBundle('draft', bundle('h3'));
      assert.deepEqual((await state().apps()).sort(), ['chat', 'game']);
    });

    it(`history keeps ${MAX_VERSIONS} versions and deletes the bundles of versions that fall off`, async () => {
      for (let i = 0; i < MAX_VERSIONS + 2; i++) {
        await state().putBundle('chat', bundle(`h${i}`));
        await state().deploy('chat', version(`h${i}`, i));
      }
      const versions = await state().versions('chat');
      assert.equal(versions.length, MAX_VERSIONS);
      assert.equal(versions[0].hash, `h${MAX_VERSIONS + 1}`);
      assert.equal(versions.at(-1)?.hash, 'h2');
      assert.equal(await state().getBundle('chat', 'h0'), undefined);
      assert.equal(await state().getBundle('chat', 'h1'), undefined);
      assert.deepEqual(await state().getBundle('chat', 'h2'), bundle('h2'));
    });

    it('a bundle stays while a kept version still uses its hash', async () => {
      await state().putBundle('chat', bundle('same'));
      await state().deploy('chat', version('same', 0));
      for (let i = 1; i < MAX_VERSIONS; i++) await state().deploy('chat', version(`h${i}`, i));
      await state().deploy('chat', version('same', MAX_VERSIONS));
      assert.equal((await state().versions('chat')).length, MAX_VERSIONS);
      assert.deepEqual(await state().getBundle('chat', 'same'), bundle('same'));
    });

    it('activate switches to a version in the history and refuses unknown hashes', async () => {
      await state().deploy('chat', version('h1', 1));
      await state().deploy('chat', version('h2', 2));
      assert.equal(await state().activate('chat', 'nope'), false);
      assert.equal(await state().active('chat'), 'h2');
      assert.equal(await state().activate('chat', 'h1'), true);
      assert.equal(await state().active('chat'), 'h1');
      assert.deepEqual(
        (await state().versions('chat')).map((v) => v.hash),
        ['h2', 'h1'],
      );
    });

    it('activate of an app never deployed is refused and does not list the app', async () => {
      assert.equal(await state().activate('ghost', 'h1'), false);
      assert.equal(await state().active('ghost'), undefined);
      assert.deepEqual(await state().apps(), []);
    });

    it('getBundle returns what putBundle stored, for that app only', async () => {
      const big = { ...bundle('h1'), code: 'x'.repeat(300_000) };
      await state().putBundle('chat', big);
      await state().putBundle('chat', big);
      assert.deepEqual(await state().getBundle('chat', 'h1'), big);
      assert.equal(await state().getBundle('chat', 'h2'), undefined);
      assert.equal(await state().getBundle('game', 'h1'), undefined);
    });

    it('what callers get back are copies: changing them changes nothing stored', async () => {
      await state().putBundle('chat', bundle('h1'));
      await state().deploy('chat', version('h1'));
      const got = await state().getBundle('chat', 'h1');
      if (got) got.code = 'changed';
      (await state().versions('chat'))[0].files.push('changed');
      assert.deepEqual(await state().getBundle('chat', 'h1'), bundle('h1'));
      assert.deepEqual(await state().versions('chat'), [version('h1')]);
    });
  });
}

function secretsContract(name: string, make: MakeState): void {
  describe(`${name}: secrets`, () => {
    const state = useState(make);

    it('secrets() returns each app its own secrets, the latest value of each', async () => {
      await state().putSecret('chat', 'API_KEY', 'one');
      await state().putSecret('chat', 'TOKEN', 't');
      await state().putSecret('chat', 'API_KEY', 'two');
      await state().putSecret('game', 'API_KEY', 'other');
      assert.deepEqual((await state().secrets('chat')).values, { API_KEY: 'two', TOKEN: 't' });
      assert.deepEqual((await state().secrets('game')).values, { API_KEY: 'other' });
      assert.deepEqual(await state().secrets('none'), { values: {}, revision: 0 });
    });

    it("every change raises the app's secrets revision; putting the same value or deleting nothing does not", async () => {
      assert.equal(await state().putSecret('chat', 'API_KEY', 'one'), 1);
      assert.equal(await state().putSecret('chat', 'API_KEY', 'one'), 1, 'the same value');
      assert.equal(await state().putSecret('chat', 'TOKEN', 't'), 2);
      assert.equal(await state().putSecret('game', 'TOKEN', 't'), 1, 'per app');
      assert.equal(await state().deleteSecret('chat', 'API_KEY'), 3);
      assert.equal(await state().deleteSecret('chat', 'API_KEY'), undefined, 'already gone');
      assert.equal(await state().deleteSecret('none', 'API_KEY'), undefined);
      assert.deepEqual(await state().secrets('chat'), { values: { TOKEN: 't' }, revision: 3 });
    });

    it('clusterSecret is created once: every caller gets the same random secret', async () => {
      const secrets = await Promise.all([state().clusterSecret(), state().clusterSecret()]);
      assert.match(secrets[0], /^[0-9a-f]{64}$/);
      assert.equal(secrets[1], secrets[0]);
      assert.equal(await state().clusterSecret(), secrets[0]);
    });
  });
}

function pubSubContract(name: string, make: MakeState): void {
  describe(`${name}: publish / subscribe`, () => {
    const state = useState(make);

    it('a subscriber gets every message published after subscribe resolves, in order', async () => {
      const got: string[] = [];
      await state().subscribe('deploy', (m) => got.push(m));
      await state().publish('deploy', 'one');
      await state().publish('deploy', 'two');
      await state().publish('deploy', '{"app":"chat","hash":"h1"}');
      await until(() => got.length === 3, 'three messages');
      assert.deepEqual(got, ['one', 'two', '{"app":"chat","hash":"h1"}']);
    });

    it('every subscriber of a channel gets each message; other channels are not delivered', async () => {
      const a: string[] = [];
      const b: string[] = [];
      const other: string[] = [];
      await state().subscribe('rpc:n1', (m) => a.push(m));
      await state().subscribe('rpc:n1', (m) => b.push(m));
      await state().subscribe('rpc:n2', (m) => other.push(m));
      await state().publish('rpc:n1', 'hello');
      await state().publish('rpc:n2', 'marker');
      await until(() => a.length === 1 && b.length === 1 && other.length === 1, 'deliveries');
      assert.deepEqual([a, b, other], [['hello'], ['hello'], ['marker']]);
    });

    it('after unsubscribe a handler gets nothing more; the others keep theirs', async () => {
      const gone: string[] = [];
      const kept: string[] = [];
      const unsubscribe = await state().subscribe('nodes', (m) => gone.push(m));
      await state().subscribe('nodes', (m) => kept.push(m));
      await unsubscribe();
      await unsubscribe();
      await state().publish('nodes', 'after');
      await until(() => kept.length === 1, 'the remaining subscriber');
      assert.deepEqual(gone, []);
    });

    it('a channel can be subscribed again after its last subscriber left', async () => {
      const first: string[] = [];
      const second: string[] = [];
      const unsubscribe = await state().subscribe('tail', (m) => first.push(m));
      await unsubscribe();
      await state().subscribe('tail', (m) => second.push(m));
      await state().publish('tail', 'again');
      await until(() => second.length === 1, 'the new subscriber');
      assert.deepEqual(first, []);
    });

    it('a subscriber that throws does not stop delivery to the others', async () => {
      const got: string[] = [];
      await state().subscribe('logs:chat', () => {
        throw new Error('handler bug');
      });
      await state().subscribe('logs:chat', (m) => got.push(m));
      await state().publish('logs:chat', 'a');
      await state().publish('logs:chat', 'b');
      await until(() => got.length === 2, 'both messages');
      await state().publish('nobody-listens', 'fine');
    });
  });
}
