import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PublicationInfo } from '../../runtime/cluster/publications.ts';
import type { NodeEntry } from '../../runtime/cluster/state.ts';
import { clusterView, type StoreListings } from '../../runtime/host/cluster-view.ts';
import { idleNodeRecord } from '../support/node-records.ts';

const NOTHING_LISTED: StoreListings = { groups: [], publications: [] };

function entry(id: string, over: Partial<NodeEntry> = {}): NodeEntry {
  return {
    ...idleNodeRecord(),
    id,
    epoch: 'e',
    publicAddress: `127.0.0.1:${id.length}`,
    startedAt: 0,
    heartbeatAt: 0,
    ...over,
  };
}

test('the dashboard view sorts nodes, shows a paused serving node as paused and a draining one as draining', () => {
  const view = clusterView(
    'b',
    'default',
    [entry('c', { state: 'draining', paused: true }), entry('b', { paused: true }), entry('a')],
    NOTHING_LISTED,
    42,
  );
  assert.deepEqual(
    view.nodes.map((n) => [n.id, n.state]),
    [
      ['a', 'serving'],
      ['b', 'paused'],
      ['c', 'draining'],
    ],
  );
  assert.equal(view.node, 'b');
  assert.equal(view.at, 42);
  assert.deepEqual(
    [view.groups, view.publications, view.groupsUnavailable, view.publicationsUnavailable],
    [[], [], undefined, undefined],
    'nothing made up: no groups, no publications',
  );
});

test('the dashboard view lists, per app, each running version with the nodes that run it', () => {
  const view = clusterView(
    'a',
    'default',
    [
      entry('a', { versions: { chat: 'v2', game: 'g1' } }),
      entry('b', { versions: { chat: 'v1' }, errors: { chat: 'v2: boom' } }),
      entry('c', { versions: { chat: 'v2' } }),
    ],
    NOTHING_LISTED,
    0,
  );
  assert.deepEqual(view.apps, { chat: { v2: ['a', 'c'], v1: ['b'] }, game: { g1: ['a'] } });
  assert.deepEqual(view.nodes[1].errors, { chat: 'v2: boom' });
});

test('the dashboard view lists the groups read from the store, and says when the store could not be read', () => {
  const groups = [
    { id: 'a'.repeat(64), size: 12 },
    { id: 'b'.repeat(64), size: 1 },
  ];
  const view = clusterView('a', 'default', [entry('a')], { groups, publications: [] }, 0);
  assert.deepEqual(view.groups, groups);
  assert.equal(view.groupsUnavailable, undefined);
  const down = clusterView('a', 'default', [entry('a')], { groups: undefined, publications: [] }, 0);
  assert.deepEqual([down.groups, down.groupsUnavailable], [[], true]);
});

test('the dashboard view lists the publications read from the store, and says when the store could not be read', () => {
  const publications: PublicationInfo[] = [
    {
      app: 'live',
      name: 'cam',
      node: 'a',
      publisher: 'b'.repeat(64),
      since: 7,
      subscribers: 5,
      nodes: { a: 2, b: 3 },
    },
  ];
  const view = clusterView('a', 'default', [entry('a')], { groups: [], publications }, 0);
  assert.deepEqual([view.publications, view.publicationsUnavailable], [publications, undefined]);
  const down = clusterView('a', 'default', [entry('a')], { groups: [], publications: undefined }, 0);
  assert.deepEqual(
    [down.publications, down.publicationsUnavailable, down.groupsUnavailable],
    [[], true, undefined],
  );
});
