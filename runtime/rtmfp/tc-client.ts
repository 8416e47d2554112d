import type { AmfObject, AmfValue } from './amf-value.ts';
import { ProtocolError } from './errors.ts';
import type { RecvFlow } from './recv-flow.ts';
import type { SendFlow } from './send-flow.ts';
import type { Session } from './session.ts';
import {
  type Command,
  decodeCommand,
  decodeTCMetadata,
  encodeCommand,
  encodeTCMetadata,
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
  private readonly pending = new Map<number, (ok: boolean, value: AmfValue) => void>();
  private connected = false;

  constructor(session: Session, handler: TCClientHandler) {
    this.session = session;
    this.handler = handler;
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

  /** Session hook: the server opened a flow. Only return flows of our control flow are accepted. */
  onFlow(flow: RecvFlow): void {
    const tc = decodeTCMetadata(flow.metadata);
    if (!tc || !this.control || flow.associatedFlowId !== this.control.id) {
      flow.reject(0);
      return;
    }
    if (tc.streamId === 0) this.serverControlFlowId ??= flow.id;
    flow.onMessage = tc.streamId === 0 ? (m) => this.onMessage(m) : () => {};
  }

  /** Fails every call still waiting for an answer. */
  failPending(info: AmfValue): void {
    for (const done of this.pending.values()) done(false, info);
    this.pending.clear();
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
