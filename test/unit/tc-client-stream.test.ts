import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AmfValue } from '../../runtime/rtmfp/amf-value.ts';
import { encodeFlowSync } from '../../runtime/rtmfp/flow-sync.ts';
import { decodeMediaMessage, type MediaMessage } from '../../runtime/rtmfp/media-message.ts';
import type { TCClientStream, TCClientStreamHandler } from '../../runtime/rtmfp/tc-client-stream.ts';
import {
  encodeCommand,
  encodeData,
  encodeTCMessage,
  encodeTCMetadata,
  encodeUserControl,
  TCMessageType,
  UserControlEvent,
} from '../../runtime/rtmfp/tc-message.ts';
import { scriptedServer } from '../support/scripted-stream-server.ts';

interface Heard {
  /** Statuses and media as they came, `code` or `type@timestamp`. */
  order: string[];
  statuses: AmfValue[];
  media: MediaMessage[];
  refused: number[];
}

function listener(): { heard: Heard; handler: TCClientStreamHandler } {
  const heard: Heard = { order: [], statuses: [], media: [], refused: [] };
  return {
    heard,
    handler: {
      status: (info) => {
        heard.order.push(String((info as { code?: string }).code));
        heard.statuses.push(info);
      },
      media: (m) => {
        heard.order.push(`${m.type}@${m.timestamp}`);
        heard.media.push({ ...m, body: Buffer.from(m.body) });
      },
      refused: (code) => heard.refused.push(code),
    },
  };
}

/** A scripted server and one stream created on it. */
function withStream() {
  const s = scriptedServer();
  const { heard, handler } = listener();
  let created: TCClientStream | undefined;
  let failure: AmfValue;
  s.tc.createStream(handler, (stream, info) => {
    created = stream;
    failure = stream ? null : info;
  });
  s.pump();
  assert.ok(created, `createStream failed: ${JSON.stringify(failure)}`);
  return { ...s, stream: created, heard };
}

const onStatus = (code: string) =>
  encodeCommand({
    name: 'onStatus',
    transactionId: 0,
    commandObject: null,
    args: [{ level: 'status', code }],
  });

