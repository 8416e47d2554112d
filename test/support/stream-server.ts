import dgram from 'node:dgram';
import type { Address } from '../../runtime/rtmfp/address.ts';
import type { AmfObject, AmfValue } from '../../runtime/rtmfp/amf-value.ts';
import { Endpoint } from '../../runtime/rtmfp/endpoint.ts';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';
import { keyInline } from '../../runtime/rtmfp/handshake.ts';
import type { RecvFlow } from '../../runtime/rtmfp/recv-flow.ts';
import type { SendFlow } from '../../runtime/rtmfp/send-flow.ts';
import type { Session } from '../../runtime/rtmfp/session.ts';
import {
  type Command,
  decodeCommand,
  decodeData,
  decodeTCMessage,
  decodeTCMetadata,
  encodeCommand,
  encodeData,
  encodeTCMetadata,
  encodeUserControl,
  TCMessageType,
  UserControlEvent,
} from '../../runtime/rtmfp/tc-message.ts';

/** How often the test server runs its endpoint's deadlines. */
const SERVICE_MS = 10;

export interface StreamServerScript {
  /** Answers a publish: undefined publishes (Publish.Start); an info object is sent instead. */
  publish?(name: string): AmfObject | undefined;
  /** Answers a play: undefined plays (Play.Reset, Play.Start); an info object is sent instead. */
  play?(name: string): AmfObject | undefined;
}

/** One client's NetStream on the server. */
interface ServerStream {
  client: ClientState;
  id: number;
  /** Our flows to the client for this stream, by message kind. */
  flows: Partial<Record<'audio' | 'video' | 'data', SendFlow>>;
  publishing?: string;
  playing?: string;
}

interface ClientState {
  session: Session;
  /** The client's NetConnection flow: our stream flows are associated to it (RTMFP-NOTES §5.1). */
  controlId: number;
  control: SendFlow | undefined;
  streams: Map<number, ServerStream>;
  nextStreamId: number;
}

/**
 * A small live-stream server for client tests, over real UDP on 127.0.0.1, that does what
 * tcserver does for one publisher per name and its players (RTMFP-NOTES §5, §8.2): connect,
 * createStream, publish (Publish.Start, or what the script answers), play (StreamBegin,
 * Play.Reset, Play.Start, PublishNotify when a publisher is live, or what the script answers),
 * media relayed as received, UnpublishNotify when the publisher leaves. Its clock is Date.now.
 */
export class StreamServer {
  readonly port: number;
  /** Commands received on stream flows, as [name, ...args]. */
  readonly commands: AmfValue[][] = [];
  /** Data messages publishers sent, as their values. */
  readonly data: AmfValue[][] = [];
  private readonly socket: dgram.Socket;
  private readonly endpoint: Endpoint;
  private readonly timer: NodeJS.Timeout;
  private readonly script: StreamServerScript;
  private readonly publishers = new Map<string, ServerStream>();
  private readonly players = new Set<ServerStream>();

  private constructor(socket: dgram.Socket, script: StreamServerScript) {
    this.socket = socket;
    this.script = script;
    this.port = socket.address().port;
    this.endpoint = new Endpoint({
      platform: {
        send: (d, to) => socket.send(d, to.port, to.address),
        rescheduled: () => {},
        wake: () => setImmediate(() => this.endpoint.flush(Date.now())),
        keying: keyInline,
      },
      events: {
        hello: (tag, _uri, from, now) => this.endpoint.rHello(tag, from, now),
        opened: (session) => {
          session.context = {
            session,
            controlId: -1,
            control: undefined,
            streams: new Map(),
            nextStreamId: 1,
          };
        },
        flow: (session, flow) => this.onFlow(session.context as ClientState, flow),
        closed: (session) => {
          for (const stream of (session.context as ClientState).streams.values()) this.stop(stream);
        },
        dropped: () => {},
      },
    });
    socket.on('message', (msg, rinfo) => {
      try {
        this.endpoint.receive(msg, { address: rinfo.address, port: rinfo.port }, Date.now());
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
      }
    });
    this.timer = setInterval(() => this.endpoint.service(Date.now()), SERVICE_MS);
  }

