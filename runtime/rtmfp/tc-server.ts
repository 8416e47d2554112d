import type { Address } from './address.ts';
import type { AmfObject, AmfValue } from './amf-value.ts';
import { ProtocolError } from './errors.ts';
import type { WakeAt } from './flow-sync.ts';
import type { RecvFlow } from './recv-flow.ts';
import { parsePeerInfo } from './rendezvous.ts';
import type { SendFlow } from './send-flow.ts';
import type { Session } from './session.ts';
import { DEFAULT_GROUPS_PER_CLIENT, GroupFlows, type GroupMembership } from './tc-group.ts';
import {
  type Command,
  decodeCommand,
  decodeTCMetadata,
  encodeCommand,
  encodeTCMetadata,
  errorInfo,
  isGroupMetadata,
  MAX_STREAM_ID,
  statusInfo,
} from './tc-message.ts';
import { NetStream, type PlayRequest, type PublishRequest, type StreamEvents } from './tc-stream.ts';

/** What the client asked for in its `connect` command (RFC 7425 §5.3.1). */
export interface ConnectRequest {
  /** First path segment of tcUrl or the `app` field. */
  app: string;
  tcUrl: string;
  /** 0 (AMF0) or 3 (AMF3); echoed in the reply. */
  objectEncoding: number;
  commandObject: AmfObject;
  args: AmfValue[];
}

/** The node's side of the TC layer: decides connects and answers calls. */
export interface TCServerHandler {
  /** Answer with `conn.accept(info)` or `conn.reject(description)`, now or later. */
  connect(conn: TCServerConnection, request: ConnectRequest): void;
  /** NetConnection.call; `reply` is undefined when the client expects no answer (transaction 0). */
  call(conn: TCServerConnection, name: string, args: AmfValue[], reply: CallReply | undefined): void;
  /** The connection is over (session closed, timed out, or rejected); after its `groupLeave`s. */
  closed(conn: TCServerConnection): void;
  /**
   * A NetGroup join (RTMFP-NOTES §7): send members with `membership.sendMember`, refuse with
   * `membership.refuse()`. Without this hook NetGroup flows are refused, as before.
   */
  groupJoin?(conn: TCServerConnection, membership: GroupMembership): void;
  /**
   * Once for every membership `groupJoin` was given, however it ended: the client closed its
   * flow, the session ended, `refuse()`, or a bad message on the flow.
   */
  groupLeave?(conn: TCServerConnection, membership: GroupMembership): void;
  /** A join refused here, before `groupJoin`: malformed ('bad-group-join') or over `groups-per-client`. */
  groupJoinFailed?(conn: TCServerConnection, error: ProtocolError): void;
}

export interface TCServerOptions {
  /** NetGroups one client may be in at once; a join past it refuses that flow. */
  groupsPerClient?: number;
  /** The client reported its LAN addresses (`setPeerInfo`, RFC 7425 §5.3): `peerAddresses` changed. */
  peerInfo?(conn: TCServerConnection): void;
  /** Publish, play and media of the connection's NetStreams; absent: publish and play are refused. */
  streams?: StreamEvents;
  /** The host's timer for its NetStreams' Flow Sync bounds (flow-sync.ts WakeAt); absent: checked as messages arrive. */
  wakeAt?: WakeAt;
}

export interface CallReply {
  result(value: AmfValue): void;
  error(description: string, extra?: AmfObject): void;
}

export type TCState = 'connecting' | 'connected' | 'closed';

/** NetStreams one connection may hold; `createStream` past it is refused. */
const MAX_STREAMS = 1024;

/**
 * The NetConnection of one client over one RTMFP session (RFC 7425 §5): the client's
 * control flow (TC metadata, stream 0), our return flow to it, and the commands on it.
 * Stream flows (stream ID > 0) are accepted and held for the stream layer.
 */
export class TCServerConnection {
  readonly session: Session;
  /** Hex SHA-256 of the client's certificate (Flash `farID`). */
  readonly peerId: string;
  state: TCState = 'connecting';
  request: ConnectRequest | undefined;
  /** LAN addresses the client reported with setPeerInfo (for P2P introduction). */
  peerAddresses: Address[] = [];
  /** Set once the client's control flow arrived: the return flow our replies go on. */
  control: SendFlow | undefined;
  private readonly handler: TCServerHandler;
  private readonly streams = new Map<number, NetStream>();
  private readonly streamEvents: StreamEvents;
  /** The client's NetConnection flow: every flow of ours is a return flow of it (RTMFP-NOTES §5.1). */
  private controlFlowId = 0;
  private nextStreamId = 1;
  /** Flow Sync IDs for all of this connection's streams (RFC 7425 §5.2). */
  private nextSyncId = 0;
  private nextTransactionId = 1;
  private readonly pendingCalls = new Map<number, (ok: boolean, value: AmfValue) => void>();
  private readonly netGroups: GroupFlows;
  private readonly onPeerInfo: ((conn: TCServerConnection) => void) | undefined;
  private readonly wakeAt: WakeAt | undefined;