describe('client NetStream protocol', () => {
  test('createStream gives the stream ID the server answered; publish goes on a return flow to the server NetConnection flow with TC 04 <id>', () => {
    const s = withStream();
    assert.equal(s.stream.streamId, 1);
    s.stream.publish('cam');
    s.pump();
    const flows = s.fromClient.filter((f) => f.streamId === 1);
    assert.equal(flows.length, 1);
    assert.deepEqual(flows[0].flow.metadata, Buffer.from('54430401', 'hex'));
    assert.equal(flows[0].flow.associatedFlowId, s.control.id);
    assert.deepEqual(s.commandsOn(1), [['publish', 'cam', 'live']]);
    assert.deepEqual(s.commandsOn(0).at(-1), ['createStream']);
  });

  test('audio, video and data each go on their own flow of the stream, as type · ts32 · body', () => {
    const s = withStream();
    s.stream.publish('cam');
    s.stream.video(40, Buffer.from([0x17, 1, 2]));
    s.stream.audio(43, Buffer.from([0xaf, 1]));
    s.stream.data(0, ['@setDataFrame', 'onMetaData', { width: 320 }]);
    s.stream.video(80, Buffer.from([0x27, 1, 3]));
    s.pump();
    const flows = s.fromClient.filter((f) => f.streamId === 1);
    assert.equal(flows.length, 3);
    for (const f of flows) {
      assert.deepEqual(f.flow.metadata, encodeTCMetadata({ streamId: 1 }));
      assert.equal(f.flow.associatedFlowId, s.control.id);
    }
    const [data, video, audio] = flows.map((f) => f.messages);
    assert.deepEqual(video, [
      encodeTCMessage(TCMessageType.video, 40, Buffer.from([0x17, 1, 2])),
      encodeTCMessage(TCMessageType.video, 80, Buffer.from([0x27, 1, 3])),
    ]);
    assert.deepEqual(audio, [Buffer.from('080000002baf01', 'hex')]);
    assert.deepEqual(data[1], encodeData(['@setDataFrame', 'onMetaData', { width: 320 }]));
  });

  test("onStatus and media on the server's stream flows reach the stream; Flow Sync is not media", () => {
    const s = withStream();
    const status = s.openStreamFlow(1);
    status.write(encodeUserControl(UserControlEvent.flowSync, 1, 2));
    status.write(onStatus('NetStream.Play.Start'));
    status.write(encodeData(['onMetaData', { duration: 0 }], { timestamp: 5 }));
    const video = s.openStreamFlow(1);
    video.write(encodeUserControl(UserControlEvent.flowSync, 1, 2));
    video.write(encodeTCMessage(TCMessageType.video, 120, Buffer.from([0x17, 0, 1])));
    s.pump();
    assert.deepEqual(s.heard.statuses, [{ level: 'status', code: 'NetStream.Play.Start' }]);
    assert.deepEqual(s.heard.media, [
      {
        type: 'data',
        timestamp: 5,
        body: encodeData(['onMetaData', { duration: 0 }]).subarray(5),
        values: ['onMetaData', { duration: 0 }],
      },
      { type: 'video', timestamp: 120, body: Buffer.from([0x17, 0, 1]) },
    ]);
    assert.equal(s.stream.malformed, 0);
  });

  test('a flow that delivered a Flow Sync barrier holds what follows until every flow of the stream delivered it', () => {
    const s = withStream();
    const data = s.openStreamFlow(1);
    const audio = s.openStreamFlow(1);
    const video = s.openStreamFlow(1);
    data.write(encodeFlowSync(7, 3));
    data.write(onStatus('NetStream.Play.UnpublishNotify'));
    data.write(encodeFlowSync(8, 3));
    s.pump();
    assert.deepEqual(s.heard.order, [], 'UnpublishNotify waits for the audio and video flows');
    audio.write(encodeTCMessage(TCMessageType.audio, 960, Buffer.from([0xaf, 1, 9])));
    audio.write(encodeFlowSync(7, 3));
    audio.write(encodeFlowSync(8, 3));
    audio.write(encodeTCMessage(TCMessageType.audio, 0, Buffer.from([0xaf, 1, 0])));
    s.pump();
    assert.deepEqual(s.heard.order, ['audio@960']);
    video.write(encodeTCMessage(TCMessageType.video, 960, Buffer.from([0x27, 1, 9])));
    video.write(encodeFlowSync(7, 3));
    video.write(encodeFlowSync(8, 3));
    s.pump();
    assert.deepEqual(
      s.heard.order,
      ['audio@960', 'video@960', 'NetStream.Play.UnpublishNotify', 'audio@0'],
      "the last frames before UnpublishNotify, the next publisher's after it",
    );
    assert.equal(s.stream.syncReleasedEarly, 0);
  });

  test('a Flow Sync barrier a flow never delivers is released when that flow ends', () => {
    const s = withStream();
    const data = s.openStreamFlow(1);
    const audio = s.openStreamFlow(1);
    audio.write(encodeTCMessage(TCMessageType.audio, 40, Buffer.from([0xaf, 1, 1])));
    data.write(encodeFlowSync(3, 2));
    data.write(onStatus('NetStream.Play.Stop'));
    s.pump();
    assert.deepEqual(s.heard.order, ['audio@40']);
    audio.close();
    s.pump();
    assert.deepEqual(s.heard.order, ['audio@40', 'NetStream.Play.Stop']);
    assert.equal(s.stream.syncReleasedEarly, 1);
  });

  test("a Flow Sync barrier a flow never delivers is released at the barrier's bound, with no more traffic", () => {
    const s = withStream();
    const data = s.openStreamFlow(1);
    const audio = s.openStreamFlow(1);
    audio.write(encodeTCMessage(TCMessageType.audio, 40, Buffer.from([0xaf, 1, 1])));
    data.write(encodeFlowSync(4, 2));
    data.write(onStatus('NetStream.Play.UnpublishNotify'));
    s.pump();
    assert.deepEqual(s.heard.order, ['audio@40']);
    assert.equal(s.wakeups.length, 1, 'the stream asked its host for a wake-up');
    const [wakeup] = s.wakeups;
    wakeup.service(wakeup.at);
    assert.deepEqual(s.heard.order, ['audio@40', 'NetStream.Play.UnpublishNotify']);
    assert.equal(s.stream.syncReleasedEarly, 1);
  });

  test('closeStream follows a Flow Sync barrier on each of our flows of the stream, counting them', () => {
    const s = withStream();
    s.stream.publish('cam');
    s.stream.video(40, Buffer.from([0x17, 1, 2]));
    s.stream.audio(43, Buffer.from([0xaf, 1]));
    s.stream.closeStream();
    s.pump();
    const [data, video, audio] = s.fromClient.filter((f) => f.streamId === 1).map((f) => f.messages);
    const barrier = encodeFlowSync(0, 3);
    assert.deepEqual(video.at(-1), barrier);
    assert.deepEqual(audio.at(-1), barrier);
    assert.deepEqual(data.at(-2), barrier);
    assert.deepEqual(s.commandsOn(1).at(-1), ['closeStream']);
  });

  test('a malformed message on a stream flow is dropped and counted; the flow goes on', () => {
    const s = withStream();
    const flow = s.openStreamFlow(1);
    flow.write(Buffer.from([TCMessageType.dataAmf0, 0, 0])); // cut header
    flow.write(Buffer.from([TCMessageType.dataAmf3, 0, 0, 0, 0, 7])); // AMF3 format byte must be 0
    flow.write(encodeTCMessage(TCMessageType.audio, 1, Buffer.from([0xaf, 1])));
    s.pump();
    assert.equal(s.stream.malformed, 2);
    assert.deepEqual(
      s.heard.media.map((m) => m.type),
      ['audio'],
    );
  });

  test('server flows for a stream createStream did not give, or not associated to our NetConnection flow, are refused', () => {
    const s = withStream();
    const unknown = s.openStreamFlow(7);
    const unassociated = s.server.openFlow(encodeTCMetadata({ streamId: 1 }));
    const toOtherFlow = s.openStreamFlow(1, s.fromClient[0].flow.id + 100);
    for (const f of [unknown, unassociated, toOtherFlow]) f.write(onStatus('NetStream.Play.Start'));
    s.pump();
    assert.equal(unknown.state, 'failed');
    assert.equal(unassociated.state, 'failed');
    assert.equal(toOtherFlow.state, 'failed');
    assert.deepEqual(s.heard.statuses, []);
  });

  test('the server refusing a stream flow tells the stream', () => {
    const s = withStream();
    s.stream.publish('cam');
    s.pump();
    s.fromClient.filter((f) => f.streamId === 1)[0].flow.reject(3);
    s.pump();
    assert.deepEqual(s.heard.refused, [3]);
  });

  test("createStream refused (_error) or answered with no stream ID fails with the server's info", () => {
    const s = scriptedServer();
    s.createStreamAnswers.push(
      { level: 'error', code: 'NetConnection.Call.Failed', description: 'too many streams' },
      0,
    );
    const results: [boolean, AmfValue][] = [];
    const { handler } = listener();
    s.tc.createStream(handler, (stream, info) => results.push([stream !== undefined, info]));
    s.tc.createStream(handler, (stream, info) => results.push([stream !== undefined, info]));
    s.pump();
    assert.deepEqual(results[0], [
      false,
      { level: 'error', code: 'NetConnection.Call.Failed', description: 'too many streams' },
    ]);
    assert.equal(results[1][0], false);
    assert.match(String((results[1][1] as { description: string }).description), /createStream answered 0/);
  });

  test('deleteStream sends deleteStream(id) on the NetConnection flow, ends our stream flows and refuses the server ones after', () => {
    const s = withStream();
    s.stream.closeStream();
    s.stream.audio(0, Buffer.from([0xaf, 1]));
    s.tc.deleteStream(s.stream);
    s.pump();
    assert.deepEqual(s.commandsOn(1), [['closeStream']]);
    assert.deepEqual(s.commandsOn(0).at(-1), ['deleteStream', 1]);
    const ours = s.fromClient.filter((f) => f.streamId === 1);
    assert.equal(ours.length, 2);
    assert.ok(ours.every((f) => f.completed));
    const late = s.openStreamFlow(1);
    late.write(onStatus('NetStream.Play.Start'));
    s.pump();
    assert.equal(late.state, 'failed');
    assert.deepEqual(s.heard.statuses, []);
  });
});

