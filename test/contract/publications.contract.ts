import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_PUBLICATIONS_LISTED,
  MAX_STREAM_NAME_LENGTH,
  type PublicationClaim,
} from '../../runtime/cluster/publications.ts';
import { type MakeState, nodeRecord, sleep, useState } from './fixture.ts';

/** A publisher's peer ID (64 hex digits), distinct per `n`. */
const publisher = (n: number) => `${n.toString(16)}`.padStart(64, 'b');
const claim = (name: string, node = 'n1', n = 1, app = 'live'): PublicationClaim => ({
  app,
  name,
  node,
  publisher: publisher(n),
});

/** The publication registry (issue 10): one publisher per (app, stream), players per node. */
export function publicationsContract(name: string, make: MakeState): void {
  claimsContract(name, make);
  playersContract(name, make);
  listContract(name, make);
  reapContract(name, make);
}

function claimsContract(name: string, make: MakeState): void {
  describe(`${name}: publication claims`, () => {
    const state = useState(make);

    it('claims a free name at the store clock; the holder claiming again keeps it and its since', async () => {
      const before = await state().time();
      assert.deepEqual(await state().publications.claim(claim('cam')), { ok: true });
      const after = await state().time();
      const held = await state().publications.get('live', 'cam');
      assert.ok(held && held.since >= before && held.since <= after, `since ${held?.since}`);
      assert.deepEqual(held, {
        ...claim('cam'),
        since: held.since,
        subscribers: 0,
        nodes: {},
      });
      await sleep(5);
      const again = { ...claim('cam'), publisher: publisher(1).toUpperCase() };
      assert.deepEqual(await state().publications.claim(again), { ok: true }, 'IDs are hex, any case');
      assert.deepEqual(await state().publications.get('live', 'cam'), held);
      assert.equal(await state().publications.get('live', 'other'), undefined);
      assert.equal(await state().publications.get('other', 'cam'), undefined, 'names are per app');
    });

    it('refuses another publisher, or the same publisher on another node, naming the holder', async () => {
      await state().publications.claim(claim('cam', 'n1', 1));
      await state().publications.setSubscribers('live', 'cam', 'n2', 4);
      const holder = await state().publications.get('live', 'cam');
      assert.ok(holder);
      assert.deepEqual(await state().publications.claim(claim('cam', 'n1', 2)), { ok: false, holder });
      assert.deepEqual(await state().publications.claim(claim('cam', 'n2', 1)), { ok: false, holder });
      assert.deepEqual(await state().publications.get('live', 'cam'), holder, 'the holder keeps it');
      assert.deepEqual(await state().publications.claim(claim('cam', 'n2', 2, 'other')), { ok: true });
    });

    it('only the holder releases; then another may claim, and the players stay', async () => {
      await state().publications.claim(claim('cam', 'n1', 1));
      await state().publications.setSubscribers('live', 'cam', 'n2', 3);
      assert.equal(await state().publications.release('live', 'cam', 'n1', publisher(2)), false);
      assert.equal(await state().publications.release('live', 'cam', 'n2', publisher(1)), false);
      assert.equal((await state().publications.get('live', 'cam'))?.node, 'n1');
      assert.equal(await state().publications.release('live', 'cam', 'n1', publisher(1).toUpperCase()), true);
      assert.equal(await state().publications.get('live', 'cam'), undefined);
      assert.equal(
        await state().publications.release('live', 'cam', 'n1', publisher(1)),
        false,
        'already gone',
      );
      assert.deepEqual(await state().publications.list(), []);
      assert.deepEqual(await state().publications.claim(claim('cam', 'n2', 2)), { ok: true });
      const taken = await state().publications.get('live', 'cam');
      assert.deepEqual([taken?.node, taken?.publisher, taken?.nodes], ['n2', publisher(2), { n2: 3 }]);
    });

    it('refuses bad names, apps, nodes and publisher IDs with what is wrong, storing nothing', async () => {
      const p = state().publications;
      await assert.rejects(p.claim(claim('')), /a stream name must be 1-1024 characters, got ""/);
      await assert.rejects(
        p.claim(claim('x'.repeat(MAX_STREAM_NAME_LENGTH + 1))),
        /must be 1-1024 characters/,
      );
      await assert.rejects(
        p.claim(claim('cam\nfake')),
        /a stream name must not hold control characters, got "cam\\nfake"/,
      );
      await assert.rejects(p.claim(claim('cam\u0000')), /control characters/);
      await assert.rejects(
        p.claim(claim('cam\ud800')),
        /a stream name must be valid Unicode, without lone surrogates/,
      );
      await assert.rejects(p.claim(claim('cam', 'n 1')), /node id must be non-empty without ':'/);
      await assert.rejects(p.claim(claim('cam', 'n1', 1, 'a:b')), /app must be non-empty without ':'/);
      await assert.rejects(
        p.claim({ ...claim('cam'), publisher: 'abc' }),
        /a publisher must be a peer ID of 64 hex digits, got "abc"/,
      );
      await assert.rejects(p.release('live', 'cam', 'n1', 'zz'), /a publisher must be a peer ID/);
      await assert.rejects(p.get('live', ''), /a stream name must be 1-1024 characters/);
      await assert.rejects(p.get('', 'cam'), /app must be non-empty/);
      assert.deepEqual(await p.list(), []);
    });
  });
}

