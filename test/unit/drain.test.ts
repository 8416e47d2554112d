import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { NodeEntry } from '../../runtime/cluster/state.ts';
import { Drain } from '../../runtime/host/drain.ts';
import type { AmfObject } from '../../runtime/rtmfp/amf-value.ts';
import type { TCServerConnection } from '../../runtime/rtmfp/tc-server.ts';
import { nodeEntry } from '../support/node-records.ts';

function server(id: string, publicAddress: string, o: Partial<NodeEntry> = {}): NodeEntry {
  return nodeEntry(id, { publicAddress, rtmfp: [publicAddress], ...o });
}

/** A connected client as the drain sees it: what it was closed with is kept. */
function client(tcUrl: string) {
  const closed: { description?: string; info?: AmfObject } = {};
  const conn = {
    state: 'connected',
    request: { tcUrl },
    close(description: string, info: AmfObject) {
      Object.assign(closed, { description, info });
    },
  };
  return { conn: conn as unknown as TCServerConnection, closed };
}

const request = {
  from: { address: '127.0.0.1', port: 5000 },
  uri: 'rtmfp://127.0.0.1:1935/chat',
  attempts: 1,
  tag: '00112233445566778899aabbccddeeff',
};

function drainWith(servers: NodeEntry[], connections: TCServerConnection[] = [], maxClients?: number) {
  let drained = 0;
  const drain = new Drain({
    log: pino({ level: 'silent' }),
    servers: () => servers,
    selfId: () => 'self',
    maxClients,
    connections: () => connections,
    drained: () => drained++,
  });
  return { drain, drained: () => drained };
}

test('a draining node redirects handshakes to serving, unpaused nodes only, taking them in turn', async () => {
  const servers = [
    server('self', '127.0.0.1:1935'),
    server('b', '127.0.0.2:1935'),
    server('c', '127.0.0.3:1935'),
    server('paused', '127.0.0.4:1935', { paused: true }),
    server('leaving', '127.0.0.5:1935', { state: 'draining' }),
  ];
  const { drain } = drainWith(servers);
  assert.equal(drain.handshake(request), undefined, 'not draining: the apps decide');
  drain.start(60_000, 'r1');
  const first = await drain.handshake(request);
  const second = await drain.handshake(request);
  assert.deepEqual(
    first?.map((a) => a.address),
    ['127.0.0.2', '127.0.0.3'],
  );
  assert.deepEqual(
    second?.map((a) => a.address),
    ['127.0.0.3', '127.0.0.2'],
  );
  drain.cancel();
  assert.equal(drain.handshake(request), undefined, 'resumed');
});

test('a node at [balance] max_clients takes no drained clients', async () => {
  const load = (clients: number) => ({ load: { clients, cpu: 0, packetsPerSecond: 0, bytesPerSecond: 0 } });
  const servers = [
    server('self', '127.0.0.1:1935'),
    server('full', '127.0.0.2:1935', load(3)),
    server('room', '127.0.0.3:1935', load(2)),
  ];
  const { drain } = drainWith(servers, [], 3);
  drain.start(60_000, 'r1');
  assert.deepEqual(
    (await drain.handshake(request))?.map((a) => a.address),
    ['127.0.0.3'],
  );
  drain.cancel();
});

test('with no other node eligible, handshakes are answered here and clients stay past the deadline until one is', async () => {
  const servers = [server('self', '127.0.0.1:1935'), server('b', '127.0.0.2:1935', { paused: true })];
  const alice = client('rtmfp://alice@127.0.0.1:1935/chat/room?x=1');
  const { drain, drained } = drainWith(servers, [alice.conn]);
  drain.start(10, 'r1');
  assert.equal(drain.handshake(request), undefined);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(drained(), 0, 'not drained: nowhere to send the client');
  assert.equal(alice.closed.description, undefined, 'the client stays');
  servers[1] = server('b', '127.0.0.2:1935');
  await new Promise((r) => setTimeout(r, 1_200));
  assert.equal(drained(), 1);
  assert.deepEqual(alice.closed.info, {
    ex: { code: 302, redirect: 'rtmfp://127.0.0.2:1935/chat/room?x=1' },
  });
});

test('the same drain request repeated (the CLI resends until confirmed) keeps the first deadline', () => {
  const { drain } = drainWith([]);
  assert.equal(drain.start(60_000, 'r1'), true);
  assert.equal(drain.start(60_000, 'r1'), false);
  assert.equal(drain.start(30_000, 'r2'), true, 'a new drain command replaces it');
  drain.cancel();
});
