import assert from 'node:assert/strict';
import type { AmfValue } from '../../runtime/rtmfp/amf-value.ts';
import type { RecvFlow } from '../../runtime/rtmfp/recv-flow.ts';
import type { SendFlow } from '../../runtime/rtmfp/send-flow.ts';
import { TCClientConnection } from '../../runtime/rtmfp/tc-client.ts';
import {
  decodeCommand,
  decodeTCMessage,
  decodeTCMetadata,
  encodeCommand,
  encodeTCMetadata,
  TCMessageType,
} from '../../runtime/rtmfp/tc-message.ts';
import { PAIR_CLIENT, PAIR_SERVER, pairedSession } from './session-pair.ts';

/** One flow the client opened to the server, and the messages it carried. */
export interface ClientFlow {
  flow: RecvFlow;
  streamId: number;
  /** Raw messages in arrival order. */
  messages: Buffer[];
  completed: boolean;
}

/**
 * Our client (a pure Session + TCClientConnection) and a server scripted by the test, as
 * tcserver behaves (RTMFP-NOTES §5): its NetConnection flow is the return flow of the client's,
 * it answers connect and createStream (stream IDs from 1), and the test writes the rest on
 * stream flows associated to the client's NetConnection flow. Datagrams pass by `pump`.
 */
export function scriptedServer() {
  const wire = { toServer: [] as Buffer[], toClient: [] as Buffer[] };
  const fromClient: ClientFlow[] = [];
  let serverControl: SendFlow | undefined;
  let clientControlId = -1;
  let nextStreamId = 1;
  /** createStream answers: a number, or `_error` with this info. */
  const createStreamAnswers: AmfValue[] = [];
  const session = (role: 'initiator' | 'responder', out: Buffer[], flow: (f: RecvFlow) => void) =>
    pairedSession(role, out, flow);
  const statuses: AmfValue[] = [];
  let tc: TCClientConnection | undefined;
  const client = session('initiator', wire.toServer, (f) => tc?.onFlow(f));
  const server = session('responder', wire.toClient, (f) => {
    const meta = decodeTCMetadata(f.metadata);
    assert.ok(meta, 'the client opens TC flows only');
    const record: ClientFlow = { flow: f, streamId: meta.streamId, messages: [], completed: false };
    fromClient.push(record);
    f.onComplete = () => {
      record.completed = true;
    };
    f.onMessage = (m) => {
      record.messages.push(Buffer.from(m));
      if (meta.streamId !== 0) return;
      const command = decodeCommand(m);
      if (command.name === 'connect') {
        clientControlId = f.id;
        serverControl = server.openFlow(encodeTCMetadata({ streamId: 0 }), f.id);
        reply('_result', command.transactionId, { level: 'status', code: 'NetConnection.Connect.Success' });
      } else if (command.name === 'createStream') {
        const answer = createStreamAnswers.shift() ?? nextStreamId++;
        if (typeof answer === 'number') reply('_result', command.transactionId, answer);
        else reply('_error', command.transactionId, answer);
      }
    };
  });
  const reply = (name: string, transactionId: number, value: AmfValue) =>
    serverControl?.write(encodeCommand({ name, transactionId, commandObject: null, args: [value] }));
  /** Wake-ups the client's NetStreams asked of their host (Flow Sync bounds), for the test to run. */
  const wakeups: { at: number; service: (now: number) => void }[] = [];
  tc = new TCClientConnection(
    client,
    {
      connected: () => {},
      call: () => {},
      status: (info) => statuses.push(info),
    },
    (at, service) => wakeups.push({ at, service }),
  );
  let now = 0;
  const pump = () => {
    for (let round = 0; round < 40; round++) {
      now += 50;
      for (const s of [client, server]) s.service(now);
      const moved = wire.toServer.length + wire.toClient.length;
      for (const d of wire.toServer.splice(0)) server.receive(d, PAIR_CLIENT, now);
      for (const d of wire.toClient.splice(0)) client.receive(d, PAIR_SERVER, now);
      if (moved === 0) return;
    }
  };
  /** `ms` pass, datagrams delivered (or, with `lose`, every one either way lost); timers run. */
  const run = (ms: number, o: { lose?: boolean } = {}) => {
    for (const end = now + ms; now < end; ) {
      now += 50;
      for (const s of [client, server]) s.service(now);
      const toServer = wire.toServer.splice(0);
      const toClient = wire.toClient.splice(0);
      if (o.lose) continue;
      for (const d of toServer) server.receive(d, PAIR_CLIENT, now);
      for (const d of toClient) client.receive(d, PAIR_SERVER, now);
    }
  };
  tc.connect({ tcUrl: 'rtmfp://server/live', app: 'live', args: [] });
  pump();
  assert.ok(serverControl, 'connected');
  const control = serverControl;
  /** The server's flow for `streamId`, associated to the client's NetConnection flow (tcserver's way). */
  const openStreamFlow = (streamId: number, associatedTo = clientControlId): SendFlow =>
    server.openFlow(encodeTCMetadata({ streamId }), associatedTo);
  /** Commands the client sent on its flows of `streamId`, as [name, ...args]. */
  const commandsOn = (streamId: number): AmfValue[][] =>
    fromClient
      .filter((f) => f.streamId === streamId)
      .flatMap((f) => f.messages)
      .filter((m) => m[0] === TCMessageType.commandAmf0)
      .map((m) => {
        const c = decodeCommand(m);
        return [c.name, ...c.args];
      });
  /** Media and data messages the client sent, as [flow index among stream flows, type, timestamp]. */
  const mediaFlows = (streamId: number) =>
    fromClient.filter((f) => f.streamId === streamId).map((f) => f.messages.map((m) => decodeTCMessage(m)));
  return {
    client,
    server,
    tc,
    control,
    fromClient,
    statuses,
    createStreamAnswers,
    pump,
    run,
    openStreamFlow,
    commandsOn,
    mediaFlows,
    wakeups,
    get clientControlId() {
      return clientControlId;
    },
  };
}
