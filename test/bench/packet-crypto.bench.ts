import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { checksum } from '../../runtime/rtmfp/checksum.ts';
import { PacketCipher } from '../../runtime/rtmfp/packet-crypto.ts';

/**
 * µs per seal + open of a 1,200-byte packet with HMAC-16 and sequence numbers: PacketCipher
 * (long-lived cipher/decipher, pre-keyed hashes) against a naive baseline that creates a
 * Cipher, Decipher and two Hmacs per packet, measured in the same run.
 */

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
}

const PACKET_LENGTH = 1200;
const HMAC_LENGTH = 16;
const WARMUP = 2_000;
const ROUNDS = 5;
const PER_ROUND = 4_000;

interface Codec {
  seal(packet: Buffer, sessionId: number): Buffer;
  open(datagram: Buffer): Buffer;
}

/** The same wire format, written the obvious way: fresh crypto objects for every packet. */
class NaiveCodec implements Codec {
  private readonly key: Buffer;
  private readonly hmacKey: Buffer;
  private sseq = 0;

  constructor(key: Buffer, hmacKey: Buffer) {
    this.key = key;
    this.hmacKey = hmacKey;
  }

  seal(packet: Buffer, sessionId: number): Buffer {
    const sseq = Buffer.from([this.sseq++ & 0x7f]);
    const length = Math.ceil((1 + packet.length) / 16) * 16;
    const plain = Buffer.concat([sseq, packet, Buffer.alloc(length - 1 - packet.length, 0xff)]);
    const cipher = createCipheriv('aes-128-cbc', this.key, Buffer.alloc(16)).setAutoPadding(false);
    const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
    const mac = createHmac('sha256', this.hmacKey).update(ciphertext).digest().subarray(0, HMAC_LENGTH);
    const id = Buffer.alloc(4);
    id.writeUInt32BE((sessionId ^ ciphertext.readUInt32BE(0) ^ ciphertext.readUInt32BE(4)) >>> 0);
    return Buffer.concat([id, ciphertext, mac]);
  }

  open(datagram: Buffer): Buffer {
    const ciphertext = datagram.subarray(4, datagram.length - HMAC_LENGTH);
    const mac = createHmac('sha256', this.hmacKey).update(ciphertext).digest().subarray(0, HMAC_LENGTH);
    if (!timingSafeEqual(mac, datagram.subarray(datagram.length - HMAC_LENGTH))) throw new Error('bad-hmac');
    const decipher = createDecipheriv('aes-128-cbc', this.key, Buffer.alloc(16)).setAutoPadding(false);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).subarray(1);
  }
}

function pair(): [Codec, Codec] {
  const key = randomBytes(16);
  const hmacKey = randomBytes(32);
  const options = {
    encryptKey: key,
    decryptKey: key,
    sendHmac: { key: hmacKey, length: HMAC_LENGTH },
    recvHmac: { key: hmacKey, length: HMAC_LENGTH },
    sendSseq: true,
    recvSseq: true,
  };
  return [new PacketCipher(options), new PacketCipher(options)];
}

/** Best of ROUNDS rounds, in µs per seal + open. */
function measure(sender: Codec, receiver: Codec, packet: Buffer): number {
  let sink = 0;
  for (let i = 0; i < WARMUP; i++) sink += receiver.open(sender.seal(packet, 42)).length;
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < PER_ROUND; i++) sink += receiver.open(sender.seal(packet, 42)).length;
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1000 / PER_ROUND);
  }
  if (sink === 0) throw new Error('benchmark produced nothing');
  return best;
}

export function runPacketCryptoBench(): BenchResult[] {
  const packet = randomBytes(PACKET_LENGTH);
  const [sender, receiver] = pair();
  const fast = measure(sender, receiver, packet);
  const key = randomBytes(16);
  const hmacKey = randomBytes(32);
  const naive = measure(new NaiveCodec(key, hmacKey), new NaiveCodec(key, hmacKey), packet);
  const startup = PacketCipher.startup();
  const checksumOnly = measure(startup, startup, packet);
  const checksumAlone = (() => {
    const start = process.hrtime.bigint();
    let sink = 0;
    for (let i = 0; i < 100_000; i++) sink ^= checksum(packet, 0, packet.length);
    return sink >= 0 ? Number(process.hrtime.bigint() - start) / 1000 / 100_000 : 0;
  })();
  return [
    { name: 'packet-crypto: PacketCipher seal+open, HMAC-16 + SSEQ, 1200 B', value: fast, unit: 'µs' },
    { name: 'packet-crypto: naive (cipher/hmac per packet) seal+open, 1200 B', value: naive, unit: 'µs' },
    { name: 'packet-crypto: naive / PacketCipher', value: naive / fast, unit: 'x' },
    { name: 'packet-crypto: startup cipher seal+open (checksum), 1200 B', value: checksumOnly, unit: 'µs' },
    { name: 'packet-crypto: checksum alone, 1200 B', value: checksumAlone, unit: 'µs' },
  ];
}

if (import.meta.main) {
  const results = runPacketCryptoBench();
  const width = Math.max(...results.map((r) => r.name.length));
  for (const r of results)
    console.log(`${r.name.padEnd(width)}  ${r.value.toFixed(2).padStart(8)} ${r.unit}`);
}