  constructor(session: Session, peerId: string, handler: TCServerHandler, options: TCServerOptions = {}) {
    this.session = session;
    this.peerId = peerId;
    this.handler = handler;
    this.onPeerInfo = options.peerInfo;
    this.streamEvents = options.streams ?? NO_STREAMS;
    this.wakeAt = options.wakeAt;
    this.netGroups = new GroupFlows(session, options.groupsPerClient ?? DEFAULT_GROUPS_PER_CLIENT, {
      join: (m) => handler.groupJoin?.(this, m),
      leave: (m) => handler.groupLeave?.(this, m),
      failed: (e) => handler.groupJoinFailed?.(this, e),
    });
  }

  /** NetStreams this connection holds: created by `createStream`, not yet deleted. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** The NetGroups this client is in now. */
  get groups(): GroupMembership[] {
    return this.netGroups.memberships;
  }

  /** Session hook: the client opened a flow. */
  onFlow(flow: RecvFlow): void {
    if (isGroupMetadata(flow.metadata) && this.handler.groupJoin && this.state === 'connected') {
      this.netGroups.accept(flow);
      return;
    }
    const tc = decodeTCMetadata(flow.metadata);
    if (!tc) {
      flow.reject(0);
      return;
    }
    if (tc.streamId === 0 && !this.control) {
      // RFC 7425 §5.1: our control flow is the return flow of the client's (tcconn requires it).
      this.controlFlowId = flow.id;
      this.control = this.session.openFlow(encodeTCMetadata({ streamId: 0 }), flow.id);
      flow.onMessage = (m) => this.onControlMessage(m);
      flow.onComplete = () => this.close();
      return;
    }
    const stream = this.streams.get(tc.streamId);
    if (stream && this.state === 'connected') {
      stream.accept(flow);
      return;
    }
    flow.reject(0);
  }

  /** Accept the pending connect (RFC 7425 §5.3.1); `info` fields join the `_result` info object. */
  accept(info: AmfObject = {}): void {
    if (this.state !== 'connecting' || !this.request) return;
    this.state = 'connected';
    this.send({
      name: '_result',
      transactionId: 1,
      commandObject: null,
      args: [
        statusInfo('NetConnection.Connect.Success', 'Connection succeeded.', {
          objectEncoding: this.request.objectEncoding,
          ...info,
        }),
      ],
    });
  }

  /** Refuse the pending connect with NetConnection.Connect.Rejected, then close. */
  reject(description: string, info: AmfObject = {}): void {
    if (this.state !== 'connecting') return;
    this.send({
      name: '_error',
      transactionId: 1,
      commandObject: null,
      args: [errorInfo('NetConnection.Connect.Rejected', description, info)],
    });
    this.close();
  }

  /** Server-to-client call; `done` gets the client's `_result` or `_error` value. */
  call(name: string, args: AmfValue[], done?: (ok: boolean, value: AmfValue) => void): void {
    if (this.state !== 'connected') {
      done?.(false, errorInfo('NetConnection.Call.Failed', 'not connected'));
      return;
    }
    const transactionId = done ? ++this.nextTransactionId : 0;
    if (done) this.pendingCalls.set(transactionId, done);
    this.send({ name, transactionId, commandObject: null, args });
  }

