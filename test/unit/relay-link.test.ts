import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NodeEntry } from '../../runtime/cluster/state.ts';
import { linkAddress } from '../../runtime/relay/link-address.ts';
import {
  checkLinkAcceptance,
  LINK_WINDOW_MS,
  LinkAuthError,
  LinkRequestVerifier,
  linkRequestValue,
  signLinkAcceptance,
  signLinkRequest,
} from '../../runtime/relay/link-credential.ts';
import { LinkTable } from '../../runtime/relay/link-table.ts';

const SECRET = Buffer.alloc(32, 7);
const PEER = 'ab'.repeat(32);
const NOW = 1_800_000_000_000;
const B = { node: 'nodeb', epoch: 'e-b', to: 'nodea', peerId: PEER };

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof LinkAuthError) return e.reason;
    throw e;
  }
  return 'accepted';
}

describe('relay link credential', () => {
  test('a request signed with the cluster secret is accepted once, by the node it names', () => {
    const verifier = new LinkRequestVerifier(SECRET);
    const request = signLinkRequest(SECRET, B, NOW);
    const value = linkRequestValue(request);
    assert.deepEqual(verifier.verify(value, 'nodea', PEER, NOW + 1_000), request);
    assert.equal(
      refusal(() => verifier.verify(value, 'nodea', PEER, NOW + 2_000)),
      'replayed',
    );
  });

  test('refuses another secret, another session, another node, and an old request', () => {
    const verifier = new LinkRequestVerifier(SECRET);
    const sign = () => linkRequestValue(signLinkRequest(SECRET, B, NOW));
    assert.equal(
      refusal(() =>
        verifier.verify(linkRequestValue(signLinkRequest(Buffer.alloc(32, 8), B, NOW)), 'nodea', PEER, NOW),
      ),
      'forged',
    );
    assert.equal(
      refusal(() => verifier.verify(sign(), 'nodea', 'cd'.repeat(32), NOW)),
      'forged',
    );
    assert.equal(
      refusal(() => verifier.verify({ ...sign(), time: NOW + 1 }, 'nodea', PEER, NOW)),
      'forged',
    );
    assert.equal(
      refusal(() => verifier.verify(sign(), 'nodec', PEER, NOW)),
      'misdirected',
    );
    assert.equal(
      refusal(() => verifier.verify(sign(), 'nodea', PEER, NOW + LINK_WINDOW_MS + 1)),
      'stale',
    );
    assert.equal(
      refusal(() => verifier.verify(sign(), 'nodea', PEER, NOW - LINK_WINDOW_MS - 1)),
      'stale',
    );
    assert.equal(
      refusal(() => verifier.verify({ node: 'nodeb' }, 'nodea', PEER, NOW)),
      'malformed',
    );
    assert.equal(
      refusal(() => verifier.verify('hello', 'nodea', PEER, NOW)),
      'malformed',
    );
    // Signed fields are joined by newlines: a field holding one is refused before any mac check.
    const good = signLinkRequest(SECRET, B, NOW);
    assert.equal(
      refusal(() => verifier.verify({ ...good, epoch: `${good.epoch}\n` }, 'nodea', PEER, NOW)),
      'malformed',
    );
  });

  test("the far node's answer proves it holds the secret and is the node meant", () => {
    const request = signLinkRequest(SECRET, B, NOW);
    const answer = signLinkAcceptance(SECRET, { node: 'nodea', epoch: 'e-a' }, request, PEER);
    assert.equal(checkLinkAcceptance(SECRET, { ...answer }, 'nodea', request, PEER), 'e-a');
    assert.equal(
      refusal(() => checkLinkAcceptance(Buffer.alloc(32, 9), { ...answer }, 'nodea', request, PEER)),
      'forged',
    );
    const other = signLinkRequest(SECRET, B, NOW);
    assert.equal(
      refusal(() => checkLinkAcceptance(SECRET, { ...answer }, 'nodea', other, PEER)),
      'forged',
    );
    assert.equal(
      refusal(() => checkLinkAcceptance(SECRET, { ...answer }, 'nodec', request, PEER)),
      'misdirected',
    );
    assert.equal(
      refusal(() => checkLinkAcceptance(SECRET, {}, 'nodea', request, PEER)),
      'malformed',
    );
  });
});

describe('relay link table', () => {
  const entry = (id: string, state: NodeEntry['state'], epoch = 'e1'): NodeEntry =>
    ({ id, state, epoch }) as NodeEntry;

  test('an unused link is due to close after the idle time, a used one never', () => {
    const table = new LinkTable<{ farEpoch: string | undefined }>(1_000);
    const link = { farEpoch: 'e1' };
    table.add('a', link, 0);
    table.acquire('a');
    table.acquire('a');
    table.release('a', link, 100);
    assert.deepEqual(table.takeIdle(10_000), []);
    assert.equal(table.nextIdleAt(), Number.POSITIVE_INFINITY);
    table.release('a', link, 200);
    assert.equal(table.nextIdleAt(), 1_200);
    assert.deepEqual(table.takeIdle(1_199), []);
    assert.deepEqual(table.takeIdle(1_200), [link]);
    assert.equal(table.get('a'), undefined);
  });

  test("a release of a link that was replaced does not touch the new one's users", () => {
    const table = new LinkTable<{ farEpoch: string | undefined }>(1_000);
    const old = { farEpoch: 'e1' };
    table.add('a', old, 0);
    table.acquire('a');
    table.remove('a', old);
    const fresh = { farEpoch: 'e1' };
    table.add('a', fresh, 0);
    table.acquire('a');
    table.release('a', old, 10);
    assert.equal(table.users('a'), 1);
  });

  test('links to nodes gone, stopping or restarted are taken; to draining and opening ones are kept', () => {
    const table = new LinkTable<{ farEpoch: string | undefined }>();
    const links = {
      gone: { farEpoch: 'e1' },
      draining: { farEpoch: 'e1' },
      stopping: { farEpoch: 'e1' },
      restarted: { farEpoch: 'e1' },
      serving: { farEpoch: 'e1' },
      opening: { farEpoch: undefined },
    };
    for (const [id, link] of Object.entries(links)) table.add(id, link, 0);
    const taken = table.takeUnserved([
      entry('draining', 'draining'),
      entry('stopping', 'stopping'),
      entry('restarted', 'serving', 'e2'),
      entry('serving', 'serving'),
      entry('opening', 'serving', 'e9'),
    ]);
    assert.deepEqual(new Set(taken), new Set([links.gone, links.stopping, links.restarted]));
    assert.deepEqual(new Set(table.links()), new Set([links.serving, links.draining, links.opening]));
  });

  test("a node's link address is its first specific RTMFP address, else its public one", () => {
    assert.deepEqual(linkAddress({ rtmfp: ['0.0.0.0:1935', '10.0.0.2:1935'], publicAddress: 'x:1' }), {
      address: '10.0.0.2',
      port: 1935,
    });
    assert.deepEqual(linkAddress({ rtmfp: ['[::]:1935'], publicAddress: 'rtmfp.example.com:1936' }), {
      address: 'rtmfp.example.com',
      port: 1936,
    });
    assert.equal(linkAddress({ rtmfp: [], publicAddress: '' }), undefined);
  });
});
