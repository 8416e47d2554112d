import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { PacketCipher } from '../../runtime/rtmfp/packet-crypto.ts';
import { since } from './clients.ts';
import { formatNumber, type Row } from './report.ts';

/**
 * The per-packet path of a media send: seal (AES-CBC + HMAC-16 + sequence number) and
 * `socket.send`, against sending the same plaintext with no crypto. The difference is what
 * crypto costs on top of the kernel's send path.
 */

const PACKET_BYTES = 1_200;
/** Sends in flight per batch, as a fan-out loop would issue them. */
const BATCH = 64;
const WARMUP_MS = 300;
const SESSION_ID = 0x12345678;
const ROUNDS = 4;
const SEAL_ONLY_PACKETS = 20_000;

/** µs per datagram: batches of BATCH sends, each batch awaiting every send callback. */
async function sendLoop(socket: dgram.Socket, port: number, next: () => Buffer, durationMs: number) {
  const start = performance.now();
  let sent = 0;
  while (since(start) < durationMs) {
    await new Promise<void>((resolve, reject) => {
      let left = BATCH;
      for (let i = 0; i < BATCH; i++)
        socket.send(next(), port, '127.0.0.1', (err) => {
          if (err) reject(err);
          else if (--left === 0) resolve();
        });
    });
    sent += BATCH;
  }
  return { usPerPacket: (since(start) * 1000) / sent, sent };
}

/** µs per seal alone, for the note: send + seal should add up to seal-and-send. */
function sealOnly(cipher: PacketCipher, packet: Buffer): number {
  const start = performance.now();
  let sink = 0;
  for (let i = 0; i < SEAL_ONLY_PACKETS; i++) sink += cipher.seal(packet, SESSION_ID).length;
  if (sink === 0) throw new Error('seal produced nothing');
  return (since(start) * 1000) / SEAL_ONLY_PACKETS;
}

/**
 * Plain and sealed sends in alternating rounds over about `durationMs` each, best round of
 * each: a noisy neighbour then slows both or neither. The sink runs on its own thread.
 */
export async function sealAndSendCost(durationMs: number): Promise<Row> {
  const sink = new Worker(new URL('./udp-sink-worker.ts', import.meta.url));
  const socket = dgram.createSocket('udp4');
  try {
    const [{ port }] = (await once(sink, 'message')) as [{ port: number }];
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    const packet = randomBytes(PACKET_BYTES);
    const cipher = new PacketCipher({
      encryptKey: randomBytes(16),
      decryptKey: randomBytes(16),
      sendHmac: { key: randomBytes(32), length: 16 },
      sendSseq: true,
      recvSseq: true,
    });
    const plain = () => packet;
    const sealed = () => cipher.seal(packet, SESSION_ID);
    let sent = (await sendLoop(socket, port, plain, WARMUP_MS)).sent;
    sent += (await sendLoop(socket, port, sealed, WARMUP_MS)).sent;
    let base = Number.POSITIVE_INFINITY;
    let withCrypto = Number.POSITIVE_INFINITY;
    for (let round = 0; round < ROUNDS; round++) {
      const b = await sendLoop(socket, port, plain, durationMs / ROUNDS);
      const c = await sendLoop(socket, port, sealed, durationMs / ROUNDS);
      base = Math.min(base, b.usPerPacket);
      withCrypto = Math.min(withCrypto, c.usPerPacket);
      sent += b.sent + c.sent;
    }
    const seal = sealOnly(cipher, packet);
    sink.postMessage('count');
    const [{ received }] = (await once(sink, 'message')) as [{ received: number }];
    return {
      section: 'd',
      name: `encrypt+HMAC+send per ${PACKET_BYTES}-byte packet, ${BATCH} per batch`,
      value: withCrypto,
      unit: 'µs',
      baseline: `plain send ${formatNumber(base)} µs`,
      ratio: withCrypto / base,
      note:
        `seal alone ${formatNumber(seal)} µs; best of ${ROUNDS} alternating rounds; ` +
        `sink thread got ${formatNumber((100 * received) / sent)} % of ${formatNumber(sent)}`,
    };
  } finally {
    socket.close();
    await sink.terminate();
  }
}
