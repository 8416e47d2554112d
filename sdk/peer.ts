import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { AmfValue } from '../runtime/rtmfp/amf-value.ts';
import type { RecvFlow } from '../runtime/rtmfp/recv-flow.ts';
import type { Session } from '../runtime/rtmfp/session.ts';
import { TCClientConnection } from '../runtime/rtmfp/tc-client.ts';
import { type CallReply, TCServerConnection } from '../runtime/rtmfp/tc-server.ts';
import { answerCall, type CallHandler, type CallReplyFn } from './call-handler.ts';

/** What a peer connection asks its NetConnection for: handlers set there (`nc.handle`). */
export type HandlerLookup = (name: string) => CallHandler | undefined;

/** `tcUrl` of the NetConnection one peer opens on a P2P session (peers ignore it). */
const PEER_TC_URL = 'rtmfp:';

/**
 * A direct RTMFP session to another client (RFC 7425 §4.4.4), opened by `nc.connectPeer` or
 * accepted from a peer (`nc.on('peer', …)`). Both sides can `call` the other: the opener runs a
 * NetConnection over the session (TC `connect`, then calls), the other side answers it like a
 * server, and its calls go back on the same control flow. A call is answered by the handler
 * set with `peer.handle(name)`, else by the NetConnection's (`nc.handle(name)`).
 * Events: `close` (once, when the session ends).
 */
export class PeerConnection extends EventEmitter {
  /** The other side's peer ID (hex SHA-256 of its certificate, checked in the handshake). */
  readonly peerId: string;
  /** Whether we opened it (`connectPeer`) or the peer did. */
  readonly role: 'initiator' | 'responder';
  readonly session: Session;
  private readonly handlers = new Map<string, CallHandler>();
  private readonly fallback: HandlerLookup;
  private readonly client: TCClientConnection | undefined;
  private readonly server: TCServerConnection | undefined;
  private closed = false;

  /** Opened by us: emits `connected` (ok, info) once the peer answered our NetConnection. */
  static opened(session: Session, peerId: string, fallback: HandlerLookup): PeerConnection {
    return new PeerConnection(session, peerId, 'initiator', fallback);
  }

  /** Opened by the peer: its NetConnection is accepted as soon as it asks (then `connected`). */
  static accepted(session: Session, peerId: string, fallback: HandlerLookup): PeerConnection {
    return new PeerConnection(session, peerId, 'responder', fallback);
  }

  private constructor(
    session: Session,
    peerId: string,
    role: 'initiator' | 'responder',
    fallback: HandlerLookup,
  ) {
    super();
    this.session = session;
    this.peerId = peerId;
    this.role = role;
    this.fallback = fallback;
    if (role === 'initiator') {
      this.client = new TCClientConnection(session, {
        connected: (ok, info) => this.emit('connected', ok, info),
        status: () => {},
        call: (name, args, reply) => this.answer(name, args, reply),
      });
      this.client.connect({ tcUrl: PEER_TC_URL, app: '', args: [] });
      session.flush(performance.now());
    } else {
      this.server = new TCServerConnection(session, peerId, {
        connect: (conn) => {
          conn.accept();
          this.emit('connected', true, null);
        },
        call: (_conn, name, args, reply) =>
          this.answer(
            name,
            args,
            reply && ((ok, value) => (ok ? reply.result(value) : replyError(reply, value))),
          ),
        closed: () => this.onClosed(),
      });
    }
  }

  get connected(): boolean {
    return !this.closed && this.session.state === 'open';
  }

  /** Calls `name` on the other side; resolves to its `_result`, rejects with its `_error`'s description. */
  call(name: string, ...args: AmfValue[]): Promise<AmfValue> {
    if (!this.connected)
      return Promise.reject(new Error(`peer ${this.peerId.slice(0, 8)}… is not connected`));
    return new Promise((resolve, reject) => {
      const done = (ok: boolean, value: AmfValue) =>
        ok ? resolve(value) : reject(new Error(descriptionOf(value) ?? `${name} failed`));
      if (this.client) this.client.call(name, args, done);
      else this.server!.call(name, args, done);
      this.session.flush(performance.now());
    });
  }

  /** Answers the peer's calls of `name` on this connection. */
  handle(name: string, handler: CallHandler): this {
    this.handlers.set(name, handler);
    return this;
  }

  /** Closes the session (the peer sees it end). */
  close(): void {
    if (this.session.state === 'open') this.session.close(performance.now());
    this.onClosed();
  }

  /** The NetConnection's endpoint: the peer opened a flow on this session. */
  onFlow(flow: RecvFlow): void {
    if (this.client) this.client.onFlow(flow);
    else this.server!.onFlow(flow);
  }

  /** The NetConnection's endpoint: the session ended. */
  onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.client?.end({ level: 'status', code: 'NetConnection.Connect.Closed' });
    this.server?.onSessionClosed();
    this.emit('close');
  }

  private answer(name: string, args: AmfValue[], reply: CallReplyFn): void {
    const handler = this.handlers.get(name) ?? this.fallback(name);
    void answerCall(handler, name, args, reply).finally(() => this.session.flush(performance.now()));
  }
}

function replyError(reply: CallReply, info: AmfValue): void {
  reply.error(descriptionOf(info) ?? 'call failed');
}

function descriptionOf(info: AmfValue): string | undefined {
  if (typeof info !== 'object' || info === null || !('description' in info)) return undefined;
  const d = (info as { description?: AmfValue }).description;
  return typeof d === 'string' ? d : undefined;
}
