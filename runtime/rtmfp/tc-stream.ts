import type { AmfObject, AmfValue } from './amf-value.ts';
import { ProtocolError } from './errors.ts';
import { FlowSyncReceiver, type WakeAt } from './flow-sync.ts';
import { LivePlayer, type PlayerOutput } from './live-player.ts';
import type { RecvFlow } from './recv-flow.ts';
import type { Session } from './session.ts';
import { StreamFlows } from './stream-flows.ts';
import {
  type Command,
  decodeCommand,
  decodeTCMessage,
  encodeOnStatus,
  errorInfo,
  statusInfo,
  type TCMessage,
  TCMessageType,
} from './tc-message.ts';

/** `publish(name, type)` as the client sent it (RFC 7425 §5.3; RTMP `publish`). */
export interface PublishRequest {
  /** The name without its `?query`. */
  name: string;
  /** What followed `?` (tcserver reads options there), '' when none. */
  query: string;
  /** "live" (the default), "record" or "append"; the node serves all of them live. */
  type: string;
}

/** `play(name, …)` as the client sent it. */
export interface PlayRequest {
  name: string;
  query: string;
}

/**
 * What a connection's NetStreams tell the node. `publish` and `play` are answered later,
 * through the stream (`acceptPublish`/`refusePublish`, `startPlaying`/`failPlay`); `unpublished`
 * and `stopped` come once for every publish accepted and every play started, however they end
 * (closeStream, another publish or play, deleteStream, the session closing).
 */
export interface StreamEvents {
  publish(stream: NetStream, request: PublishRequest): void;
  unpublished(stream: NetStream, name: string): void;
  play(stream: NetStream, request: PlayRequest): void;
  stopped(stream: NetStream, player: LivePlayer): void;
  /** Audio, video or data from a stream that publishes (after `acceptPublish`). */
  media(stream: NetStream, message: TCMessage, now: number): void;
  /** A message refused here (`media-not-publishing`, `bad-stream-command`, `not-media`…). */
  dropped(stream: NetStream, reason: string): void;
}

export type NetStreamState =
  | 'idle'
  | 'publish-pending'
  | 'publishing'
  | 'play-pending'
  | 'playing'
  | 'deleted';

/**
 * One NetStream of a client (RFC 7425 §5.3; RTMFP-NOTES §5.1, §8): the client's flows with
 * its stream ID (a publisher such as tcpublish uses one each for audio, video and data), the
 * commands on them, and our flows back, each `TC 04 <id>` and a return flow of the client's
 * NetConnection flow (tcconn accepts no other association).
 */
export class NetStream {
  readonly id: number;
  /** Who owns it: the connection's peer ID. */
  readonly peerId: string;
  state: NetStreamState = 'idle';
  /** The name published or played (pending or live), else ''. */
  name = '';
  /** The player while playing (receiveAudio, receiveVideo and pause go to it). */
  private player: LivePlayer | undefined;
  private readonly session: Session;
  private readonly events: StreamEvents;
  private readonly control: (message: Buffer) => void;
  private readonly nextSyncId: () => number;
  /** The publish or play waiting for the node's answer. */
  private pending: PublishRequest | PlayRequest | undefined;
  /** Our flows for this stream: statuses and data, audio, video (tcserver). */
  private readonly flows: StreamFlows;
  /**
   * The client's Flow Sync barriers (RFC 7425 §5.2): a publisher that writes one before
   * closeStream (our sdk) has its last frames, on other flows, taken before the command.
   */
  private readonly sync: FlowSyncReceiver<RecvFlow>;

  constructor(options: {
    id: number;
    peerId: string;
    session: Session;
    /** The client's NetConnection flow: ours are its return flows. */
    controlFlowId: number;
    /** Writes on our NetConnection flow (stream 0), for StreamBegin. */
    control: (message: Buffer) => void;
    /** Flow Sync IDs, unique across the connection's streams (a client keeps one set of barriers per connection, as rtmfp-cpp's tcconn). */
    nextSyncId: () => number;
    events: StreamEvents;
    /** The host's timer, for the bound of the client's barriers (flow-sync.ts). */
    wakeAt?: WakeAt;
  }) {
    this.id = options.id;
    this.peerId = options.peerId;
    this.session = options.session;
    this.flows = new StreamFlows(options.session, options.id, options.controlFlowId);
    this.control = options.control;
    this.nextSyncId = options.nextSyncId;
    this.events = options.events;
    this.sync = new FlowSyncReceiver<RecvFlow>((message) => this.onMessage(message), options.wakeAt);
  }

  /** The session's clock, as fresh as the node knows it. */
  get now(): number {
    return this.session.now();
  }

  /** A flow of the client's with this stream ID. */
  accept(flow: RecvFlow): void {
    flow.onMessage = (m) => this.sync.receive(flow, m, this.session.now());
    flow.onComplete = () => this.sync.closed(flow, this.session.now());
  }

  /**
   * Confirms `request` if it is still the pending one: NetStream.Publish.Start, and media is
   * taken from now on. False when the client moved on meanwhile (closed, deleted, asked again).
   */
  acceptPublish(request: PublishRequest, extra: AmfObject = {}): boolean {
    if (this.state !== 'publish-pending' || this.pending !== request) return false;
    this.pending = undefined;
    this.state = 'publishing';
    this.status(
      statusInfo('NetStream.Publish.Start', `${this.name} is now published.`, {
        detail: this.name,
        ...extra,
      }),
    );
    return true;
  }

