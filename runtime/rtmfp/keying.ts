import { randomBytes } from 'node:crypto';
import { Reader, Writer } from './binary.ts';
import { ProtocolError } from './errors.ts';
import { hmacKey, hmacSha256 } from './hmac.ts';
import { readOptions, writeOption } from './option.ts';

/**
 * Session keying components (RFC 7425 §4.6: SKIC from the initiator in IIKeying, SKRC from
 * the responder in RIKeying), the HMAC / session-sequence negotiation they carry
 * (RFC 7425 §4.6.4, §4.6.5) and the session key derivation (RFC 7425 §4.6.3).
 */

/** RFC 7425 §4.6.1 keying component option types. */
export const KeyingOption = {
  ephemeralPublicKey: 0x0d,
  extraRandomness: 0x0e,
  hmacNegotiation: 0x1a,
  groupSelect: 0x1d,
  sseqNegotiation: 0x1e,
} as const;

/** RFC 7425 §4.6.4 negotiation flags; rtmfp-cpp reads REQ as "require". */
export const Flags = {
  /** Will send always. */
  SND: 0x04,
  /** Will send on request. */
  SOR: 0x02,
  /** Request (require) it from the peer. */
  REQ: 0x01,
} as const;

/** RFC 7425 §4.6.4: truncated HMAC length bounds; 16 is rtmfp-cpp's default (RFC 2104 §5). */
export const MIN_HMAC_LENGTH = 4;
export const MAX_HMAC_LENGTH = 32;
export const DEFAULT_HMAC_LENGTH = 16;
/** rtmfp-cpp sends 64 bytes of extra randomness with a static DH group select. */
const EXTRA_RANDOMNESS_LENGTH = 64;

export interface HmacOffer {
  flags: number;
  /** The HMAC length this sender will append. */
  length: number;
}

export interface SseqOffer {
  flags: number;
}

export interface KeyingComponent {
  ephemeralKey?: { group: number; publicKey: Buffer };
  groupSelect?: number;
  extraRandomness?: Buffer;
  hmac?: HmacOffer;
  sseq?: SseqOffer;
}

/** One feature (HMAC or session sequence numbers) in one endpoint's view. */
export interface Direction {
  sendAlways: boolean;
  recvRequired: boolean;
}

/** What this endpoint asks for before negotiation. */
export interface KeyingPolicy {
  hmac: Direction;
  hmacLength: number;
  sseq: Direction;
}

/** The outcome for one session: each feature is on or off per direction. */
export interface Negotiated {
  sendHmac: boolean;
  /** Our HMAC length (what we announced). */
  sendHmacLength: number;
  recvHmac: boolean;
  /** The peer's announced HMAC length. */
  recvHmacLength: number;
  sendSseq: boolean;
  recvSseq: boolean;
}

/** Our client's default, like tcconn's: HMAC and sequence numbers, both required. */
export const CLIENT_POLICY: KeyingPolicy = {
  hmac: { sendAlways: true, recvRequired: true },
  hmacLength: DEFAULT_HMAC_LENGTH,
  sseq: { sendAlways: true, recvRequired: true },
};

/** The server asks for nothing; the initiator's flags decide (see responderNegotiation). */
export const SERVER_POLICY: KeyingPolicy = {
  hmac: { sendAlways: false, recvRequired: false },
  hmacLength: DEFAULT_HMAC_LENGTH,
  sseq: { sendAlways: false, recvRequired: false },
};

/**
 * The bytes Cumulus and MonaServer answer with before their DH key: HMAC and SSEQ offered
 * with flags 0. librtmfp rejects an RIKeying whose SKRC does not start with exactly these.
 */
const LIBRTMFP_NEGOTIATION = Buffer.from('031a0000021e00', 'hex');

export function parseKeyingComponent(bytes: Buffer): KeyingComponent {
  const c: KeyingComponent = {};
  // RFC 7016 §2.1.3: only options before a marker count; the first of each type wins.
  for (const { type, value } of readOptions(new Reader(bytes))) {
    const r = new Reader(value);
    if (type === KeyingOption.ephemeralPublicKey && !c.ephemeralKey) {
      c.ephemeralKey = { group: r.vlu(), publicKey: r.rest() };
    } else if (type === KeyingOption.groupSelect && c.groupSelect === undefined) {
      c.groupSelect = r.vlu();
    } else if (type === KeyingOption.extraRandomness && !c.extraRandomness) {
      c.extraRandomness = value;
    } else if (type === KeyingOption.hmacNegotiation && !c.hmac && value.length > 0) {
      const flags = r.u8();
      c.hmac = { flags, length: r.remaining > 0 ? r.vlu() : 0 };
    } else if (type === KeyingOption.sseqNegotiation && !c.sseq && value.length > 0) {
      c.sseq = { flags: r.u8() };
    }
  }
  return c;
}

