import { Reader } from '../rtmfp/binary.ts';
import type { KeyingJob, KeyingResult } from '../rtmfp/handshake.ts';

/**
 * What the crypto pool and its workers post to each other: a KeyingJob one way, a KeyingResult
 * or an error back, each packed into one transferable byte array. Posted as objects, the dozen
 * typed arrays of a job and its result cost a structured clone and an ArrayBuffer each.
 */

const KEY_LENGTH = 16;
const HMAC_KEY_LENGTH = 32;
const FINGERPRINT_LENGTH = 32;
const NONCE_LENGTH = 32;
const OK = 0;
const FAILED = 1;
const SEND_HMAC = 1;
const RECV_HMAC = 2;
const SEND_SSEQ = 4;
const RECV_SSEQ = 8;

/** groups (count, one byte each) · certificate (u32 length) · SKIC (u32 length). */
export function packKeyingJob(job: KeyingJob): Buffer<ArrayBuffer> {
  const b = Buffer.from(
    new ArrayBuffer(1 + job.groups.length + 4 + job.certificate.length + 4 + job.skic.length),
  );
  let pos = b.writeUInt8(job.groups.length, 0);
  for (const g of job.groups) pos = b.writeUInt8(g, pos);
  pos = b.writeUInt32BE(job.certificate.length, pos);
  pos += job.certificate.copy(b, pos);
  pos = b.writeUInt32BE(job.skic.length, pos);
  job.skic.copy(b, pos);
  return b;
}

/** The job packed by `packKeyingJob`; its buffers are views of `bytes`. */
export function unpackKeyingJob(bytes: Uint8Array): KeyingJob {
  const r = new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const groups = Array.from(r.bytes(r.u8()));
  return { groups, certificate: r.bytes(r.u32()), skic: r.bytes(r.u32()) };
}

/**
 * OK · flags · HMAC lengths · keys · fingerprint · nonces · SKRC (u16 length), or
 * FAILED · the error message.
 */
export function packKeyingResult(result: KeyingResult | Error): Buffer<ArrayBuffer> {
  if (result instanceof Error) {
    const message = Buffer.from(result.message, 'utf8');
    const b = Buffer.from(new ArrayBuffer(1 + message.length));
    b[0] = FAILED;
    message.copy(b, 1);
    return b;
  }
  const { sendHmac, recvHmac } = result;
  const length =
    4 +
    2 * KEY_LENGTH +
    (sendHmac ? HMAC_KEY_LENGTH : 0) +
    (recvHmac ? HMAC_KEY_LENGTH : 0) +
    FINGERPRINT_LENGTH +
    2 * NONCE_LENGTH +
    2 +
    result.skrc.length;
  const b = Buffer.from(new ArrayBuffer(length));
  const flags =
    (sendHmac ? SEND_HMAC : 0) |
    (recvHmac ? RECV_HMAC : 0) |
    (result.sendSseq ? SEND_SSEQ : 0) |
    (result.recvSseq ? RECV_SSEQ : 0);
  let pos = b.writeUInt8(OK, 0);
  pos = b.writeUInt8(flags, pos);
  pos = b.writeUInt8(sendHmac?.length ?? 0, pos);
  pos = b.writeUInt8(recvHmac?.length ?? 0, pos);
  pos += sized(result.encryptKey, KEY_LENGTH).copy(b, pos);
  pos += sized(result.decryptKey, KEY_LENGTH).copy(b, pos);
  if (sendHmac) pos += sized(sendHmac.key, HMAC_KEY_LENGTH).copy(b, pos);
  if (recvHmac) pos += sized(recvHmac.key, HMAC_KEY_LENGTH).copy(b, pos);
  if (b.write(result.peerId, pos, FINGERPRINT_LENGTH, 'hex') !== FINGERPRINT_LENGTH)
    throw new RangeError(`peer ID must be ${FINGERPRINT_LENGTH} bytes in hex, got "${result.peerId}"`);
  pos += FINGERPRINT_LENGTH;
  pos += sized(result.nearNonce, NONCE_LENGTH).copy(b, pos);
  pos += sized(result.farNonce, NONCE_LENGTH).copy(b, pos);
  pos = b.writeUInt16BE(result.skrc.length, pos);
  result.skrc.copy(b, pos);
  return b;
}

/** The result packed by `packKeyingResult`; its buffers are views of `bytes`. */
export function unpackKeyingResult(bytes: Uint8Array): KeyingResult | Error {
  const r = new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  if (r.u8() === FAILED) return new Error(r.rest().toString('utf8'));
  const flags = r.u8();
  const sendHmacLength = r.u8();
  const recvHmacLength = r.u8();
  return {
    encryptKey: r.bytes(KEY_LENGTH),
    decryptKey: r.bytes(KEY_LENGTH),
    sendHmac: flags & SEND_HMAC ? { key: r.bytes(HMAC_KEY_LENGTH), length: sendHmacLength } : undefined,
    recvHmac: flags & RECV_HMAC ? { key: r.bytes(HMAC_KEY_LENGTH), length: recvHmacLength } : undefined,
    sendSseq: (flags & SEND_SSEQ) !== 0,
    recvSseq: (flags & RECV_SSEQ) !== 0,
    peerId: r.bytes(FINGERPRINT_LENGTH).toString('hex'),
    nearNonce: r.bytes(NONCE_LENGTH),
    farNonce: r.bytes(NONCE_LENGTH),
    skrc: r.bytes(r.u16()),
  };
}

function sized(b: Buffer, length: number): Buffer {
  if (b.length !== length) throw new RangeError(`expected ${length} bytes, got ${b.length}`);
  return b;
}
