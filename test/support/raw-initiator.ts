import type dgram from 'node:dgram';
import type { AmfValue } from '../../runtime/rtmfp/amf-value.ts';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';
import { Initiator } from '../../runtime/rtmfp/handshake-initiator.ts';
import { PacketCipher, readSessionId } from '../../runtime/rtmfp/packet-crypto.ts';
import { Session } from '../../runtime/rtmfp/session.ts';
import { TCClientConnection } from '../../runtime/rtmfp/tc-client.ts';

/** Startup datagrams are sent again this often until answered (loopback rarely needs it). */
const STARTUP_RETRY_MS = 250;

/** A NetConnection over the bare protocol pieces, on a socket the test controls (clock: Date.now(), a protocol clock). */
export interface RawClient {
  session: Session;
  /** The connect `_result`/`_error`: ok and info. */
  connected: Promise<{ ok: boolean; info: AmfValue }>;
  /** Stops listening on the socket (the socket itself stays the caller's). */
  detach(): void;
}

/**
 * Handshake + TC connect from `socket` to 127.0.0.1:`port`, driven by hand: the test picks the
 * initiator session ID and the socket, as a restarted rtmfp-cpp client reuses both, and ends
 * the session however it likes (`session.abort({ tellPeer: true })` is rtmfp-cpp's Ctrl-C).
 */
export async function rawConnect(
  socket: dgram.Socket,
  port: number,
  o: { app?: string; localId?: number; timeoutMs?: number } = {},
): Promise<RawClient> {
  const url = `rtmfp://127.0.0.1:${port}/${o.app ?? 'app'}`;
  const initiator = new Initiator({ uri: url, localId: o.localId });
  const send = (d: Buffer) => socket.send(d, port, '127.0.0.1');
  let session: Session | undefined;
  let connectedResolve!: (v: { ok: boolean; info: AmfValue }) => void;
  const connected = new Promise<{ ok: boolean; info: AmfValue }>((r) => {
    connectedResolve = r;
  });
  let opened!: () => void;
  let failed!: (e: Error) => void;
  const open = new Promise<void>((resolve, reject) => {
    opened = resolve;
    failed = reject;
  });
  const onMessage = (msg: Buffer) => {
    const now = Date.now();
    try {
      if (session) {
        if (readSessionId(msg) === session.localId) session.receive(msg, { address: '127.0.0.1', port }, now);
        return;
      }
      const step = initiator.onStartup(msg, now);
      if (step.kind === 'send') send(step.datagram);
      if (step.kind !== 'established') return;
      const s = new Session({
        role: 'initiator',
        localId: step.localId,
        remoteId: step.remoteId,
        address: { address: '127.0.0.1', port },
        cipher: new PacketCipher(step.cipher),
        now,
        hooks: {
          send: (d) => send(d),
          wake: (x) => setImmediate(() => x.flush(Date.now())),
          flow: (_x, flow) => tc.onFlow(flow),
          closed: () => {},
          released: () => {},
        },
      });
      const tc = new TCClientConnection(s, {
        connected: (ok, info) => connectedResolve({ ok, info }),
        call: (_name, _args, reply) => reply?.(false, null),
        status: () => {},
      });
      session = s;
      tc.connect({ tcUrl: url, app: o.app ?? 'app', args: [] });
      s.flush(now);
      opened();
    } catch (e) {
      if (!(e instanceof ProtocolError)) failed(e as Error);
    }
  };
  socket.on('message', onMessage);
  const retry = setInterval(() => {
    if (!session) send(initiator.current(Date.now()));
  }, STARTUP_RETRY_MS);
  const timeout = setTimeout(() => failed(new Error('raw handshake timed out')), o.timeoutMs ?? 10_000);
  send(initiator.current(Date.now()));
  try {
    await open;
  } catch (e) {
    socket.off('message', onMessage);
    throw e;
  } finally {
    clearInterval(retry);
    clearTimeout(timeout);
  }
  return { session: session!, connected, detach: () => socket.off('message', onMessage) };
}
