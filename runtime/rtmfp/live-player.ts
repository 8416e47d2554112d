import type { AmfObject } from './amf-value.ts';
import { type MediaKind, sampleAccessMessage } from './flv.ts';
import type { MessageLifetime } from './message-lifetime.ts';
import { encodeOnStatus, encodeUserControl, errorInfo, statusInfo, UserControlEvent } from './tc-message.ts';

/** Video message lifetime: a frame not sent within it is abandoned, never retransmitted (RTMFP-NOTES §8.1, tcserver). */
export const VIDEO_LIFETIME_MS = 2_000;
/** Audio message lifetime (tcserver's default). */
export const AUDIO_LIFETIME_MS = 2_200;
/** The lifetimes as written with each frame: one object each, not one per frame and player. */
export const VIDEO_LIFETIME: MessageLifetime = Object.freeze({ lifetimeMs: VIDEO_LIFETIME_MS });
export const AUDIO_LIFETIME: MessageLifetime = Object.freeze({ lifetimeMs: AUDIO_LIFETIME_MS });
/**
 * A player whose oldest unsent message is older than this many lifetimes loses new ordinary
 * frames until it catches up (tcserver): its queue stays bounded and nobody else waits for it.
 */
const SLOW_PLAYER_LIFETIMES = 2;

/** What the fan-out needs of a send flow: RFC 7016 §3.6.2.3 partial reliability. */
export interface MediaFlow {
  /** Queues a message; with `lifetimeMs`, what is unsent after it is abandoned. */
  write(message: Buffer, options?: { lifetimeMs?: number }): void;
  /** Abandons every unsent message that has a lifetime (the previous GOP when a keyframe starts). */
  expireAll(): void;
  /** Age in ms of the oldest message not yet fully sent; 0 when nothing waits. */
  unsentAge(now: number): number;
}

/**
 * Where one player's stream goes (RTMFP-NOTES §5.1, §8.2): User Control on its NetConnection
 * (stream 0), statuses and data on the stream's data flow, audio and video each on a flow of
 * their own, as tcserver does, so a late video frame never holds audio back.
 */
export interface PlayerOutput {
  control(message: Buffer): void;
  data: MediaFlow;
  audio: MediaFlow;
  video: MediaFlow;
  /** A Flow Sync barrier on each of the stream's flows (RFC 7425 §5.2), a new syncID each time. */
  sync(): void;
}

/** Why a player lost a message, counted per player (`dropped`). */
export type PlayerDrop = 'slow-audio' | 'slow-video';

/**
 * One NetStream playing a live publication: the play sequence, the client's
 * receiveAudio/receiveVideo/pause choices, and what it loses when it is slow. Messages arrive
 * encoded once for every player (LivePublication); here they are only written to this
 * player's flows.
 */
export class LivePlayer {
  readonly streamId: number;
  /** The name the client asked to play, as it asked (statuses carry it as `detail`). */
  readonly name: string;
  receiveAudio = true;
  receiveVideo = true;
  paused = false;
  /** Video waits for a keyframe: at the start, after a pause, and after a dropped frame. */
  private waitKeyframe = true;
  /** Messages this player lost for being slow, by reason. */
  readonly dropped: Record<PlayerDrop, number> = { 'slow-audio': 0, 'slow-video': 0 };
  private readonly out: PlayerOutput;

  constructor(streamId: number, name: string, out: PlayerOutput) {
    this.streamId = streamId;
    this.name = name;
    this.out = out;
  }

  /**
   * The start of the play sequence (tcserver, RTMFP-NOTES §8.2): StreamBegin on stream 0
   * ("apparently this is necessary"), Play.Reset, Play.Start, `|RtmpSampleAccess`.
   */
  begin(): void {
    this.out.control(encodeUserControl(UserControlEvent.streamBegin, this.streamId));
    this.status('NetStream.Play.Reset', `Playing and resetting ${this.name}.`);
    this.status('NetStream.Play.Start', `Started playing ${this.name}.`);
    this.out.data.write(sampleAccessMessage());
  }

