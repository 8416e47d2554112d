import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RecvFlow } from '../../runtime/rtmfp/recv-flow.ts';
import type { SendFlow } from '../../runtime/rtmfp/send-flow.ts';
import type { GroupMembership } from '../../runtime/rtmfp/tc-group.ts';
import { encodeCommand, encodeTCMetadata } from '../../runtime/rtmfp/tc-message.ts';
import {
  TCServerConnection,
  type TCServerHandler,
  type TCServerOptions,
} from '../../runtime/rtmfp/tc-server.ts';
import { PAIR_CLIENT, PAIR_SERVER, pairedSession } from '../support/session-pair.ts';
import { loadVectors } from '../support/vectors.ts';

/** Bytes librtmfp sends and Cumulus answers (test/fixtures/vectors/netgroup.json says where each comes from). */
const vectors = loadVectors<{
  gcMetadata: { hex: string };
  joins: { hex: string; groupId: string }[];
  member: { peerId: string; hex: string };
}>('netgroup');
const GC = Buffer.from(vectors.gcMetadata.hex, 'hex');
const LR_JOIN = Buffer.from(vectors.joins[0].hex, 'hex');
const SPECIFIER_JOIN = Buffer.from(vectors.joins[1].hex, 'hex');

type Event = [string, string?];

/**
 * A client session and the node's session with a TCServerConnection on it, joined by arrays
 * of datagrams. The client is driven by hand, as librtmfp drives its flows.
 */
function connected(o: TCServerOptions & { groups?: boolean } = {}) {
  const events: Event[] = [];
  const memberships: GroupMembership[] = [];
  const wire = { toNode: [] as Buffer[], toClient: [] as Buffer[] };
  const clientFlows: RecvFlow[] = [];
  const handler: TCServerHandler = {
    connect: (conn) => conn.accept(),
    call: () => {},
    closed: () => events.push(['closed']),
  };
  if (o.groups !== false) {
    handler.groupJoin = (_conn, m) => {
      memberships.push(m);
      events.push(['join', m.groupIdHex]);
    };
    handler.groupLeave = (_conn, m) => events.push(['leave', m.groupIdHex]);
    handler.groupJoinFailed = (_conn, e) => events.push(['failed', e.reason]);
  }
  const session = (role: 'initiator' | 'responder', out: Buffer[], flow: (f: RecvFlow) => void) =>
    pairedSession(role, out, flow, () => conn?.onSessionClosed());
  let conn: TCServerConnection | undefined;
  const client = session('initiator', wire.toNode, (f) => {
    clientFlows.push(f);
    f.onMessage = (m) => events.push(['to-client', `${f.metadata.toString('hex')} ${m.toString('hex')}`]);
  });
  const node = session('responder', wire.toClient, (f) => conn?.onFlow(f));
  conn = new TCServerConnection(node, 'ab'.repeat(32), handler, o);
  let now = 0;
  const pump = () => {
    for (let round = 0; round < 20; round++) {
      now += 250;
      for (const s of [client, node]) s.service(now);
      const moved = wire.toNode.length + wire.toClient.length;
      for (const d of wire.toNode.splice(0)) node.receive(d, PAIR_CLIENT, now);
      for (const d of wire.toClient.splice(0)) client.receive(d, PAIR_SERVER, now);
      if (moved === 0) return;
    }
  };
  client.openFlow(encodeTCMetadata({ streamId: 0 })).write(
    encodeCommand({
      name: 'connect',
      transactionId: 1,
      commandObject: { tcUrl: 'rtmfp://n/chat' },
      args: [],
    }),
  );
  pump();
  const nodeControl = clientFlows[0];
  assert.ok(nodeControl, 'the node opened its NetConnection flow');
  /** librtmfp's sendGroupConnection: a GC flow associated to the node's NetConnection flow, one join on it. */
  const join = (message: Buffer): SendFlow => {
    const flow = client.openFlow(GC, nodeControl.id);
    flow.write(message);
    pump();
    return flow;
  };
  events.length = 0;
  return { client, conn, events, memberships, clientFlows, join, pump };
}

