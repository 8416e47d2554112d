import { LivePlayer, type MediaFlow } from '../../runtime/rtmfp/live-player.ts';
import { LivePublication } from '../../runtime/rtmfp/live-publication.ts';
import { decodeCommand, decodeTCMessage, encodeData, TCMessageType } from '../../runtime/rtmfp/tc-message.ts';
import { FlvTagType } from '../../sdk/flv.ts';
import type { Player } from '../../sdk/player.ts';
import type { Publisher } from '../../sdk/publisher.ts';

/** What one of a player's flows carried: media payloads (hex) in order, and status codes. */
export interface Recorded {
  statuses: string[];
  /** Payloads, hex, per flow, in the order written. */
  audio: string[];
  video: string[];
  data: string[];
}

/** A flow that keeps what is written to it, decoded enough to compare. */
class RecordingFlow implements MediaFlow {
  private readonly into: string[];
  private readonly statuses: string[];

  constructor(into: string[], statuses: string[]) {
    this.into = into;
    this.statuses = statuses;
  }

  write(message: Buffer): void {
    const m = decodeTCMessage(message);
    if (m.type === TCMessageType.commandAmf0) {
      const info = decodeCommand(m).args[0] as { code?: string };
      this.statuses.push(String(info?.code));
      return;
    }
    this.into.push(m.payload.toString('hex'));
  }

  expireAll(): void {}

  unsentAge(): number {
    return 0;
  }
}

/** A LivePlayer whose flows record what a client would receive (no session: the fan-out alone). */
export function recordingPlayer(name: string): { player: LivePlayer; got: Recorded } {
  const got: Recorded = { statuses: [], audio: [], video: [], data: [] };
  const player = new LivePlayer(1, name, {
    control: () => {},
    data: new RecordingFlow(got.data, got.statuses),
    audio: new RecordingFlow(got.audio, got.statuses),
    video: new RecordingFlow(got.video, got.statuses),
    sync: () => {},
  });
  return { player, got };
}

/** A TC message's type and timestamp, before its payload. */
const TC_HEADER_BYTES = 5;

/** One message of a synthetic stream, as a publisher sends it (data: an FLV script tag body). */
export interface SyntheticMessage {
  type: number;
  timestamp: number;
  payload: Buffer;
}

/**
 * A synthetic live stream: metadata, AVC and AAC configurations, then `gops` GOPs of a keyframe
 * and `framesPerGop - 1` inter frames (25 fps) with an audio frame each; payloads are
 * deterministic filler of realistic sizes (keyframe 4 kB, frame 800 B, audio 200 B).
 */
export function syntheticStream(gops: number, framesPerGop = 25): SyntheticMessage[] {
  const out: SyntheticMessage[] = [
    {
      type: TCMessageType.dataAmf0,
      timestamp: 0,
      payload: encodeData(['onMetaData', { width: 640, height: 360 }]).subarray(TC_HEADER_BYTES),
    },
    { type: TCMessageType.video, timestamp: 0, payload: Buffer.from('1700000000014d401fffe1', 'hex') },
    { type: TCMessageType.audio, timestamp: 0, payload: Buffer.from('af001210', 'hex') },
  ];
  let n = 0;
  for (let g = 0; g < gops; g++) {
    for (let f = 0; f < framesPerGop; f++) {
      const timestamp = 40 * n;
      const key = f === 0;
      const video = Buffer.alloc(key ? 4_000 : 800, n & 0xff);
      video.set(key ? [0x17, 0x01, 0, 0, 0] : [0x27, 0x01, 0, 0, 0]);
      video.writeUInt32BE(n, 5);
      out.push({ type: TCMessageType.video, timestamp, payload: video });
      const audio = Buffer.alloc(200, (n * 7) & 0xff);
      audio.set([0xaf, 0x01]);
      audio.writeUInt32BE(n, 2);
      out.push({ type: TCMessageType.audio, timestamp, payload: audio });
      n++;
    }
  }
  return out;
}

/** Bytes of the stream's payloads: what a publisher hands the node. */
export function streamBytes(messages: readonly SyntheticMessage[]): number {
  return messages.reduce((sum, m) => sum + m.payload.length, 0);
}

/** `count` recording players on a fresh publication of `name`. */
export function recordedPublication(name: string, count: number, now: number) {
  const publication = new LivePublication(name);
  const players = Array.from({ length: count }, () => recordingPlayer(name));
  for (const p of players) publication.subscribe(p.player, now);
  return { publication, players };
}

/** What a client player received so far (`watch`), as `Recorded`: statuses from its events, payloads hex. */
export function watch(player: Player): Recorded {
  const got: Recorded = { statuses: [], audio: [], video: [], data: [] };
  player.on('status', (info: { code?: unknown }) => got.statuses.push(String(info?.code)));
  void (async () => {
    for await (const m of player) got[m.type].push(m.body.toString('hex'));
  })();
  return got;
}

/** Sends `messages` on a client publisher, waiting `frameIntervalMs` after each video frame. */
export async function publishStream(
  publisher: Publisher,
  messages: readonly SyntheticMessage[],
  frameIntervalMs: number,
): Promise<void> {
  for (const m of messages) {
    if (m.type === TCMessageType.video) publisher.video(m.timestamp, m.payload);
    else if (m.type === TCMessageType.audio) publisher.audio(m.timestamp, m.payload);
    else publisher.write({ type: FlvTagType.data, timestamp: m.timestamp, body: m.payload });
    if (m.type === TCMessageType.video && frameIntervalMs > 0)
      await new Promise((r) => setTimeout(r, frameIntervalMs));
  }
}
