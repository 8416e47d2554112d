import type { AmfValue } from './amf-value.ts';
import { ProtocolError } from './errors.ts';
import { FlowSyncReceiver, type WakeAt } from './flow-sync.ts';
import { classifyMedia, isNeverDropped } from './flv.ts';
import { AUDIO_LIFETIME, VIDEO_LIFETIME } from './live-player.ts';
import { decodeMediaMessage, type MediaMessage } from './media-message.ts';
import type { RecvFlow } from './recv-flow.ts';
import type { MessageLifetime } from './send-flow.ts';
import type { Session } from './session.ts';
import { type StreamFlowKind, StreamFlows } from './stream-flows.ts';
import {
  type Command,
  decodeCommand,
  decodeTCMessage,
  encodeCommand,
  encodeData,
  encodeTCMessage,
  type TCMessage,
  TCMessageType,
} from './tc-message.ts';

/** What the user side of one NetStream hears. */
export interface TCClientStreamHandler {
  /** An `onStatus` for this stream (NetStream.Publish.Start, NetStream.Play.PublishNotify, …). */
  status(info: AmfValue): void;
  media(message: MediaMessage): void;
  /** The server refused one of our flows of this stream (RFC 7016 §2.3.16). */
  refused(code: number): void;
}

/**
 * The client side of one NetStream (RFC 7425 §5; RTMFP-NOTES §5, §8). Our flows are return flows
 * to the server's NetConnection flow with metadata `TC 04 <streamId>`, one each for audio, video
 * and data+commands, opened when first written (as rtmfp-cpp's NetStreamTransport: a lost video
 * fragment never holds up audio). The server's flows for this stream (associated to our
 * NetConnection flow) carry its onStatus replies and, to a player, the media, put in order
 * across flows where the server wrote Flow Sync (RFC 7425 §5.2).
 */
export class TCClientStream {
  readonly streamId: number;
  /** Messages from the server that did not decode: dropped, counted here. */
  malformed = 0;
  private readonly session: Session;
  private readonly handler: TCClientStreamHandler;
  private readonly flows: StreamFlows;
  private readonly recvFlows = new Set<RecvFlow>();
  private readonly nextSyncId: () => number;
  /** The server's Flow Sync barriers (e.g. around UnpublishNotify) order its flows for us. */
  private readonly sync: FlowSyncReceiver<RecvFlow>;

  constructor(
    session: Session,
    serverControlFlowId: number,
    streamId: number,
    handler: TCClientStreamHandler,
    nextSyncId: () => number,
    /** The host's timer, for the bound of the server's barriers (flow-sync.ts). */
    wakeAt?: WakeAt,
  ) {
    this.session = session;
    this.nextSyncId = nextSyncId;
    this.streamId = streamId;
    this.handler = handler;
    this.sync = new FlowSyncReceiver<RecvFlow>((message) => this.onMessage(message), wakeAt);
    this.flows = new StreamFlows(session, streamId, serverControlFlowId, (flow) => {
      flow.onException = (code) => this.handler.refused(code);
    });
  }

  /** `publish(name, type)`: the server answers NetStream.Publish.Start or an error status. */
  publish(name: string, type = 'live'): void {
    this.command('publish', [name, type]);
  }

  /** `play(name)`: the server answers NetStream.Play.Reset/Start (or Play.Failed), then media. */
  play(name: string): void {
    this.command('play', [name]);
  }

  receiveAudio(on: boolean): void {
    this.command('receiveAudio', [on]);
  }

  receiveVideo(on: boolean): void {
    this.command('receiveVideo', [on]);
  }

  /**
   * Stops publishing or playing (the stream stays, for deleteStream). Behind a Flow Sync
   * barrier on each of our flows (RFC 7425 §5.2), so a server that honours it (ours, tcserver)
   * takes the last frames on the audio and video flows before closeStream on the data flow.
   */
  closeStream(): void {
    this.flows.sync(this.nextSyncId());
    this.command('closeStream', []);
  }

