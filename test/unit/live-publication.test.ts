import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AUDIO_LIFETIME_MS,
  LivePlayer,
  type MediaFlow,
  VIDEO_LIFETIME_MS,
} from '../../runtime/rtmfp/live-player.ts';
import { LivePublication, MAX_GOP_BYTES } from '../../runtime/rtmfp/live-publication.ts';
import {
  decodeCommand,
  decodeData,
  decodeTCMessage,
  decodeUserControl,
  encodeData,
  TCMessageType,
} from '../../runtime/rtmfp/tc-message.ts';

/** A flow that records what is written to it, with a settable unsent age. */
class RecordingFlow implements MediaFlow {
  writes: { message: Buffer; lifetimeMs?: number }[] = [];
  /** Where each Flow Sync barrier fell: the number of messages written before it. */
  barriers: number[] = [];
  expired = 0;
  age = 0;
  write(message: Buffer, options: { lifetimeMs?: number } = {}): void {
    this.writes.push({ message, lifetimeMs: options.lifetimeMs });
  }
  expireAll(): void {
    this.expired++;
  }
  unsentAge(): number {
    return this.age;
  }
}

function player(name = 'cam', streamId = 1) {
  const out = {
    control: [] as Buffer[],
    data: new RecordingFlow(),
    audio: new RecordingFlow(),
    video: new RecordingFlow(),
  };
  const p = new LivePlayer(streamId, name, {
    control: (m) => out.control.push(m),
    data: out.data,
    audio: out.audio,
    video: out.video,
    sync: () => {
      for (const flow of [out.data, out.audio, out.video]) flow.barriers.push(flow.writes.length);
    },
  });
  /** What the data flow carried, readable: status codes and data handler names. */
  const dataLog = () =>
    out.data.writes.map(({ message }) => {
      const m = decodeTCMessage(message);
      if (m.type === TCMessageType.commandAmf0) {
        const info = decodeCommand(m).args[0] as { code: string };
        return info.code;
      }
      return `data:${String(decodeData(m)[0])}`;
    });
  return { p, out, dataLog };
}

const media = (type: number, timestamp: number, ...bytes: number[]) => ({
  type,
  timestamp,
  payload: Buffer.from(bytes),
});
const AAC_CONFIG = (ts: number) => media(TCMessageType.audio, ts, 0xaf, 0x00, 0x12, 0x10);
const AAC = (ts: number, n = 1) => media(TCMessageType.audio, ts, 0xaf, 0x01, n);
const AVC_CONFIG = (ts: number) => media(TCMessageType.video, ts, 0x17, 0x00, 0, 0, 0, 1);
const KEY = (ts: number, n = 1) => media(TCMessageType.video, ts, 0x17, 0x01, 0, 0, 0, n);
const INTER = (ts: number, n = 1) => media(TCMessageType.video, ts, 0x27, 0x01, 0, 0, 0, n);
const META = (ts: number) => ({
  ...decodeTCMessage(encodeData(['@setDataFrame', 'onMetaData', { width: 320 }], { timestamp: ts })),
});

const bodies = (flow: RecordingFlow) =>
  flow.writes.map((w) => decodeTCMessage(w.message).payload.toString('hex'));
const stamps = (flow: RecordingFlow) => flow.writes.map((w) => decodeTCMessage(w.message).timestamp);

