import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyMedia, isNeverDropped, readDataFrame } from '../../runtime/rtmfp/flv.ts';
import { decodeTCMessage, encodeData, TCMessageType } from '../../runtime/rtmfp/tc-message.ts';

const video = (...bytes: number[]) => classifyMedia(TCMessageType.video, Buffer.from(bytes));
const audio = (...bytes: number[]) => classifyMedia(TCMessageType.audio, Buffer.from(bytes));

describe('FLV media classification', () => {
  test('AVC: sequence header, keyframe NALU, inter frame', () => {
    assert.equal(video(0x17, 0x00, 0, 0, 0), 'video-config');
    assert.equal(video(0x17, 0x01, 0, 0, 0), 'keyframe');
    assert.equal(video(0x27, 0x01, 0, 0, 0), 'frame');
  });

  test('an AVC end of sequence is not a GOP start, though flagged as a keyframe', () => {
    assert.equal(video(0x17, 0x02, 0, 0, 0), 'video-end');
    assert.equal(video(0x92, 0x68, 0x76, 0x63, 0x31), 'video-end');
  });

  test('HEVC (codec 12) sequence header and keyframe', () => {
    assert.equal(video(0x1c, 0x00), 'video-config');
    assert.equal(video(0x1c, 0x01), 'keyframe');
  });

  test('Sorenson/VP6 keyframes and inter frames by frame type alone', () => {
    assert.equal(video(0x12, 0xaa), 'keyframe');
    assert.equal(video(0x22, 0xaa), 'frame');
    assert.equal(video(0x52), 'frame'); // video info/command frame: never a GOP start
  });

  test('Enhanced RTMP video: SequenceStart is a config, a keyframe CodedFrames starts a GOP', () => {
    assert.equal(video(0x90, 0x68, 0x76, 0x63, 0x31), 'video-config');
    assert.equal(video(0x91, 0x68, 0x76, 0x63, 0x31), 'keyframe');
    assert.equal(video(0xa1, 0x68, 0x76, 0x63, 0x31), 'frame');
  });

  test('AAC: sequence header vs raw frames; other formats are plain audio', () => {
    assert.equal(audio(0xaf, 0x00, 0x12, 0x10), 'audio-config');
    assert.equal(audio(0xaf, 0x01, 0x21), 'audio');
    assert.equal(audio(0x2f, 0xff), 'audio');
    assert.equal(audio(), 'audio');
  });

  test('an empty video message is an ordinary frame, never a keyframe', () => {
    assert.equal(video(), 'frame');
  });

  test('metadata, codec configuration and end of sequence are never dropped; coded frames may be', () => {
    const hex = (type: number, h: string) => classifyMedia(type, Buffer.from(h, 'hex'));
    const kept = [
      hex(TCMessageType.video, '1700000000'), // AVC sequence header
      hex(TCMessageType.video, '9068766331'), // Enhanced RTMP SequenceStart, 'hvc1'
      hex(TCMessageType.video, '1702000000'), // AVC end of sequence
      hex(TCMessageType.audio, 'af00'), // AAC sequence header
      hex(TCMessageType.audio, '904f707573'), // Enhanced RTMP audio SequenceStart, 'Opus'
      hex(TCMessageType.dataAmf0, '02000a6f6e4d65746144617461'),
    ];
    const droppable = [
      hex(TCMessageType.video, '1701000000'), // AVC keyframe
      hex(TCMessageType.video, '2701000000'),
      hex(TCMessageType.video, '9168766331'), // Enhanced RTMP CodedFrames
      hex(TCMessageType.video, '22'), // Sorenson H.263
      hex(TCMessageType.audio, 'af01'),
      hex(TCMessageType.audio, '2f'), // MP3
      hex(TCMessageType.audio, '914f707573'),
    ];
    assert.deepEqual(
      kept.map(isNeverDropped),
      kept.map(() => true),
    );
    assert.deepEqual(
      droppable.map(isNeverDropped),
      droppable.map(() => false),
    );
  });
});

describe('published data messages', () => {
  const message = (values: Parameters<typeof encodeData>[0]) => decodeTCMessage(encodeData(values));

  test('@setDataFrame onMetaData becomes the data keyframe onMetaData players receive', () => {
    const frame = readDataFrame(message(['@setDataFrame', 'onMetaData', { width: 320, height: 240 }]));
    assert.deepEqual(frame, {
      handler: 'onMetaData',
      action: 'set',
      values: ['onMetaData', { width: 320, height: 240 }],
    });
  });

  test('@clearDataFrame names the keyframe it clears; other data is sent as is', () => {
    assert.deepEqual(readDataFrame(message(['@clearDataFrame', 'onMetaData'])), {
      handler: 'onMetaData',
      action: 'clear',
      values: ['onMetaData'],
    });
    assert.deepEqual(readDataFrame(message(['onCuePoint', { t: 1 }])), {
      handler: 'onCuePoint',
      action: 'send',
      values: ['onCuePoint', { t: 1 }],
    });
  });

  test('@setDataFrame without a handler name is refused', () => {
    assert.throws(() => readDataFrame(message(['@setDataFrame'])), { reason: 'bad-data-frame' });
    assert.throws(() => readDataFrame(message(['@setDataFrame', 3])), { reason: 'bad-data-frame' });
  });

  test('a data message that is not AMF is refused', () => {
    const bad = { type: TCMessageType.dataAmf0, timestamp: 0, payload: Buffer.from([0x42]) };
    assert.throws(() => readDataFrame(bad));
  });
});
