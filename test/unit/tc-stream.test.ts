import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeFlowSync } from '../../runtime/rtmfp/flow-sync.ts';
import { LivePublication } from '../../runtime/rtmfp/live-publication.ts';
import type { RecvFlow } from '../../runtime/rtmfp/recv-flow.ts';
import type { SendFlow } from '../../runtime/rtmfp/send-flow.ts';
import {
  decodeCommand,
  decodeTCMessage,
  decodeTCMetadata,
  decodeUserControl,
  encodeCommand,
  encodeTCMessage,
  encodeTCMetadata,
  TCMessageType,
} from '../../runtime/rtmfp/tc-message.ts';
import { TCServerConnection, type TCServerHandler } from '../../runtime/rtmfp/tc-server.ts';
import type { NetStream, PlayRequest, PublishRequest, StreamEvents } from '../../runtime/rtmfp/tc-stream.ts';
import { PAIR_CLIENT, PAIR_SERVER, pairedSession } from '../support/session-pair.ts';

/** What reached the client on one of the node's flows: stream ID, association, and a readable message. */
interface Seen {
  streamId: number;
  associated: number | undefined;
  flow: number;
  what: string;
}

function describeMessage(m: Buffer): string {
  const msg = decodeTCMessage(m);
  if (msg.type === TCMessageType.commandAmf0) {
    const c = decodeCommand(msg);
    const info = c.args[0] as { code?: string } | number;
    return typeof info === 'object' && info?.code
      ? `${c.name} ${info.code}`
      : `${c.name} ${JSON.stringify(info)}`;
  }
  if (msg.type === TCMessageType.userControl) return `uc ${JSON.stringify(decodeUserControl(msg))}`;
  return `${msg.type} ${msg.payload.toString('hex')}`;
}

/**
 * A client session and the node's, with a TCServerConnection whose NetStream events are
 * recorded, and a client driven by hand as tcconn/librtmfp drive theirs.
 */
function connected(answer: Partial<StreamEvents> = {}) {
  const events: string[] = [];
  const seen: Seen[] = [];
  const wire = { toNode: [] as Buffer[], toClient: [] as Buffer[] };
  const streams: StreamEvents = {
    publish: (s, r) => {
      events.push(`publish ${s.id} ${r.name} ${r.type} ${r.query}`);
      answer.publish?.(s, r);
    },
    unpublished: (s, name) => events.push(`unpublished ${s.id} ${name}`),
    play: (s, r) => {
      events.push(`play ${s.id} ${r.name}`);
      answer.play?.(s, r);
    },
    stopped: (s) => events.push(`stopped ${s.id}`),
    media: (s, m) => events.push(`media ${s.id} ${m.type} ${m.timestamp}`),
    dropped: (s, reason) => events.push(`dropped ${s.id} ${reason}`),
  };
  const handler: TCServerHandler = {
    connect: (c) => c.accept(),
    call: () => {},
    closed: () => events.push('closed'),
  };
  const session = (role: 'initiator' | 'responder', out: Buffer[], flow: (f: RecvFlow) => void) =>
    pairedSession(role, out, flow, () => conn?.onSessionClosed());
  let conn: TCServerConnection | undefined;
  const client = session('initiator', wire.toNode, (f) => {
    const tc = decodeTCMetadata(f.metadata);
    f.onMessage = (m) =>
      seen.push({
        streamId: tc?.streamId ?? -1,
        associated: f.associatedFlowId,
        flow: f.id,
        what: describeMessage(m),
      });
  });
  const node = session('responder', wire.toClient, (f) => conn?.onFlow(f));
  /** Wake-ups the NetStreams asked of the host (Flow Sync bounds), run by the test as a timer would. */
  const wakeups: { at: number; service: (now: number) => void }[] = [];
  conn = new TCServerConnection(node, 'ab'.repeat(32), handler, {
    streams,
    wakeAt: (at, service) => wakeups.push({ at, service }),
  });
  let now = 0;
  const pump = () => {
    for (let round = 0; round < 20; round++) {
      now += 50;
      for (const s of [client, node]) s.service(now);
      const moved = wire.toNode.length + wire.toClient.length;
      for (const d of wire.toNode.splice(0)) node.receive(d, PAIR_CLIENT, now);
      for (const d of wire.toClient.splice(0)) client.receive(d, PAIR_SERVER, now);
      if (moved === 0) return;
    }
  };
  const control = client.openFlow(encodeTCMetadata({ streamId: 0 }));
  control.write(
    encodeCommand({
      name: 'connect',
      transactionId: 1,
      commandObject: { tcUrl: 'rtmfp://n/live' },
      args: [],
    }),
  );
  pump();
  const nodeControlId = seen[0]?.flow;
  assert.ok(nodeControlId !== undefined, 'the node opened its NetConnection flow');
  let tid = 2;
  /** createStream, then a flow of the stream associated to the node's NetConnection flow (tcconn's openReturnFlow). */
  const createStream = (): { id: number; flow: SendFlow } => {
    control.write(
      encodeCommand({ name: 'createStream', transactionId: ++tid, commandObject: null, args: [] }),
    );
    pump();
    const id = Number(/_result (\d+)/.exec(seen.at(-1)?.what ?? '')?.[1]);
    assert.ok(id > 0, 'createStream answered a positive stream ID');
    const flow = client.openFlow(encodeTCMetadata({ streamId: id }), nodeControlId);
    seen.length = 0;
    return { id, flow };
  };
  const command = (flow: SendFlow, name: string, ...args: (string | number | boolean | null)[]) => {
    flow.write(encodeCommand({ name, transactionId: 0, commandObject: null, args }));
    pump();
  };
  seen.length = 0;
  return { client, conn, control, nodeControlId, events, seen, pump, createStream, command, wakeups };
}