  /**
   * Ends the connection: tells the client NetConnection.Connect.Closed (`info` fields join the
   * info object, e.g. `redirectInfo`), then closes the session.
   */
  close(description = 'Connection closed.', info: AmfObject = {}): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    if (wasConnected) {
      this.send({
        name: 'onStatus',
        transactionId: 0,
        commandObject: null,
        args: [statusInfo('NetConnection.Connect.Closed', description, info)],
      });
    }
    this.failPendingCalls();
    this.netGroups.leaveAll();
    this.deleteStreams();
    this.session.close();
    this.handler.closed(this);
  }

  /** The session ended under us (peer closed, timeout). */
  onSessionClosed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.failPendingCalls();
    this.netGroups.leaveAll();
    this.deleteStreams();
    this.handler.closed(this);
  }

  private deleteStreams(): void {
    for (const stream of this.streams.values()) stream.delete();
    this.streams.clear();
  }

  private failPendingCalls(): void {
    for (const done of this.pendingCalls.values())
      done(false, errorInfo('NetConnection.Call.Failed', 'connection closed'));
    this.pendingCalls.clear();
  }

  private send(command: Command): void {
    this.control?.write(encodeCommand(command));
  }

  private onControlMessage(message: Buffer): void {
    if (this.state === 'closed') return;
    let command: Command | undefined;
    try {
      command = decodeCommand(message);
    } catch (e) {
      if (e instanceof ProtocolError) return; // not a command (e.g. user control), or malformed
      throw e;
    }
    if (!command) return;
    if (this.state === 'connecting') {
      if (command.name === 'connect' && !this.request) this.onConnect(command);
      else if (command.name !== 'connect') this.close(); // rtmfp-cpp: commands before connect end the client
      return;
    }
    this.onCommand(command);
  }

  private onConnect(command: Command): void {
    const commandObject = isObject(command.commandObject) ? command.commandObject : {};
    const tcUrl = typeof commandObject.tcUrl === 'string' ? commandObject.tcUrl : '';
    const app = typeof commandObject.app === 'string' ? commandObject.app : appOfUrl(tcUrl);
    const objectEncoding = commandObject.objectEncoding === 3 ? 3 : 0;
    this.request = { app, tcUrl, objectEncoding, commandObject, args: command.args };
    this.handler.connect(this, this.request);
  }

  private onCommand(command: Command): void {
    const { name, transactionId, args } = command;
    switch (name) {
      case '_result':
      case '_error': {
        const done = this.pendingCalls.get(transactionId);
        if (!done) return;
        this.pendingCalls.delete(transactionId);
        done(name === '_result', args[0] ?? null);
        return;
      }
      case 'setPeerInfo':
        this.peerAddresses = parsePeerInfo(args);
        this.onPeerInfo?.(this);
        return;
      case 'createStream': {
        const id = this.allocateStream();
        if (id === undefined) this.sendCallError(transactionId, 'too many streams', name);
        else this.send({ name: '_result', transactionId, commandObject: null, args: [id] });
        return;
      }
      case 'deleteStream': {
        const id = args[0];
        const stream = typeof id === 'number' ? this.streams.get(id) : undefined;
        stream?.delete();
        if (stream) this.streams.delete(stream.id);
        return;
      }
      default:
        this.handler.call(
          this,
          name,
          args,
          transactionId === 0 ? undefined : this.replyTo(transactionId, name),
        );
    }
  }

  private replyTo(transactionId: number, name: string): CallReply {
    let answered = false;
    return {
      result: (value) => {
        if (answered || this.state !== 'connected') return;
        // Encoded first: a value AMF cannot carry throws here and the caller may still answer `error`.
        this.send({ name: '_result', transactionId, commandObject: null, args: [value] });
        answered = true;
      },
      error: (description, extra) => {
        if (answered || this.state !== 'connected') return;
        answered = true;
        this.sendCallError(transactionId, description, name, extra);
      },
    };
  }

  private sendCallError(
    transactionId: number,
    description: string,
    method: string,
    extra: AmfObject = {},
  ): void {
    this.send({
      name: '_error',
      transactionId,
      commandObject: null,
      args: [errorInfo('NetConnection.Call.Failed', description, { detail: method, ...extra })],
    });
  }

  private allocateStream(): number | undefined {
    if (this.streams.size >= MAX_STREAMS) return undefined;
    while (this.streams.has(this.nextStreamId)) this.nextStreamId = (this.nextStreamId % MAX_STREAM_ID) + 1;
    const id = this.nextStreamId;
    this.streams.set(
      id,
      new NetStream({
        id,
        peerId: this.peerId,
        session: this.session,
        controlFlowId: this.controlFlowId,
        control: (message) => this.control?.write(message),
        nextSyncId: () => {
          const id = this.nextSyncId;
          this.nextSyncId = (id + 1) >>> 0;
          return id;
        },
        events: this.streamEvents,
        wakeAt: this.wakeAt,
      }),
    );
    this.nextStreamId = (id % MAX_STREAM_ID) + 1;
    return id;
  }
}

function isObject(v: AmfValue): v is AmfObject {
  return (
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
  );
}

/**
 * Info fields that send a client to `target` (`host:port`, or a whole `rtmfp://` URL): the
 * FMS/Wowza convention players follow (RTMFP-NOTES §9), `ex.code` 302 and `ex.redirect` = the
 * same URL (app, path, query) on the new host.
 */
export function redirectInfo(tcUrl: string, target: string): AmfObject {
  const redirect = /^rtmfp:\/\//i.test(target)
    ? target
    : tcUrl.replace(/^[a-z]+:\/\/[^/?#]*/i, `rtmfp://${target}`);
  return { ex: { code: 302, redirect } };
}

/** `rtmfp://host:port/app/inst?x` → `app`. */
export function appOfUrl(url: string): string {
  const m = /^[a-z]+:\/\/[^/]*\/([^/?#]*)/i.exec(url);
  return m ? decodeURIComponent(m[1]) : '';
}

/** A node without streams: every publish and play is refused, media dropped. */
export const NO_STREAMS: StreamEvents = {
  publish: (stream: NetStream, request: PublishRequest) =>
    stream.refusePublish(request, 'publishing is not available here', 'NetStream.Publish.Failed'),
  unpublished: () => {},
  play: (stream: NetStream, request: PlayRequest) =>
    stream.failPlay(request, 'playing is not available here'),
  stopped: () => {},
  media: () => {},
  dropped: () => {},
};