  /** Refuses a pending publish (`NetStream.Publish.BadName` when the name is taken). */
  refusePublish(request: PublishRequest, description: string, code = 'NetStream.Publish.BadName'): void {
    if (this.state !== 'publish-pending' || this.pending !== request) return;
    this.pending = undefined;
    this.status(errorInfo(code, description, { detail: this.name }));
    this.state = 'idle';
    this.name = '';
  }

  /**
   * Starts `request` if it is still the pending play: the player to subscribe to a publication
   * (which writes the play sequence); undefined when the client moved on meanwhile.
   */
  startPlaying(request: PlayRequest): LivePlayer | undefined {
    if (this.state !== 'play-pending' || this.pending !== request) return undefined;
    this.pending = undefined;
    this.state = 'playing';
    const out: PlayerOutput = {
      control: this.control,
      data: this.flows.get('data'),
      audio: this.flows.get('audio'),
      video: this.flows.get('video'),
      sync: () => this.flows.sync(this.nextSyncId()),
    };
    this.player = new LivePlayer(this.id, this.name, out);
    return this.player;
  }

  /** Refuses a pending play: NetStream.Play.Failed; `extra` joins the info (e.g. `ex.redirect`). */
  failPlay(request: PlayRequest, description: string, extra: AmfObject = {}): void {
    if (this.state !== 'play-pending' || this.pending !== request) return;
    this.pending = undefined;
    this.status(errorInfo('NetStream.Play.Failed', description, { detail: this.name, ...extra }));
    this.state = 'idle';
    this.name = '';
  }

  /** deleteStream or the session ended: publish and play end without a status, our flows close. */
  delete(): void {
    if (this.state === 'deleted') return;
    this.end(false);
    this.state = 'deleted';
    this.flows.close();
    this.sync.clear();
  }

  private status(info: AmfObject): void {
    this.flows.get('data').write(encodeOnStatus(info));
  }

  private onMessage(buf: Buffer): void {
    if (this.state === 'deleted') return;
    let message: TCMessage;
    try {
      message = decodeTCMessage(buf);
    } catch {
      this.events.dropped(this, 'bad-tc-message');
      return;
    }
    switch (message.type) {
      case TCMessageType.audio:
      case TCMessageType.video:
      case TCMessageType.dataAmf0:
      case TCMessageType.dataAmf3:
        if (this.state === 'publishing') this.events.media(this, message, this.session.now());
        else this.events.dropped(this, 'media-not-publishing');
        return;
      case TCMessageType.commandAmf0:
      case TCMessageType.commandAmf3:
        this.onCommand(message);
        return;
      case TCMessageType.userControl:
        return; // SetBufferLength and the like: nothing to do for a live stream
      default:
        this.events.dropped(this, 'not-media');
    }
  }

  private onCommand(message: TCMessage): void {
    let command: Command;
    try {
      command = decodeCommand(message);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.events.dropped(this, 'bad-stream-command');
      return;
    }
    const arg = command.args[0];
    switch (command.name) {
      case 'publish':
        this.end(true);
        // RFC 7425 §5.3 / RTMP: an empty or missing name unpublishes. librtmfp's AMF3 name
        // (pitfall 24) is decoded by the AMF0 reader's 0x11 switch.
        if (typeof arg === 'string' && arg.length > 0) this.requestPublish(arg, command.args[1]);
        return;
      case 'play':
        this.end(true);
        if (typeof arg === 'string' && arg.length > 0) this.requestPlay(arg);
        return;
      case 'closeStream':
        this.end(true);
        return;
      case 'receiveAudio':
        if (this.player && typeof arg === 'boolean') this.player.receiveAudio = arg;
        return;
      case 'receiveVideo':
        if (this.player && typeof arg === 'boolean') this.player.setReceiveVideo(arg);
        return;
      case 'pause':
        if (this.player && typeof arg === 'boolean') this.player.pause(arg);
        return;
      default:
        // FCPublish, seek and the like have no meaning for a live stream here; nothing is answered.
        this.events.dropped(this, 'unknown-stream-command');
    }
  }

  private requestPublish(requested: string, type: AmfValue | undefined): void {
    const { name, query } = splitName(requested);
    const request = { name, query, type: typeof type === 'string' && type ? type : 'live' };
    this.state = 'publish-pending';
    this.name = name;
    this.pending = request;
    this.events.publish(this, request);
  }

  private requestPlay(requested: string): void {
    const { name, query } = splitName(requested);
    const request = { name, query };
    this.state = 'play-pending';
    this.name = name;
    this.pending = request;
    this.events.play(this, request);
  }

  /** Ends what the stream does; with `notify`, the client hears Unpublish.Success / Play.Stop. */
  private end(notify: boolean): void {
    const { state, name, player } = this;
    this.state = 'idle';
    this.name = '';
    this.player = undefined;
    this.pending = undefined;
    if (state === 'publishing') {
      if (notify)
        this.status(
          statusInfo('NetStream.Unpublish.Success', `${name} is now unpublished.`, { detail: name }),
        );
      this.events.unpublished(this, name);
    } else if (state === 'playing' && player) {
      if (notify) player.stop();
      this.events.stopped(this, player);
    }
  }
}

/** `name?query` → its parts (tcserver stream names carry options after `?`). */
export function splitName(requested: string): { name: string; query: string } {
  const at = requested.indexOf('?');
  return at < 0
    ? { name: requested, query: '' }
    : { name: requested.slice(0, at), query: requested.slice(at + 1) };
}
