import type { AmfObject, AmfValue } from './amf-value.ts';
import { ProtocolError } from './errors.ts';
import type { WakeAt } from './flow-sync.ts';
import type { RecvFlow } from './recv-flow.ts';
import type { SendFlow } from './send-flow.ts';
import type { Session } from './session.ts';
import { TCClientStream, type TCClientStreamHandler } from './tc-client-stream.ts';
import {
  type Command,
  decodeCommand,
  decodeTCMetadata,
  encodeCommand,
  encodeTCMetadata,
  MAX_STREAM_ID,
} from './tc-message.ts';

/** What the application side of a client connection hears. */
export interface TCClientHandler {
  /** The connect `_result` (ok) or `_error` info object. */
  connected(ok: boolean, info: AmfValue): void;
  /** A server-to-client call; answer through `reply` when the server expects one. */
  call(name: string, args: AmfValue[], reply: ((ok: boolean, value: AmfValue) => void) | undefined): void;
  /** An `onStatus` on the NetConnection (e.g. NetConnection.Connect.Closed). */
  status(info: AmfValue): void;
}

export interface ConnectOptions {
  tcUrl: string;
  app: string;
  args: AmfValue[];
  /** Extra command object fields (flashVer, …). */
  commandObject?: AmfObject;
}

/**
 * The client side of a NetConnection over one RTMFP session (RFC 7425 §5): opens the control
 * flow, sends `connect`, matches `_result`/`_error` to calls, and answers the server's calls.
 */
export class TCClientConnection {
  readonly session: Session;
  private readonly handler: TCClientHandler;
  private control: SendFlow | undefined;
  /** The server's control flow (its return flow to ours): NetGroup flows are associated to it. */
  serverControlFlowId: number | undefined;
  private nextTransactionId = 1;
  /** Flow Sync IDs for all of this connection's streams: a server keeps one set of barriers per connection (tcserver). */
  private nextSyncId = 0;
  private readonly pending = new Map<number, (ok: boolean, value: AmfValue) => void>();
  private connected = false;
  /** NetStreams that createStream gave us, by stream ID: the server's flows for them are accepted. */
  private readonly streams = new Map<number, TCClientStream>();

  private readonly wakeAt: WakeAt | undefined;

  /** `wakeAt`: the host's timer for its NetStreams' Flow Sync bounds (flow-sync.ts); absent: checked as messages arrive. */
  constructor(session: Session, handler: TCClientHandler, wakeAt?: WakeAt) {
    this.session = session;
    this.handler = handler;
    this.wakeAt = wakeAt;
  }

  /** Opens the control flow and sends `connect` (transaction 1). */
  connect(o: ConnectOptions): void {
    this.control = this.session.openFlow(encodeTCMetadata({ streamId: 0 }));
    this.send({
      name: 'connect',
      transactionId: 1,
      commandObject: { app: o.app, tcUrl: o.tcUrl, objectEncoding: 0, ...o.commandObject },
      args: o.args,
    });
  }

  /** NetConnection.call; `done` gets `_result` (ok) or `_error`'s info. */
  call(name: string, args: AmfValue[], done?: (ok: boolean, value: AmfValue) => void): void {
    const transactionId = done ? ++this.nextTransactionId : 0;
    if (done) this.pending.set(transactionId, done);
    this.send({ name, transactionId, commandObject: null, args });
  }

  /**
   * `createStream` (RFC 7425 §5.3.2): `done` gets the new stream, or the server's `_error` info
   * (or a reply that is not a stream ID 1 … 2^32−1). The stream's flows associate to the server's
   * NetConnection flow, so this needs it open (RTMFP-NOTES §5.1).
   */
  createStream(
    handler: TCClientStreamHandler,
    done: (stream: TCClientStream | undefined, info: AmfValue) => void,
  ): void {
    const main = this.serverControlFlowId;
    if (main === undefined) {
      done(undefined, { level: 'error', code: 'NetConnection.Call.Failed', description: 'not connected' });
      return;
    }
    this.call('createStream', [], (ok, value) => {
      if (!ok) {
        done(undefined, value);
        return;
      }
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_STREAM_ID) {
        const description = `createStream answered ${JSON.stringify(value)}, not a stream ID`;
        done(undefined, { level: 'error', code: 'NetConnection.Call.Failed', description });
        return;
      }
      const nextSyncId = () => {
        const id = this.nextSyncId;
        this.nextSyncId = (id + 1) >>> 0;
        return id;
      };
      const stream = new TCClientStream(this.session, main, value, handler, nextSyncId, this.wakeAt);
      this.streams.set(value, stream);
      done(stream, value);
    });
  }

  /** `deleteStream` (no reply expected): the stream's flows close and the server's are no longer accepted. */
  deleteStream(stream: TCClientStream): void {
    if (this.streams.get(stream.streamId) !== stream) return;
    this.streams.delete(stream.streamId);
    // deleteStream rides the NetConnection flow, not ordered against the stream's (RFC 7016
    // §3.6): sent once they have delivered everything, a publisher's last frames are not cut.
    stream.close(() => {
      if (this.session.state === 'open') this.call('deleteStream', [stream.streamId]);
    });
  }

  /**
   * Session hook: the server opened a flow. Only return flows of our control flow are accepted,
   * and stream flows only for streams createStream gave us, as tcconn's acceptFlow.
   */
  onFlow(flow: RecvFlow): void {
    const tc = decodeTCMetadata(flow.metadata);
    const stream = tc && tc.streamId !== 0 ? this.streams.get(tc.streamId) : undefined;
    if (!tc || !this.control || flow.associatedFlowId !== this.control.id || (tc.streamId !== 0 && !stream)) {
      flow.reject(0);
      return;
    }
    if (stream) {
      stream.onFlow(flow);
      return;
    }
    this.serverControlFlowId ??= flow.id;
    flow.onMessage = (m) => this.onMessage(m);
  }

  /** The connection is over: every call still waiting for an answer fails, every stream ends. */
  end(info: AmfValue): void {
    for (const done of this.pending.values()) done(false, info);
    this.pending.clear();
    for (const stream of this.streams.values()) stream.close();
    this.streams.clear();
  }

  private send(command: Command): void {
    this.control?.write(encodeCommand(command));
  }

  private onMessage(message: Buffer): void {
    let command: Command | undefined;
    try {
      command = decodeCommand(message);
    } catch (e) {
      if (e instanceof ProtocolError) return;
      throw e;
    }
    if (!command) return;
    const { name, transactionId, args } = command;
    if ((name === '_result' || name === '_error') && transactionId === 1 && !this.connected) {
      this.connected = true;
      this.handler.connected(name === '_result', args[0] ?? null);
      return;
    }
    if (name === '_result' || name === '_error') {
      const done = this.pending.get(transactionId);
      if (!done) return;
      this.pending.delete(transactionId);
      done(name === '_result', args[0] ?? null);
      return;
    }
    if (name === 'onStatus') {
      this.handler.status(args[0] ?? null);
      return;
    }
    const reply =
      transactionId === 0
        ? undefined
        : (ok: boolean, value: AmfValue) =>
            this.send({ name: ok ? '_result' : '_error', transactionId, commandObject: null, args: [value] });
    this.handler.call(name, args, reply);
  }
}