describe('NetStream commands on stream flows', () => {
  test('publish with an AMF0 name asks the node; Publish.Start goes back on a TC stream flow tied to the NetConnection flow', () => {
    const c = connected({ publish: (s, r) => s.acceptPublish(r) });
    const { id, flow } = c.createStream();
    c.command(flow, 'publish', 'cam?priority=2', 'live');
    assert.deepEqual(c.events, [`publish ${id} cam live priority=2`]);
    const start = c.seen.find((s) => s.what.includes('NetStream.Publish.Start'));
    assert.ok(start);
    assert.equal(start.streamId, id);
    assert.equal(start.associated, c.control.id, "a return flow of the client's NetConnection flow");
  });

  test("librtmfp's publish (0x11 command, AMF3 name behind the 0x11 marker) is understood (pitfall 24)", () => {
    const c = connected({ publish: (s, r) => s.acceptPublish(r) });
    const { id, flow } = c.createStream();
    // 0x11 · ts 0 · format 0 · "publish" · tid 0 · null · 0x11 marker · AMF3 string "cam"
    const body = Buffer.concat([
      Buffer.from([0x00, 0x02, 0x00, 0x07]),
      Buffer.from('publish'),
      Buffer.from([0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x11, 0x06, 0x07]),
      Buffer.from('cam'),
    ]);
    flow.write(encodeTCMessage(TCMessageType.commandAmf3, 0, body));
    c.pump();
    assert.deepEqual(c.events, [`publish ${id} cam live `]);
    assert.ok(c.seen.some((s) => s.what.includes('NetStream.Publish.Start')));
  });

  test('media is passed on only once the publish is accepted; before, it is dropped with a reason', () => {
    let pending: { s: NetStream; r: PublishRequest } | undefined;
    const c = connected({ publish: (s, r) => (pending = { s, r }) });
    const { id, flow } = c.createStream();
    c.command(flow, 'publish', 'cam');
    flow.write(encodeTCMessage(TCMessageType.video, 40, Buffer.from([0x17, 0x01])));
    c.pump();
    assert.ok(pending?.s.acceptPublish(pending.r));
    flow.write(encodeTCMessage(TCMessageType.audio, 50, Buffer.from([0xaf, 0x01])));
    c.pump();
    assert.deepEqual(c.events.slice(1), [`dropped ${id} media-not-publishing`, `media ${id} 8 50`]);
  });

  test('a refused publish answers Publish.BadName (level error) and takes no media', () => {
    const c = connected({ publish: (s, r) => s.refusePublish(r, 'cam is already published') });
    const { id, flow } = c.createStream();
    c.command(flow, 'publish', 'cam');
    flow.write(encodeTCMessage(TCMessageType.video, 0, Buffer.from([0x17, 0x01])));
    c.pump();
    assert.ok(c.seen.some((s) => s.what === 'onStatus NetStream.Publish.BadName'));
    assert.deepEqual(c.events.at(-1), `dropped ${id} media-not-publishing`);
  });

  test('closeStream ends a publish with Unpublish.Success; an answer for a publish the client left is refused', () => {
    let pending: { s: NetStream; r: PublishRequest } | undefined;
    const c = connected({ publish: (s, r) => (pending = { s, r }) });
    const { id, flow } = c.createStream();
    c.command(flow, 'publish', 'cam');
    c.command(flow, 'closeStream');
    assert.equal(pending?.s.acceptPublish(pending.r), false, 'the client closed the stream meanwhile');
    c.command(flow, 'publish', 'cam');
    assert.ok(pending?.s.acceptPublish(pending.r));
    c.command(flow, 'closeStream');
    assert.ok(c.seen.some((s) => s.what === 'onStatus NetStream.Unpublish.Success'));
    assert.equal(c.events.at(-1), `unpublished ${id} cam`);
  });

  test('play: StreamBegin on stream 0, the play sequence and media on stream flows tied to the NetConnection flow', () => {
    const pub = new LivePublication('cam');
    pub.start();
    const c = connected({
      play: (s, r: PlayRequest) => {
        const player = s.startPlaying(r);
        if (player) pub.subscribe(player, 0);
      },
    });
    const { id, flow } = c.createStream();
    c.command(flow, 'play', 'cam');
    pub.ingest({ type: TCMessageType.video, timestamp: 0, payload: Buffer.from([0x17, 0x01, 9]) }, 0);
    c.pump();
    assert.deepEqual(
      c.seen.map((s) => [s.streamId, s.what]),
      [
        [0, `uc {"event":0,"data":[${id}]}`],
        [id, 'onStatus NetStream.Play.Reset'],
        [id, 'onStatus NetStream.Play.Start'],
        // data |RtmpSampleAccess(true, true): AMF0 string, then two booleans 01 01
        [id, `18 020011${Buffer.from('|RtmpSampleAccess').toString('hex')}01010101`],
        [id, 'onStatus NetStream.Play.PublishNotify'],
        [id, '9 170109'],
      ],
    );
    assert.ok(c.seen.every((s) => s.associated === c.control.id));
    const flows = new Set(c.seen.filter((s) => s.streamId === id).map((s) => s.flow));
    assert.equal(flows.size, 2, 'statuses and video on flows of their own');
  });

  test('UnpublishNotify goes between two Flow Sync barriers on each of the player flows, after the last frames', () => {
    const pub = new LivePublication('cam');
    pub.start();
    const c = connected({
      play: (s, r: PlayRequest) => {
        const player = s.startPlaying(r);
        if (player) pub.subscribe(player, 0);
      },
    });
    const { id, flow } = c.createStream();
    c.command(flow, 'play', 'cam');
    pub.ingest({ type: TCMessageType.video, timestamp: 0, payload: Buffer.from([0x17, 0x01, 9]) }, 0);
    pub.ingest({ type: TCMessageType.audio, timestamp: 0, payload: Buffer.from([0xaf, 0x01, 7]) }, 0);
    pub.stop();
    c.pump();
    const byFlow = new Map<number, string[]>();
    for (const m of c.seen.filter((m) => m.streamId === id))
      byFlow.set(m.flow, [...(byFlow.get(m.flow) ?? []), m.what]);
    const first = 'uc {"event":34,"data":[0,3]}';
    const second = 'uc {"event":34,"data":[1,3]}';
    assert.deepEqual(
      [...byFlow.values()].map((whats) => whats.slice(-3)).sort((x, y) => x[0].localeCompare(y[0])),
      [
        ['8 af0107', first, second],
        ['9 170109', first, second],
        [first, 'onStatus NetStream.Play.UnpublishNotify', second],
      ],
    );
  });

  test("a publisher's closeStream behind a Flow Sync barrier waits for its last frames on its other flows", () => {
    const c = connected({ publish: (s, r) => s.acceptPublish(r) });
    const { id, flow } = c.createStream();
    c.command(flow, 'publish', 'cam');
    const audio = c.client.openFlow(encodeTCMetadata({ streamId: id }), c.nodeControlId);
    audio.write(encodeTCMessage(TCMessageType.audio, 40, Buffer.from([0xaf, 1, 1])));
    c.pump();
    flow.write(encodeFlowSync(0, 2));
    c.command(flow, 'closeStream');
    assert.equal(c.events.at(-1), `media ${id} 8 40`, 'closeStream is held');
    audio.write(encodeTCMessage(TCMessageType.audio, 80, Buffer.from([0xaf, 1, 2])));
    audio.write(encodeFlowSync(0, 2));
    c.pump();
    assert.deepEqual(c.events.slice(-2), [`media ${id} 8 80`, `unpublished ${id} cam`]);
  });

  test("a publisher's closeStream behind a barrier its other flow never meets is taken at the barrier's bound, with no more traffic", () => {
    const c = connected({ publish: (s, r) => s.acceptPublish(r) });
    const { id, flow } = c.createStream();
    c.command(flow, 'publish', 'cam');
    flow.write(encodeFlowSync(0, 2));
    c.command(flow, 'closeStream');
    assert.equal(c.events.at(-1), `publish ${id} cam live `, 'closeStream is held');
    assert.equal(c.wakeups.length, 1, 'the NetStream asked its host for a wake-up');
    const [wakeup] = c.wakeups;
    wakeup.service(wakeup.at);
    assert.equal(c.events.at(-1), `unpublished ${id} cam`);
  });

  test('a failed play answers Play.Failed with what the node adds (ex.redirect)', () => {
    const c = connected({
      play: (s, r) =>
        s.failPlay(r, 'rtmfp://other:1935/live', { ex: { code: 302, redirect: 'rtmfp://other:1935/live' } }),
    });
    const { flow } = c.createStream();
    c.command(flow, 'play', 'cam');
    assert.deepEqual(
      c.seen.map((s) => s.what),
      ['onStatus NetStream.Play.Failed'],
    );
  });

  test('deleteStream and the session closing end publish and play without a status', () => {
    const c = connected({ publish: (s, r) => s.acceptPublish(r), play: (s, r) => s.startPlaying(r) });
    const a = c.createStream();
    const b = c.createStream();
    c.command(a.flow, 'publish', 'cam');
    c.command(b.flow, 'play', 'other');
    c.control.write(
      encodeCommand({ name: 'deleteStream', transactionId: 0, commandObject: null, args: [a.id] }),
    );
    c.pump();
    assert.equal(c.events.at(-1), `unpublished ${a.id} cam`);
    c.conn.close();
    assert.deepEqual(c.events.slice(-2), [`stopped ${b.id}`, 'closed']);
  });

  test('flows of a stream ID never created are refused; bad commands on a stream are dropped with a reason', () => {
    const c = connected();
    const { id, flow } = c.createStream();
    flow.write(encodeTCMessage(TCMessageType.commandAmf0, 0, Buffer.from([0x42])));
    c.command(flow, 'seek', 0);
    assert.deepEqual(c.events, [`dropped ${id} bad-stream-command`, `dropped ${id} unknown-stream-command`]);
    const stray = c.client.openFlow(encodeTCMetadata({ streamId: id + 1 }), c.nodeControlId);
    stray.write(encodeCommand({ name: 'play', transactionId: 0, commandObject: null, args: ['cam'] }));
    c.pump();
    assert.equal(stray.state, 'failed', 'the node rejected the flow');
    assert.equal(c.conn.state, 'connected', 'the session goes on');
  });
});
