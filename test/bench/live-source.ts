import { performance } from 'node:perf_hooks';
import { connect, type NetConnection } from '../../sdk/client.ts';
import type { Publisher } from '../../sdk/publisher.ts';

/**
 * A live camera for the fan-out benchmark: an sdk client publishing a synthetic ~290 kbit/s
 * stream in real time, the stream rtmfp-cpp's tcserver figure was taken with. FLV bodies
 * (RTMFP-NOTES §8): onMetaData, an AVC and an AAC sequence header, then 25 fps video with a
 * keyframe every 2 s and AAC frames at 44.1 kHz / 1024 samples (≈ 43 a second).
 */

const VIDEO_FRAME_MS = 40;
const FRAMES_PER_KEYFRAME = 50;
const AUDIO_FRAME_MS = 1024 / 44.1;
/** Sizes giving 290 kbit/s: (8,000 + 49 × 990) B video + 86 × 186 B audio every 2 s ≈ 36.25 kB/s. */
const KEYFRAME_BYTES = 8_000;
const FRAME_BYTES = 990;
const AUDIO_BYTES = 186;
/** Media due by now is sent at this pace (a timer per frame would be 68 wake-ups a second). */
const TICK_MS = 10;

/** Media messages a player gets a second: 25 video frames and ≈ 43 audio frames. */
export const MESSAGES_PER_S = 1000 / VIDEO_FRAME_MS + 1000 / AUDIO_FRAME_MS;
/** Bits per second of the media bodies above. */
export const STREAM_BITS_PER_S =
  (8 * (KEYFRAME_BYTES + (FRAMES_PER_KEYFRAME - 1) * FRAME_BYTES)) /
    ((FRAMES_PER_KEYFRAME * VIDEO_FRAME_MS) / 1000) +
  (8 * AUDIO_BYTES * 1000) / AUDIO_FRAME_MS;

/** The FLV video body of frame `n` (AVC NALU, keyframe or inter frame). */
function videoBody(n: number): Buffer {
  const key = n % FRAMES_PER_KEYFRAME === 0;
  const body = Buffer.alloc(key ? KEYFRAME_BYTES : FRAME_BYTES, n & 0xff);
  body.set(key ? [0x17, 0x01, 0, 0, 0] : [0x27, 0x01, 0, 0, 0]);
  body.writeUInt32BE(n, 5);
  return body;
}

/** The FLV audio body of AAC frame `n` (raw AAC). */
function audioBody(n: number): Buffer {
  const body = Buffer.alloc(AUDIO_BYTES, (n * 7) & 0xff);
  body.set([0xaf, 0x01]);
  body.writeUInt32BE(n, 2);
  return body;
}

/** A publisher sending the stream in real time until `stop()`. */
export class LiveSource {
  private readonly nc: NetConnection;
  private readonly publisher: Publisher;
  private readonly timer: NodeJS.Timeout;
  private readonly start = performance.now();
  private video = 0;
  private audio = 0;

  private constructor(nc: NetConnection, publisher: Publisher) {
    this.nc = nc;
    this.publisher = publisher;
    publisher.data(0, '@setDataFrame', 'onMetaData', {
      width: 640,
      height: 360,
      framerate: 1000 / VIDEO_FRAME_MS,
      videocodecid: 7,
      audiocodecid: 10,
    });
    // AVC decoder configuration record and AAC AudioSpecificConfig (LC, 44.1 kHz, stereo).
    publisher.video(0, Buffer.from('1700000000014d401fffe1', 'hex'));
    publisher.audio(0, Buffer.from('af001210', 'hex'));
    this.timer = setInterval(() => this.sendDue(), TICK_MS);
  }

  /** Connects to `url` and publishes `name`; media flows from then on. */
  static async publish(url: string, name: string): Promise<LiveSource> {
    const nc = await connect(url);
    try {
      return new LiveSource(nc, await nc.publish(name));
    } catch (e) {
      await nc.close();
      throw e;
    }
  }

  /** Stops the media, unpublishes and closes the connection. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.publisher.close();
    await this.nc.close();
  }

  private sendDue(): void {
    const elapsed = performance.now() - this.start;
    while (this.video * VIDEO_FRAME_MS <= elapsed) {
      this.publisher.video(Math.round(this.video * VIDEO_FRAME_MS), videoBody(this.video));
      this.video++;
    }
    while (this.audio * AUDIO_FRAME_MS <= elapsed) {
      this.publisher.audio(Math.round(this.audio * AUDIO_FRAME_MS), audioBody(this.audio));
      this.audio++;
    }
  }
}