/** The flags byte an endpoint announces: it can always send on request (rtmfp-cpp). */
export function offerFlags(d: Direction): number {
  return (d.sendAlways ? Flags.SND : 0) | Flags.SOR | (d.recvRequired ? Flags.REQ : 0);
}

/**
 * rtmfp-cpp `negotiateFlags`, applied to the peer's flags for one feature: requiring what
 * the peer will not send fails the handshake; a peer that sends always must be checked on
 * receive; a peer that requests it must get it on every packet.
 */
export function negotiateFlags(peerFlags: number, mine: Direction): Direction {
  if (mine.recvRequired && (peerFlags & (Flags.SND | Flags.SOR)) === 0) {
    throw new ProtocolError('negotiation', 'peer will not send the HMAC or sequence numbers we require');
  }
  return {
    sendAlways: mine.sendAlways || (peerFlags & Flags.REQ) !== 0,
    recvRequired: mine.recvRequired || (peerFlags & Flags.SND) !== 0,
  };
}

/**
 * Negotiates both features against the peer's keying component; the initiator calls it with
 * the SKRC, the responder with the SKIC. An absent option counts as flags 0.
 */
export function negotiate(policy: KeyingPolicy, peer: KeyingComponent): Negotiated {
  const sseq = negotiateFlags(peer.sseq?.flags ?? 0, policy.sseq);
  const hmac = negotiateFlags(peer.hmac?.flags ?? 0, policy.hmac);
  const recvHmacLength = peer.hmac?.length ?? 0;
  if (hmac.recvRequired && (recvHmacLength < MIN_HMAC_LENGTH || recvHmacLength > MAX_HMAC_LENGTH)) {
    throw new ProtocolError(
      'negotiation',
      `peer HMAC length ${recvHmacLength} outside 4..32 (RFC 7425 §4.6.4)`,
    );
  }
  return {
    sendHmac: hmac.sendAlways,
    sendHmacLength: policy.hmacLength,
    recvHmac: hmac.recvRequired,
    recvHmacLength: hmac.recvRequired ? recvHmacLength : 0,
    sendSseq: sseq.sendAlways,
    recvSseq: sseq.recvRequired,
  };
}

/**
 * The server's interop policy (RTMFP-NOTES §3.4). An initiator that sets REQ (tcconn,
 * tcpublish) fails the handshake unless we offer SND/SOR, so we answer the rtmfp-cpp way with
 * the flags negotiation gives (SND|SOR|REQ when it asked for everything). Any other initiator
 * (librtmfp, Flash, tcconn -H -S) gets the Cumulus bytes that librtmfp insists on, which offer
 * nothing. `negotiated` still follows the general rule: a peer announcing SND is verified.
 */
export function responderNegotiation(initiator: KeyingComponent): {
  answer: { hmac?: HmacOffer; sseq?: SseqOffer };
  negotiated: Negotiated;
} {
  const negotiated = negotiate(SERVER_POLICY, initiator);
  const requested = ((initiator.hmac?.flags ?? 0) | (initiator.sseq?.flags ?? 0)) & Flags.REQ;
  if (!requested) return { answer: {}, negotiated };
  return {
    answer: {
      hmac: {
        flags: offerFlags({ sendAlways: negotiated.sendHmac, recvRequired: negotiated.recvHmac }),
        length: SERVER_POLICY.hmacLength,
      },
      sseq: { flags: offerFlags({ sendAlways: negotiated.sendSseq, recvRequired: negotiated.recvSseq }) },
    },
    negotiated,
  };
}

/**
 * An initiator keying component. With `ephemeralPublicKey` (ephemeral certificate): the DH
 * key option. Without (static certificate, as tcconn): a group select plus 64 bytes of extra
 * randomness, since the key is in the certificate (RFC 7425 §4.6.1). Then the HMAC and SSEQ
 * offers, by default CLIENT_POLICY's SND|SOR|REQ with a 16-byte HMAC.
 */