  /**
   * An audio message (FLV audio tag body). With `lifetimes`, as tcpublish sends it
   * (RTMFP-NOTES §8.1): abandoned if not delivered within 2.2 s, except codec configuration.
   */
  audio(timestamp: number, body: Buffer, lifetimes = true): void {
    const keep = isNeverDropped(classifyMedia(TCMessageType.audio, body));
    const lifetime = lifetimes && !keep ? AUDIO_LIFETIME : undefined;
    this.writeMessage('audio', encodeTCMessage(TCMessageType.audio, timestamp, body), lifetime);
  }

  /**
   * A video message (FLV video tag body). With `lifetimes`, as tcpublish sends it: abandoned if
   * not delivered within 2 s, except codec configuration and end of sequence; a keyframe starts
   * a new GOP, so what is left of the previous one is abandoned at once.
   */
  video(timestamp: number, body: Buffer, lifetimes = true): void {
    const kind = classifyMedia(TCMessageType.video, body);
    if (lifetimes && kind === 'keyframe') this.flows.peek('video')?.expireAll();
    // Sequence headers and ends are "special" to tcpublish: sent reliably (Message::isVideoSequenceSpecial).
    const lifetime = lifetimes && !isNeverDropped(kind) ? VIDEO_LIFETIME : undefined;
    this.writeMessage('video', encodeTCMessage(TCMessageType.video, timestamp, body), lifetime);
  }

  /** A data message in AMF0 (type 18), e.g. `['@setDataFrame', 'onMetaData', {…}]`. */
  data(timestamp: number, values: AmfValue[]): void {
    this.writeMessage('data', encodeData(values, { timestamp }));
  }

  /** A data message whose AMF0 values are already encoded (an FLV script tag's body). */
  rawData(timestamp: number, body: Uint8Array): void {
    this.writeMessage('data', encodeTCMessage(TCMessageType.dataAmf0, timestamp, body));
  }

  /**
   * A whole TC message (`type · ts32 · body`) encoded once by the caller, e.g. one a relay
   * forwards: it goes on the flow of its type, reliably or with `lifetime`.
   */
  writeMessage(kind: StreamFlowKind, message: Buffer, lifetime?: MessageLifetime): void {
    if (this.session.state !== 'open') return;
    this.flows.get(kind).write(message, lifetime);
  }

  /** Session hook, through TCClientConnection: one of the server's flows for this stream. */
  onFlow(flow: RecvFlow): void {
    this.recvFlows.add(flow);
    flow.onMessage = (m) => this.sync.receive(flow, m, this.session.now());
    flow.onComplete = () => {
      this.recvFlows.delete(flow);
      this.sync.closed(flow, this.session.now());
    };
  }

  /**
   * The stream is deleted: our flows end, `ended` runs once all they carried was acknowledged
   * (see StreamFlows.close); the server's are no longer read.
   */
  close(ended?: () => void): void {
    this.flows.close(ended);
    for (const flow of this.recvFlows) flow.onMessage = () => {};
    this.recvFlows.clear();
    this.sync.clear();
  }

  /** Flow Sync barriers released by their bound (time, a closed flow, memory) rather than met. */
  get syncReleasedEarly(): number {
    return this.sync.releasedEarly;
  }

  private command(name: string, args: AmfValue[]): void {
    this.writeMessage('data', encodeCommand({ name, transactionId: 0, commandObject: null, args }));
  }

  private onMessage(bytes: Buffer): void {
    let message: TCMessage;
    try {
      message = decodeTCMessage(bytes);
      if (message.type === TCMessageType.commandAmf0 || message.type === TCMessageType.commandAmf3) {
        this.onCommand(decodeCommand(message));
        return;
      }
      const media = decodeMediaMessage(message);
      if (media) this.handler.media(media);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.malformed++;
    }
  }

  private onCommand(command: Command): void {
    if (command.name === 'onStatus') this.handler.status(command.args[0] ?? null);
  }
}