  /** A publisher is live (now, or already when the player came). */
  publishNotify(extra: AmfObject = {}): void {
    this.status('NetStream.Play.PublishNotify', `${this.name} is now published.`, extra);
  }

  /** The publisher left; the player stays subscribed and waits for the next one. */
  unpublishNotify(): void {
    this.waitKeyframe = true;
    this.synced('NetStream.Play.UnpublishNotify', `${this.name} is now unpublished.`);
  }

  /** The client stopped playing (closeStream, play of another name). */
  stop(): void {
    this.synced('NetStream.Play.Stop', `Stopped playing ${this.name}.`);
  }

  /** `pause(true|false)`: no media while paused; video restarts on a keyframe. */
  pause(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    this.waitKeyframe = true;
    this.status(
      paused ? 'NetStream.Pause.Notify' : 'NetStream.Unpause.Notify',
      `${paused ? 'Paused' : 'Unpaused'} ${this.name}.`,
    );
  }

  /** `receiveVideo(false|true)`: turning video back on waits for a keyframe. */
  setReceiveVideo(on: boolean): void {
    if (on && !this.receiveVideo) this.waitKeyframe = true;
    this.receiveVideo = on;
  }

  /**
   * A status between two Flow Sync barriers, as tcserver writes UnpublishNotify (RTMFP-NOTES
   * §8.2): audio, video and data ride separate flows, so without them the client may see the
   * status before the last frames (and a relay would stop its copy without them), or the next
   * publication's frames before it.
   */
  private synced(code: string, description: string): void {
    this.out.sync();
    this.status(code, description);
    this.out.sync();
  }

  status(code: string, description: string, extra: AmfObject = {}): void {
    this.out.data.write(encodeOnStatus(statusInfo(code, description, { detail: this.name, ...extra })));
  }

  /** A failure status (`level: error`). */
  error(code: string, description: string, extra: AmfObject = {}): void {
    this.out.data.write(encodeOnStatus(errorInfo(code, description, { detail: this.name, ...extra })));
  }

  /**
   * One message of the publication, already encoded. Configurations and data are never
   * dropped; a keyframe abandons what is left of the previous GOP (tcserver's
   * expirePreviousGop); ordinary frames are dropped while this player is more than
   * SLOW_PLAYER_LIFETIMES behind.
   */
  deliver(kind: MediaKind, message: Buffer, now: number): void {
    switch (kind) {
      case 'data':
        this.out.data.write(message);
        return;
      case 'audio-config':
        if (this.receiveAudio) this.out.audio.write(message);
        return;
      case 'video-config':
      case 'video-end':
        if (this.receiveVideo) this.out.video.write(message);
        return;
      case 'audio':
        if (!this.receiveAudio || this.paused) return;
        if (this.out.audio.unsentAge(now) > SLOW_PLAYER_LIFETIMES * AUDIO_LIFETIME_MS) {
          this.dropped['slow-audio']++;
          return;
        }
        this.out.audio.write(message, AUDIO_LIFETIME);
        return;
      case 'keyframe':
        if (!this.receiveVideo || this.paused) return;
        this.out.video.expireAll();
        this.waitKeyframe = false;
        this.out.video.write(message, VIDEO_LIFETIME);
        return;
      case 'frame':
        if (!this.receiveVideo || this.paused || this.waitKeyframe) return;
        if (this.out.video.unsentAge(now) > SLOW_PLAYER_LIFETIMES * VIDEO_LIFETIME_MS) {
          // The rest of this GOP cannot be decoded without it: wait for the next keyframe.
          this.dropped['slow-video']++;
          this.waitKeyframe = true;
          return;
        }
        this.out.video.write(message, VIDEO_LIFETIME);
        return;
    }
  }
}