function playersContract(name: string, make: MakeState): void {
  describe(`${name}: players per node`, () => {
    const state = useState(make);

    it('get sums the players each node set; a count replaces the last one and 0 removes the node', async () => {
      const p = state().publications;
      await p.setSubscribers('live', 'cam', 'n2', 7);
      await p.claim(claim('cam'));
      await p.setSubscribers('live', 'cam', 'n1', 2);
      await p.setSubscribers('live', 'cam', 'n3', 5);
      await p.setSubscribers('live', 'cam', 'n3', 5);
      let held = await p.get('live', 'cam');
      assert.deepEqual(
        [held?.subscribers, held?.nodes],
        [14, { n1: 2, n2: 7, n3: 5 }],
        'counted before the claim too',
      );
      await p.setSubscribers('live', 'cam', 'n2', 1);
      await p.setSubscribers('live', 'cam', 'n3', 0);
      await p.setSubscribers('live', 'cam', 'n4', 0);
      held = await p.get('live', 'cam');
      assert.deepEqual([held?.subscribers, held?.nodes], [3, { n1: 2, n2: 1 }]);
      assert.deepEqual((await p.list())[0].nodes, { n1: 2, n2: 1 }, 'list shows them too');
    });

    it('refuses counts that are not whole numbers from 0, keeping the last one', async () => {
      const p = state().publications;
      await p.claim(claim('cam'));
      await p.setSubscribers('live', 'cam', 'n1', 2);
      for (const bad of [-1, 1.5, Number.NaN, 1e10]) {
        await assert.rejects(
          p.setSubscribers('live', 'cam', 'n1', bad),
          new RegExp(`a subscriber count must be an integer 0-1000000000, got ${bad}`),
        );
      }
      await assert.rejects(p.setSubscribers('live', 'cam', 'bad:node', 1), /node id/);
      assert.equal((await p.get('live', 'cam'))?.subscribers, 2);
    });
  });
}

function listContract(name: string, make: MakeState): void {
  describe(`${name}: listing publications`, () => {
    const state = useState(make);

    it('lists by app then name (UTF-8 byte order), one app alone, at most limit', async () => {
      const p = state().publications;
      // "a0" sorts after "a" as an app, though "a0:…" sorts before "a:…" as text; names past
      // U+FFFF sort after U+FFxx in UTF-8, before them in JS string order.
      const names: [string, string][] = [
        ['a0', 'x'],
        ['a', 'z'],
        ['a', 'y: with spaces {and} braces'],
        ['b', '\u{1f600}'],
        ['b', '\uff5e'],
        ['a', 'y'],
      ];
      for (const [i, [app, stream]] of names.entries()) await p.claim(claim(stream, `n${i % 2}`, i, app));
      const all = await p.list();
      assert.deepEqual(
        all.map((x) => [x.app, x.name]),
        [
          ['a', 'y'],
          ['a', 'y: with spaces {and} braces'],
          ['a', 'z'],
          ['a0', 'x'],
          ['b', '\uff5e'],
          ['b', '\u{1f600}'],
        ],
      );
      assert.deepEqual(all[0], await p.get('a', 'y'));
      assert.deepEqual(
        (await p.list('a')).map((x) => x.name),
        ['y', 'y: with spaces {and} braces', 'z'],
      );
      assert.deepEqual(
        (await p.list('a', 2)).map((x) => x.name),
        ['y', 'y: with spaces {and} braces'],
      );
      assert.deepEqual(
        (await p.list(undefined, 4)).map((x) => x.app),
        ['a', 'a', 'a', 'a0'],
      );
      assert.deepEqual(await p.list('c'), []);
      await assert.rejects(
        p.list(undefined, 0),
        /state\.publications: limit must be a whole number from 1 to 1000, got 0/,
      );
      await assert.rejects(p.list('a', MAX_PUBLICATIONS_LISTED + 1), /limit/);
      await assert.rejects(p.list('a b'), /app must be non-empty/);
    });
  });
}

function reapContract(name: string, make: MakeState): void {
  describe(`${name}: a node's publications and player counts go with it`, () => {
    const state = useState(make);

    /** n1 (lifetime `ttlMs`) publishes cam and desk; n2 publishes tv; both play cam and tv. */
    const populate = async (ttlMs: number) => {
      const p = state().publications;
      await state().heartbeat(nodeRecord('n1'), ttlMs);
      await state().heartbeat(nodeRecord('n2'), 10_000);
      await p.claim(claim('cam', 'n1', 1));
      await p.claim(claim('desk', 'n1', 1));
      await p.claim(claim('tv', 'n2', 2));
      for (const stream of ['cam', 'tv']) {
        await p.setSubscribers('live', stream, 'n1', 3);
        await p.setSubscribers('live', stream, 'n2', 4);
      }
    };
    const assertOnlyN2Left = async () => {
      const p = state().publications;
      assert.equal(await p.get('live', 'cam'), undefined);
      assert.equal(await p.get('live', 'desk'), undefined);
      const tv = await p.get('live', 'tv');
      assert.deepEqual([tv?.node, tv?.subscribers, tv?.nodes], ['n2', 4, { n2: 4 }]);
      assert.deepEqual(
        (await p.list()).map((x) => x.name),
        ['tv'],
      );
      assert.deepEqual(await p.claim(claim('cam', 'n2', 2)), { ok: true }, 'the name is free again');
      assert.deepEqual((await p.get('live', 'cam'))?.nodes, { n2: 4 }, "n2's players of it stayed");
    };

    it("reaping a dead node removes its publications and player counts, and leaves the others'", async () => {
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

    it('a name released by a dead node and claimed on a live one survives the reap', async () => {
      await populate(100);
      await state().publications.release('live', 'cam', 'n1', publisher(1));
      await state().publications.claim(claim('cam', 'n2', 1));
      await sleep(160);
      assert.deepEqual(await state().reap(), ['n1']);
      assert.deepEqual(
        (await state().publications.list()).map((x) => [x.name, x.node, x.subscribers]),
        [
          ['cam', 'n2', 4],
          ['tv', 'n2', 4],
        ],
      );
    });
  });
}