describe('live publication fan-out', () => {
  test('two players get the very same encoded bytes, in order, on separate audio and video flows', () => {
    const pub = new LivePublication('cam');
    const a = player();
    const b = player('cam', 7);
    pub.subscribe(a.p, 0);
    pub.subscribe(b.p, 0);
    pub.start();
    for (const m of [AVC_CONFIG(0), AAC_CONFIG(0), KEY(0), AAC(10), INTER(40), AAC(33, 2), INTER(80, 2)])
      pub.ingest(m, 0);
    assert.equal(a.out.video.writes.length, 4);
    assert.equal(a.out.audio.writes.length, 3);
    for (const kind of ['audio', 'video'] as const) {
      for (const [i, w] of a.out[kind].writes.entries())
        assert.equal(w.message, b.out[kind].writes[i].message, 'encoded once');
    }
    assert.deepEqual(bodies(a.out.video), ['170000000001', '170100000001', '270100000001', '270100000002']);
    assert.deepEqual(stamps(a.out.video), [0, 0, 40, 80]);
  });

  test('a player that comes first hears the play sequence, then PublishNotify when a publisher starts', () => {
    const pub = new LivePublication('cam');
    const a = player('cam', 3);
    pub.subscribe(a.p, 0);
    assert.deepEqual(
      decodeUserControl(a.out.control[0]),
      { event: 0, data: [3] },
      'StreamBegin(3) on stream 0',
    );
    assert.deepEqual(a.dataLog(), ['NetStream.Play.Reset', 'NetStream.Play.Start', 'data:|RtmpSampleAccess']);
    pub.start({ publisher: 'x' });
    assert.equal(a.dataLog().at(-1), 'NetStream.Play.PublishNotify');
  });

  test('a late joiner gets metadata, configs, then the GOP from the last keyframe — its first video is a keyframe', () => {
    const pub = new LivePublication('cam');
    pub.start();
    for (const m of [
      META(0),
      AVC_CONFIG(0),
      AAC_CONFIG(0),
      KEY(0, 1),
      INTER(40),
      KEY(2000, 2),
      AAC(2010),
      INTER(2040, 3),
    ])
      pub.ingest(m, 0);
    const late = player();
    pub.subscribe(late.p, 0);
    assert.deepEqual(late.dataLog(), [
      'NetStream.Play.Reset',
      'NetStream.Play.Start',
      'data:|RtmpSampleAccess',
      'NetStream.Play.PublishNotify',
      'data:onMetaData',
    ]);
    assert.deepEqual(bodies(late.out.video), ['170000000001', '170100000002', '270100000003']);
    assert.deepEqual(bodies(late.out.audio), ['af001210', 'af0101']);
    assert.deepEqual(decodeData(decodeTCMessage(late.out.data.writes[4].message)), [
      'onMetaData',
      { width: 320 },
    ]);
  });

  test("audio from before the last keyframe that arrives after it (its own flow) is not in the keyframe's GOP", () => {
    const pub = new LivePublication('cam');
    pub.start();
    pub.ingest(KEY(0, 1), 0);
    pub.ingest(KEY(1000, 2), 0);
    pub.ingest(AAC(500, 5), 0);
    pub.ingest(AAC(1003, 6), 0);
    const late = player();
    pub.subscribe(late.p, 0);
    assert.deepEqual(bodies(late.out.audio), ['af0106']);
  });

  test('a player sees no video before a keyframe', () => {
    const pub = new LivePublication('cam');
    pub.start();
    pub.ingest(INTER(0), 0);
    const p = player();
    pub.subscribe(p.p, 0);
    pub.ingest(INTER(40, 2), 0);
    pub.ingest(KEY(80, 3), 0);
    assert.deepEqual(bodies(p.out.video), ['170100000003']);
  });

  test('unpublish: players hear UnpublishNotify, stay, and hear PublishNotify for the next publisher; caches are gone', () => {
    const pub = new LivePublication('cam');
    const p = player();
    pub.subscribe(p.p, 0);
    pub.start();
    pub.ingest(AVC_CONFIG(0), 0);
    pub.stop();
    assert.equal(p.dataLog().at(-1), 'NetStream.Play.UnpublishNotify');
    assert.equal(pub.playerCount, 1);
    pub.start();
    assert.equal(p.dataLog().at(-1), 'NetStream.Play.PublishNotify');
    const late = player();
    pub.subscribe(late.p, 0);
    assert.equal(late.out.video.writes.length, 0, "the old publisher's config is not sent");
  });

  test('UnpublishNotify sits between two Flow Sync barriers on every flow, after the last frames', () => {
    const pub = new LivePublication('cam');
    const p = player();
    pub.subscribe(p.p, 0);
    pub.start();
    pub.ingest(KEY(0), 0);
    pub.ingest(AAC(0), 0);
    pub.ingest(AAC(23, 2), 0);
    pub.stop();
    const notify = p.dataLog().indexOf('NetStream.Play.UnpublishNotify');
    assert.deepEqual(p.out.data.barriers, [notify, notify + 1]);
    assert.deepEqual(p.out.audio.barriers, [2, 2], 'after both audio frames');
    assert.deepEqual(p.out.video.barriers, [1, 1], 'after the keyframe');
  });

  test('Play.Stop sits between two Flow Sync barriers', () => {
    const { p, out, dataLog } = player();
    p.stop();
    const stop = dataLog().indexOf('NetStream.Play.Stop');
    assert.deepEqual(out.data.barriers, [stop, stop + 1]);
  });

  test('timestamps start at 0 and keep running across a republish that starts at 0 again', () => {
    const pub = new LivePublication('cam');
    const p = player();
    pub.subscribe(p.p, 0);
    pub.start();
    pub.ingest(KEY(5000), 0);
    pub.ingest(INTER(5040), 0);
    pub.stop();
    pub.start();
    pub.ingest(KEY(0, 2), 0);
    pub.ingest(INTER(40, 2), 0);
    assert.deepEqual(stamps(p.out.video), [0, 40, 41, 81]);
  });

  test('media writes carry lifetimes (video 2.0 s, audio 2.2 s); configs and data none', () => {
    const pub = new LivePublication('cam');
    const p = player();
    pub.subscribe(p.p, 0);
    pub.start();
    for (const m of [META(0), AVC_CONFIG(0), AAC_CONFIG(0), KEY(0), AAC(1), INTER(40)]) pub.ingest(m, 0);
    assert.deepEqual(
      p.out.video.writes.map((w) => w.lifetimeMs),
      [undefined, VIDEO_LIFETIME_MS, VIDEO_LIFETIME_MS],
    );
    assert.deepEqual(
      p.out.audio.writes.map((w) => w.lifetimeMs),
      [undefined, AUDIO_LIFETIME_MS],
    );
    assert.ok(p.out.data.writes.every((w) => w.lifetimeMs === undefined));
  });

  test('an end of sequence reaches players without lifetime and neither expires nor restarts the GOP', () => {
    const pub = new LivePublication('cam');
    const p = player();
    pub.subscribe(p.p, 0);
    pub.start();
    pub.ingest(KEY(0), 0);
    pub.ingest(media(TCMessageType.video, 40, 0x17, 0x02, 0, 0, 0), 0);
    assert.equal(p.out.video.expired, 1);
    assert.equal(p.out.video.writes.at(-1)?.lifetimeMs, undefined);
    const late = player();
    pub.subscribe(late.p, 0);
    assert.deepEqual(bodies(late.out.video), ['170100000001']);
  });

  test('a keyframe expires what is left of the previous GOP', () => {
    const pub = new LivePublication('cam');
    const p = player();
    pub.subscribe(p.p, 0);
    pub.start();
    pub.ingest(KEY(0), 0);
    pub.ingest(INTER(40), 0);
    assert.equal(p.out.video.expired, 1);
    pub.ingest(KEY(2000, 2), 0);
    assert.equal(p.out.video.expired, 2);
  });

  test('a slow player loses ordinary frames until the next keyframe; the other player gets everything', () => {
    const pub = new LivePublication('cam');
    const slow = player();
    const fast = player();
    pub.subscribe(slow.p, 0);
    pub.subscribe(fast.p, 0);
    pub.start();
    pub.ingest(KEY(0), 0);
    slow.out.video.age = 2 * VIDEO_LIFETIME_MS + 1;
    slow.out.audio.age = 2 * AUDIO_LIFETIME_MS + 1;
    pub.ingest(INTER(40), 0);
    pub.ingest(AAC(41), 0);
    slow.out.video.age = 0;
    pub.ingest(INTER(80, 2), 0); // still waiting for a keyframe: the GOP is broken
    pub.ingest(KEY(2000, 3), 0);
    assert.deepEqual(bodies(slow.out.video), ['170100000001', '170100000003']);
    assert.equal(slow.out.audio.writes.length, 0);
    assert.deepEqual(slow.p.dropped, { 'slow-audio': 1, 'slow-video': 1 });
    assert.equal(fast.out.video.writes.length, 4);
    assert.equal(fast.out.audio.writes.length, 1);
  });

  test('receiveVideo(false) stops video; turning it back on waits for a keyframe; receiveAudio(false) stops audio', () => {
    const pub = new LivePublication('cam');
    const p = player();
    pub.subscribe(p.p, 0);
    pub.start();
    pub.ingest(KEY(0), 0);
    p.p.setReceiveVideo(false);
    p.p.receiveAudio = false;
    pub.ingest(INTER(40), 0);
    pub.ingest(AAC(41), 0);
    p.p.setReceiveVideo(true);
    pub.ingest(INTER(80, 2), 0);
    pub.ingest(KEY(120, 3), 0);
    assert.deepEqual(bodies(p.out.video), ['170100000001', '170100000003']);
    assert.equal(p.out.audio.writes.length, 0);
  });

  test('a GOP over MAX_GOP_BYTES is not kept: a late joiner starts at the next keyframe', () => {
    const pub = new LivePublication('cam');
    pub.start();
    pub.ingest(KEY(0), 0);
    const big = { type: TCMessageType.video, timestamp: 40, payload: Buffer.alloc(MAX_GOP_BYTES, 0x27) };
    pub.ingest(big, 0);
    const late = player();
    pub.subscribe(late.p, 0);
    assert.equal(late.out.video.writes.length, 0);
  });

  test('media while not published, non-media types and oversized data are refused with a reason', () => {
    const pub = new LivePublication('cam');
    assert.throws(() => pub.ingest(KEY(0), 0), { reason: 'media-not-publishing' });
    pub.start();
    assert.throws(() => pub.ingest(media(TCMessageType.userControl, 0, 0, 0), 0), { reason: 'not-media' });
    const huge = decodeTCMessage(encodeData(['onCuePoint', 'x'.repeat(70_000)]));
    assert.throws(() => pub.ingest(huge, 0), { reason: 'data-too-large' });
  });

  test('@clearDataFrame removes the data keyframe late joiners would get', () => {
    const pub = new LivePublication('cam');
    pub.start();
    pub.ingest(META(0), 0);
    pub.ingest(decodeTCMessage(encodeData(['@clearDataFrame', 'onMetaData'])), 0);
    const late = player();
    pub.subscribe(late.p, 0);
    assert.ok(!late.dataLog().includes('data:onMetaData'));
  });

  test('a relay gets data keyframes and their clearing as the publisher sent them; players get them stripped', () => {
    const pub = new LivePublication('cam');
    pub.start();
    const relay = player();
    const local = player();
    pub.subscribe(relay.p, 0, { relay: true });
    pub.subscribe(local.p, 0);
    pub.ingest(META(0), 0);
    pub.ingest(decodeTCMessage(encodeData(['@setDataFrame', 'onTextData', { text: 'hi' }])), 0);
    pub.ingest(decodeTCMessage(encodeData(['@clearDataFrame', 'onMetaData'])), 0);
    pub.ingest(decodeTCMessage(encodeData(['onCuePoint', { name: 'x' }])), 0);
    const values = (flow: RecordingFlow) =>
      flow.writes
        .map(({ message }) => decodeTCMessage(message))
        .filter((m) => m.type === TCMessageType.dataAmf0)
        .map((m) => decodeData(m))
        .slice(1); // |RtmpSampleAccess
    assert.deepEqual(values(relay.out.data), [
      ['@setDataFrame', 'onMetaData', { width: 320 }],
      ['@setDataFrame', 'onTextData', { text: 'hi' }],
      ['@clearDataFrame', 'onMetaData'],
      ['onCuePoint', { name: 'x' }],
    ]);
    assert.deepEqual(values(local.out.data), [
      ['onMetaData', { width: 320 }],
      ['onTextData', { text: 'hi' }],
      ['onCuePoint', { name: 'x' }],
    ]);
    const lateRelay = player();
    pub.subscribe(lateRelay.p, 0, { relay: true });
    assert.deepEqual(values(lateRelay.out.data), [['@setDataFrame', 'onTextData', { text: 'hi' }]]);
  });
});