describe('client NetStream partial reliability (tcpublish)', () => {
  const AVC_CONFIG = Buffer.from('1700000000014d401f', 'hex');
  const AAC_CONFIG = Buffer.from('af001210', 'hex');
  const frame = (n: number) => Buffer.from([0x27, 1, 0, 0, 0, n]);
  const delivered = (s: ReturnType<typeof withStream>) =>
    s
      .mediaFlows(1)
      .flatMap((messages) =>
        messages.map((m) => `${m.type === TCMessageType.audio ? 'audio' : 'video'}@${m.timestamp}`),
      );

  test('audio and video past their lifetimes (2.2 s, 2 s) are abandoned; codec configuration still arrives', () => {
    const s = withStream();
    s.stream.video(0, AVC_CONFIG);
    s.stream.audio(0, AAC_CONFIG);
    s.stream.video(40, frame(1));
    s.stream.audio(43, Buffer.from('af0105', 'hex'));
    s.run(2_500, { lose: true });
    s.run(10_000);
    assert.deepEqual(delivered(s).sort(), ['audio@0', 'video@0']);
  });

  test('without lifetimes the same messages are retransmitted until they arrive', () => {
    const s = withStream();
    s.stream.video(40, frame(1), false);
    s.stream.audio(43, Buffer.from('af0105', 'hex'), false);
    s.run(2_500, { lose: true });
    s.run(10_000);
    assert.deepEqual(delivered(s).sort(), ['audio@43', 'video@40']);
  });

  test('an end of sequence is sent reliably and does not abandon the GOP it ends', () => {
    const endOfSequence = Buffer.from('1702000000', 'hex');
    const s = withStream();
    s.stream.video(40, frame(1));
    s.stream.video(80, endOfSequence);
    s.pump();
    assert.deepEqual(delivered(s), ['video@40', 'video@80']);
    const lossy = withStream();
    lossy.stream.video(80, endOfSequence);
    lossy.run(2_500, { lose: true });
    lossy.run(10_000);
    assert.deepEqual(delivered(lossy), ['video@80']);
  });

  test('a keyframe abandons what is unsent of the previous GOP, not the configuration', () => {
    const s = withStream();
    s.stream.video(0, AVC_CONFIG);
    s.stream.video(40, frame(1));
    s.stream.video(80, frame(2));
    s.stream.video(120, Buffer.from([0x17, 1, 0, 0, 0, 3]));
    s.pump();
    assert.deepEqual(delivered(s), ['video@0', 'video@120']);
  });
});

describe('media messages', () => {
  test('decode audio, video and AMF0/AMF3 data; other message types are not media', () => {
    assert.deepEqual(decodeMediaMessage(Buffer.from('0800000010af01', 'hex')), {
      type: 'audio',
      timestamp: 16,
      body: Buffer.from('af01', 'hex'),
    });
    const amf3 = encodeData(['onCuePoint', 1], { amf3: true, timestamp: 9 });
    assert.deepEqual(decodeMediaMessage(amf3)?.values, ['onCuePoint', 1]);
    assert.equal(decodeMediaMessage(encodeUserControl(UserControlEvent.streamBegin, 1)), undefined);
  });
});