export function makeInitiatorKeyingComponent(o: {
  group: number;
  ephemeralPublicKey?: Buffer;
  extraRandomness?: Buffer;
  hmac?: HmacOffer;
  sseq?: SseqOffer;
}): Buffer {
  const hmac = o.hmac ?? { flags: offerFlags(CLIENT_POLICY.hmac), length: CLIENT_POLICY.hmacLength };
  const sseq = o.sseq ?? { flags: offerFlags(CLIENT_POLICY.sseq) };
  checkHmacLength(hmac.length);
  const w = new Writer(256);
  if (o.ephemeralPublicKey) {
    writeOption(w, KeyingOption.ephemeralPublicKey, groupAndKey(o.group, o.ephemeralPublicKey));
  } else {
    writeOption(w, KeyingOption.groupSelect, new Writer(4).vlu(o.group).view());
    writeOption(w, KeyingOption.extraRandomness, o.extraRandomness ?? randomBytes(EXTRA_RANDOMNESS_LENGTH));
  }
  writeHmacOffer(w, hmac);
  writeOption(w, KeyingOption.sseqNegotiation, Buffer.from([sseq.flags]));
  return w.toBuffer();
}

/**
 * A responder keying component for an ephemeral-DH server. With offers: rtmfp-cpp's order
 * (SSEQ, HMAC, DH key). Without: the Cumulus/librtmfp layout `03 1A 00 00 02 1E 00` + DH key.
 */
export function makeResponderKeyingComponent(o: {
  group: number;
  publicKey: Buffer;
  hmac?: HmacOffer;
  sseq?: SseqOffer;
}): Buffer {
  const w = new Writer(o.publicKey.length + 32);
  if (o.hmac === undefined && o.sseq === undefined) {
    w.bytes(LIBRTMFP_NEGOTIATION);
  } else {
    writeOption(w, KeyingOption.sseqNegotiation, Buffer.from([o.sseq?.flags ?? 0]));
    const hmac = o.hmac ?? { flags: 0, length: 0 };
    if (hmac.flags !== 0) checkHmacLength(hmac.length);
    writeHmacOffer(w, hmac);
  }
  writeOption(w, KeyingOption.ephemeralPublicKey, groupAndKey(o.group, o.publicKey));
  return w.toBuffer();
}

export interface SessionKeys {
  /** AES-128 key for what we send. */
  encryptKey: Buffer;
  /** AES-128 key for what we receive. */
  decryptKey: Buffer;
  encryptKeyFull: Buffer;
  decryptKeyFull: Buffer;
  nearNonce: Buffer;
  farNonce: Buffer;
  sendHmacKey?: Buffer;
  recvHmacKey?: Buffer;
}

/**
 * RFC 7425 §4.6.3 (rtmfp-cpp `computeKeysAndNonces`). S = DH secret (minimal big-endian),
 * SKNC/SKFC = our/the peer's keying component bytes exactly as sent:
 * encrypt = HMAC(S, HMAC(SKFC, SKNC)), decrypt = HMAC(S, HMAC(SKNC, SKFC)), each first 16 B;
 * near/far nonce = HMAC(S, SKNC/SKFC); HMAC keys = HMAC(S, full 32-byte key material).
 */
export function deriveSessionKeys(o: {
  sharedSecret: Buffer;
  nearComponent: Buffer;
  farComponent: Buffer;
  sendHmac: boolean;
  recvHmac: boolean;
}): SessionKeys {
  const s = hmacKey(o.sharedSecret); // it keys six HMACs: hash the long secret once
  const encryptKeyFull = hmacSha256(s, hmacSha256(o.farComponent, o.nearComponent));
  const decryptKeyFull = hmacSha256(s, hmacSha256(o.nearComponent, o.farComponent));
  return {
    encryptKey: encryptKeyFull.subarray(0, 16),
    decryptKey: decryptKeyFull.subarray(0, 16),
    encryptKeyFull,
    decryptKeyFull,
    nearNonce: hmacSha256(s, o.nearComponent),
    farNonce: hmacSha256(s, o.farComponent),
    sendHmacKey: o.sendHmac ? hmacSha256(s, encryptKeyFull) : undefined,
    recvHmacKey: o.recvHmac ? hmacSha256(s, decryptKeyFull) : undefined,
  };
}

function checkHmacLength(length: number): void {
  if (!Number.isInteger(length) || length < MIN_HMAC_LENGTH || length > MAX_HMAC_LENGTH) {
    throw new RangeError(`HMAC length must be an integer in 4..32 (RFC 7425 §4.6.4), got ${length}`);
  }
}

function writeHmacOffer(w: Writer, hmac: HmacOffer): void {
  writeOption(w, KeyingOption.hmacNegotiation, new Writer(8).u8(hmac.flags).vlu(hmac.length).view());
}

function groupAndKey(group: number, key: Buffer): Buffer {
  return new Writer(key.length + 4).vlu(group).bytes(key).toBuffer();
}