  static async start(script: StreamServerScript = {}): Promise<StreamServer> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new StreamServer(socket, script);
  }

  /** `rtmfp://127.0.0.1:<port>/<app>`. */
  url(app = 'live'): string {
    return `rtmfp://127.0.0.1:${this.port}/${app}`;
  }

  /** The address clients reach it at. */
  get address(): Address {
    return { address: '127.0.0.1', port: this.port };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const session of this.endpoint.sessions.values()) session.abort();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private onFlow(client: ClientState, flow: RecvFlow): void {
    const tc = decodeTCMetadata(flow.metadata);
    if (!tc) {
      flow.reject(0);
      return;
    }
    if (tc.streamId === 0) {
      client.controlId = flow.id;
      client.control ??= client.session.openFlow(encodeTCMetadata({ streamId: 0 }), flow.id);
      flow.onMessage = (m) => this.onControl(client, decodeCommand(m));
      return;
    }
    const stream = client.streams.get(tc.streamId);
    if (!stream) {
      flow.reject(0);
      return;
    }
    flow.onMessage = (m) => this.onStreamMessage(stream, m);
  }

  private onControl(client: ClientState, command: Command): void {
    const reply = (name: string, value: AmfValue) =>
      client.control?.write(
        encodeCommand({ name, transactionId: command.transactionId, commandObject: null, args: [value] }),
      );
    if (command.name === 'connect') {
      reply('_result', { level: 'status', code: 'NetConnection.Connect.Success', objectEncoding: 0 });
    } else if (command.name === 'createStream') {
      const id = client.nextStreamId++;
      client.streams.set(id, { client, id, flows: {} });
      reply('_result', id);
    } else if (command.name === 'deleteStream' && typeof command.args[0] === 'number') {
      const stream = client.streams.get(command.args[0]);
      if (stream) this.stop(stream);
      client.streams.delete(command.args[0]);
    }
  }

  private onStreamMessage(stream: ServerStream, message: Buffer): void {
    const type = message[0];
    if (type === TCMessageType.commandAmf0 || type === TCMessageType.commandAmf3) {
      const { name, args } = decodeCommand(message);
      this.commands.push([name, ...args]);
      if (name === 'publish' && typeof args[0] === 'string') this.publish(stream, args[0]);
      else if (name === 'play' && typeof args[0] === 'string') this.play(stream, args[0]);
      else if (name === 'closeStream') this.stop(stream);
      return;
    }
    const kind = kindOf(type);
    if (!kind || stream.publishing === undefined) return;
    if (kind === 'data') this.data.push(decodeData(message));
    const relayed = kind === 'data' ? withoutSetDataFrame(message) : message;
    for (const player of this.players)
      if (player.playing === stream.publishing) this.write(player, kind, relayed);
  }

  private publish(stream: ServerStream, name: string): void {
    const refusal = this.script.publish?.(name);
    if (!refusal && this.publishers.has(name)) {
      this.status(stream, {
        level: 'error',
        code: 'NetStream.Publish.BadName',
        description: `${name} is taken`,
      });
      return;
    }
    if (refusal) {
      this.status(stream, refusal);
      return;
    }
    stream.publishing = name;
    this.publishers.set(name, stream);
    this.status(stream, { level: 'status', code: 'NetStream.Publish.Start', detail: name });
    for (const player of this.players)
      if (player.playing === name)
        this.status(player, { level: 'status', code: 'NetStream.Play.PublishNotify' });
  }

  private play(stream: ServerStream, name: string): void {
    const refusal = this.script.play?.(name);
    if (refusal) {
      this.status(stream, refusal);
      return;
    }
    stream.client.control?.write(encodeUserControl(UserControlEvent.streamBegin, stream.id));
    this.status(stream, { level: 'status', code: 'NetStream.Play.Reset' });
    this.status(stream, { level: 'status', code: 'NetStream.Play.Start', detail: name });
    stream.playing = name;
    this.players.add(stream);
    if (this.publishers.has(name))
      this.status(stream, { level: 'status', code: 'NetStream.Play.PublishNotify' });
  }

  /** The stream stops publishing or playing (closeStream, deleteStream or its session closed). */
  private stop(stream: ServerStream): void {
    this.players.delete(stream);
    stream.playing = undefined;
    const name = stream.publishing;
    if (name === undefined) return;
    stream.publishing = undefined;
    this.publishers.delete(name);
    for (const player of this.players)
      if (player.playing === name)
        this.status(player, { level: 'status', code: 'NetStream.Play.UnpublishNotify' });
  }

  private status(stream: ServerStream, info: AmfObject): void {
    this.write(
      stream,
      'data',
      encodeCommand({ name: 'onStatus', transactionId: 0, commandObject: null, args: [info] }),
    );
  }

  private write(stream: ServerStream, kind: 'audio' | 'video' | 'data', message: Buffer): void {
    const { client } = stream;
    if (client.session.state !== 'open') return;
    stream.flows[kind] ??= client.session.openFlow(
      encodeTCMetadata({ streamId: stream.id }),
      client.controlId,
    );
    stream.flows[kind].write(message);
  }
}

function kindOf(type: number): 'audio' | 'video' | 'data' | undefined {
  if (type === TCMessageType.audio) return 'audio';
  if (type === TCMessageType.video) return 'video';
  if (type === TCMessageType.dataAmf0 || type === TCMessageType.dataAmf3) return 'data';
  return undefined;
}

/** Players get `@setDataFrame(name, …)` as `name(…)`, as tcserver and FMS hand metadata on. */
function withoutSetDataFrame(message: Buffer): Buffer {
  const values = decodeData(message);
  if (values[0] !== '@setDataFrame') return message;
  return encodeData(values.slice(1), { timestamp: decodeTCMessage(message).timestamp });
}
