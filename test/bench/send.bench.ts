import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { PacketMode, PacketWriter } from '../../runtime/rtmfp/packet.ts';
import { PacketCipher } from '../../runtime/rtmfp/packet-crypto.ts';
import { type MessageLifetime, SendFlow } from '../../runtime/rtmfp/send-flow.ts';
import { SendScheduler } from '../../runtime/rtmfp/send-scheduler.ts';
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

/** A video frame's share of a packet, and tcserver's video lifetime (RTMFP-NOTES §8.2). */
const MEDIA_MESSAGE_BYTES = 1_000;
const VIDEO_LIFETIME: MessageLifetime = { lifetimeMs: 2_000 };
const MESSAGES_PER_ROUND = 50_000;

/** µs per message through write → packet → ack on one flow, each message in its own packet. */
function writeSendAck(lifetime: MessageLifetime | undefined): number {
  const clock = { now: 0 };
  const scheduler = new SendScheduler();
  const flow = new SendFlow(
    1,
    Buffer.from('54430400', 'hex'),
    undefined,
    () => {},
    () => clock.now,
  );
  scheduler.add(flow);
  const writer = new PacketWriter();
  const message = randomBytes(MEDIA_MESSAGE_BYTES);
  const start = performance.now();
  for (let seq = 1; seq <= MESSAGES_PER_ROUND; seq++) {
    clock.now = seq;
    flow.write(message, lifetime);
    scheduler.write(writer.begin(PacketMode.responder, 0, undefined), clock.now);
    scheduler.onAck({ flowId: 1, bufferBlocks: 64, cumulativeAck: seq, ranges: [] }, clock.now);
  }
  if (flow.queue.length !== 0 || flow.abandonedMessages !== 0) throw new Error('the bench lost messages');
  return (since(start) * 1000) / MESSAGES_PER_ROUND;
}

/**
 * What partial reliability costs on the media send path: messages written with a lifetime
 * against reliable ones, best of alternating rounds (crypto and the socket left out).
 */
export function lifetimeCost(): Row {
  writeSendAck(undefined);
  writeSendAck(VIDEO_LIFETIME);
  let reliable = Number.POSITIVE_INFINITY;
  let withLifetime = Number.POSITIVE_INFINITY;
  for (let round = 0; round < ROUNDS; round++) {
    reliable = Math.min(reliable, writeSendAck(undefined));
    withLifetime = Math.min(withLifetime, writeSendAck(VIDEO_LIFETIME));
  }
  return {
    section: 'd',
    name: `write+send+ack per ${MEDIA_MESSAGE_BYTES}-byte message with a ${VIDEO_LIFETIME.lifetimeMs} ms lifetime`,
    value: withLifetime,
    unit: 'µs',
    baseline: `reliable ${formatNumber(reliable)} µs`,
    ratio: withLifetime / reliable,
    note: `best of ${ROUNDS} alternating rounds of ${formatNumber(MESSAGES_PER_ROUND)}`,
  };
}
