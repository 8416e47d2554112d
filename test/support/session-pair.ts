import type { Address } from '../../runtime/rtmfp/address.ts';
import { PacketCipher } from '../../runtime/rtmfp/packet-crypto.ts';
import type { RecvFlow } from '../../runtime/rtmfp/recv-flow.ts';
import { Session } from '../../runtime/rtmfp/session.ts';

/** Where the client (initiator) and the server (responder) of a test session pair are. */
export const PAIR_CLIENT: Address = { address: '127.0.0.1', port: 50_001 };
export const PAIR_SERVER: Address = { address: '127.0.0.1', port: 1935 };
const KEY_CLIENT = Buffer.alloc(16, 0xc1);
const KEY_SERVER = Buffer.alloc(16, 0xd2);

/**
 * One end of a keyed session pair with no handshake and no sockets: the client is the initiator
 * (session ID 1), the server the responder (2); each end's datagrams are pushed onto `out` for
 * the test to hand to the other end, and the flows its peer opens go to `flow`.
 */
export function pairedSession(
  role: 'initiator' | 'responder',
  out: Buffer[],
  flow: (f: RecvFlow) => void,
  closed: () => void = () => {},
): Session {
  const initiator = role === 'initiator';
  return new Session({
    role,
    localId: initiator ? 1 : 2,
    remoteId: initiator ? 2 : 1,
    address: initiator ? PAIR_SERVER : PAIR_CLIENT,
    cipher: new PacketCipher({
      encryptKey: initiator ? KEY_CLIENT : KEY_SERVER,
      decryptKey: initiator ? KEY_SERVER : KEY_CLIENT,
      sendSseq: false,
      recvSseq: false,
    }),
    hooks: {
      send: (d) => out.push(Buffer.from(d)),
      wake: () => {},
      flow: (_s, f) => flow(f),
      closed,
      released: () => {},
    },
    now: 0,
  });
}