describe('TC NetGroup flows', () => {
  test("librtmfp's join surfaces groupJoin with the group ID; members go back on a GC return flow to it", () => {
    const c = connected();
    const gc = c.join(LR_JOIN);
    assert.deepEqual(c.events, [['join', vectors.joins[0].groupId]]);
    c.memberships[0].sendMember(vectors.member.peerId);
    c.pump();
    const reply = c.clientFlows.at(-1) as RecvFlow;
    assert.equal(reply.associatedFlowId, gc.id);
    assert.deepEqual(c.events.at(-1), ['to-client', `${vectors.gcMetadata.hex} ${vectors.member.hex}`]);
    assert.deepEqual(c.conn.groups, c.memberships);
  });

  test('a join by group specifier (tag 0x10) is hashed to its group ID', () => {
    const c = connected();
    c.join(SPECIFIER_JOIN);
    assert.deepEqual(c.events, [['join', vectors.joins[1].groupId]]);
  });

  test('the client closing its GC flow is a leave; our return flow closes too', () => {
    const c = connected();
    const gc = c.join(LR_JOIN);
    c.memberships[0].sendMember(vectors.member.peerId);
    c.pump();
    const reply = c.clientFlows.at(-1) as RecvFlow;
    let replyEnded = false;
    reply.onComplete = () => {
      replyEnded = true;
    };
    gc.close();
    c.pump();
    assert.deepEqual(c.events.at(-1), ['leave', vectors.joins[0].groupId]);
    assert.equal(replyEnded, true);
    assert.deepEqual(c.conn.groups, []);
  });

  test('a malformed join gets a flow exception on that flow only; the session and other groups go on', () => {
    const c = connected();
    c.join(LR_JOIN);
    const bad = c.join(Buffer.from('012115', 'hex'));
    assert.equal(bad.state, 'failed');
    assert.equal(bad.exceptionCode, 0);
    assert.deepEqual(c.events, [
      ['join', vectors.joins[0].groupId],
      ['failed', 'bad-group-join'],
    ]);
    assert.equal(c.client.state, 'open');
    assert.equal(c.conn.state, 'connected');
    assert.equal(c.conn.groups.length, 1);
  });

  test('a join past groups_per_client is refused on its flow', () => {
    const c = connected({ groupsPerClient: 1 });
    c.join(LR_JOIN);
    const second = c.join(SPECIFIER_JOIN);
    assert.equal(second.state, 'failed');
    assert.deepEqual(c.events, [
      ['join', vectors.joins[0].groupId],
      ['failed', 'groups-per-client'],
    ]);
  });

  test('refuse() from the handler ends the membership with a flow exception and a groupLeave', () => {
    const c = connected();
    const gc = c.join(LR_JOIN);
    c.memberships[0].refuse();
    c.pump();
    assert.equal(gc.state, 'failed');
    assert.deepEqual(c.events.at(-1), ['leave', vectors.joins[0].groupId]);
    assert.equal(c.memberships[0].state, 'left');
  });

  test('when the session ends every membership leaves before the connection is closed', () => {
    const c = connected();
    c.join(LR_JOIN);
    c.join(SPECIFIER_JOIN);
    c.events.length = 0;
    c.client.close();
    c.pump();
    assert.deepEqual(c.events, [
      ['leave', vectors.joins[0].groupId],
      ['leave', vectors.joins[1].groupId],
      ['closed'],
    ]);
  });

  test('without a groupJoin hook NetGroup flows are refused, as before', () => {
    const c = connected({ groups: false });
    const gc = c.join(LR_JOIN);
    assert.equal(gc.state, 'failed');
    assert.deepEqual(c.events, []);
  });
});
