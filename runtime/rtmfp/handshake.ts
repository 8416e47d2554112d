import type { Address, OriginAddress } from './address.ts';
import { type EPD, epdSelects, makeServerCertificate, parseCertificate, parseEPD } from './certificate.ts';
import {
  ChunkType,
  FLASH_SIGNATURE,
  type IHello,
  type IIKeying,
  readIHello,
  readIIKeying,
  writeCookieChange,
  writeRedirect,
  writeRHello,
  writeRIKeying,
} from './chunks.ts';
import type { CookieJar } from './cookie.ts';
import { computeDHSecret, generateDHKeyPair, SUPPORTED_DH_GROUPS } from './dh.ts';
import { ProtocolError } from './errors.ts';
import {
  deriveSessionKeys,
  makeResponderKeyingComponent,
  parseKeyingComponent,
  responderNegotiation,
} from './keying.ts';
import { PacketMode, PacketReader, PacketWriter } from './packet.ts';
import { PacketCipher } from './packet-crypto.ts';

/** A server's certificate and what follows from it. */
export interface ServerIdentity {
  certificate: Buffer;
  fingerprint: Buffer;
  hostname: string | undefined;
  groups: readonly number[];
}

/** A fresh ephemeral-DH server certificate (RFC 7425 §4.3), listing only groups we compute. */
export function makeServerIdentity(
  hostname?: string,
  groups: readonly number[] = SUPPORTED_DH_GROUPS,
): ServerIdentity {
  const certificate = makeServerCertificate({ hostname, groups });
  return { certificate, fingerprint: parseCertificate(certificate).fingerprint, hostname, groups };
}

/** The expensive half of a handshake, for a worker thread. The buffers may be views. */
export interface KeyingJob {
  certificate: Buffer;
  skic: Buffer;
  groups: readonly number[];
}

export interface HmacParams {
  key: Buffer;
  length: number;
}

/** Session keys and the responder keying component, as computed by `responderKeying`. */
export interface KeyingResult {
  skrc: Buffer;
  encryptKey: Buffer;
  decryptKey: Buffer;
  sendHmac: HmacParams | undefined;
  recvHmac: HmacParams | undefined;
  sendSseq: boolean;
  recvSseq: boolean;
  /** Hex SHA-256 of the initiator's certificate (Flash `farID`). */
  peerId: string;
  nearNonce: Buffer;
  farNonce: Buffer;
}

/**
 * RFC 7425 §4.6 as responder: pick the DH group (the initiator's static key in a group we
 * offer, or its ephemeral key), make our ephemeral key, negotiate HMAC and sequence numbers,
 * derive the session keys. Pure and CPU-heavy; runs in the crypto worker pool.
 */
export function responderKeying(job: KeyingJob): KeyingResult {
  const certificate = parseCertificate(job.certificate);
  const skicBytes = job.skic;
  const skic = parseKeyingComponent(skicBytes);
  let group: number;
  let peerKey: Buffer;
  if (skic.ephemeralKey) {
    group = skic.ephemeralKey.group;
    peerKey = skic.ephemeralKey.publicKey;
  } else if (skic.groupSelect !== undefined) {
    group = skic.groupSelect;
    const key = certificate.staticKeys.get(group);
    if (!key) throw new ProtocolError('bad-keying', `no static key for group ${group}`);
    peerKey = key;
  } else {
    // Flash and librtmfp send their key in the certificate and no group select (RTMFP-NOTES §3.2).
    const found = job.groups.find((g) => certificate.staticKeys.has(g));
    if (found === undefined) throw new ProtocolError('bad-keying', 'no DH group in common');
    group = found;
    peerKey = certificate.staticKeys.get(found)!;
  }
  if (!job.groups.includes(group)) throw new ProtocolError('bad-keying', `DH group ${group} not offered`);
  const mine = generateDHKeyPair(group);
  const sharedSecret = computeDHSecret(group, mine.privateKey, peerKey);
  const { answer, negotiated } = responderNegotiation(skic);
  const skrc = makeResponderKeyingComponent({ group, publicKey: mine.publicKey, ...answer });
  const keys = deriveSessionKeys({
    sharedSecret,
    nearComponent: skrc,
    farComponent: skicBytes,
    sendHmac: negotiated.sendHmac,
    recvHmac: negotiated.recvHmac,
  });
  return {
    skrc,
    encryptKey: keys.encryptKey,
    decryptKey: keys.decryptKey,
    sendHmac: keys.sendHmacKey && { key: keys.sendHmacKey, length: negotiated.sendHmacLength },
    recvHmac: keys.recvHmacKey && { key: keys.recvHmacKey, length: negotiated.recvHmacLength },
    sendSseq: negotiated.sendSseq,
    recvSseq: negotiated.recvSseq,
    peerId: certificate.fingerprint.toString('hex'),
    nearNonce: keys.nearNonce,
    farNonce: keys.farNonce,
  };
}

/**
 * Keys an accepted handshake (the DH, ~3.5 ms in group 16): a node hands it to its worker
 * pool, a client may run it inline (`keyInline`). `done` gets the time it is called at.
 * Returns false when the job cannot be taken (a full queue): the initiator retransmits.
 */
export type KeyingAdapter = (
  job: KeyingJob,
  now: number,
  done: (result: KeyingResult | Error, now: number) => void,
) => boolean;

/** Keys on the calling thread, at once. */
export const keyInline: KeyingAdapter = (job, now, done) => {
  let result: KeyingResult | Error;
  try {
    result = responderKeying(job);
  } catch (e) {
    result = e instanceof Error ? e : new Error(String(e));
  }
  done(result, now);
  return true;
};

export type StartupResult =
  | { kind: 'reply'; datagram: Buffer }
  | { kind: 'hello'; tag: Buffer; uri: string }
  | { kind: 'drop'; reason: string }
  | { kind: 'rendezvous'; epd: EPD; tag: Buffer; peerId: Buffer }
  | { kind: 'keying'; initiatorSessionId: number; job: KeyingJob };

const startupCipher = PacketCipher.startup();

/**
 * The responder's startup exchange (RFC 7016 §3.5.1): IHello → RHello with a stateless
 * cookie, IIKeying → a keying job once the cookie echoes. Nothing here keeps per-source
 * state, so a flood of IHellos from many addresses allocates nothing that outlives it.
 */
export class Responder {
  private readonly identity: ServerIdentity;
  private readonly cookies: CookieJar;
  private readonly writer = PacketWriter.forStartup();

  constructor(identity: ServerIdentity, cookies: CookieJar) {
    this.identity = identity;
    this.cookies = cookies;
  }

  onStartup(datagram: Buffer, from: Address, now: number): StartupResult {
    const packet = new PacketReader(startupCipher.open(datagram));
    if (packet.header.mode !== PacketMode.startup) return { kind: 'drop', reason: 'bad-mode' };
    // RFC 7016 §3.5.1: one handshake chunk per packet is enough; ignore the rest.
    if (!packet.nextChunk()) return { kind: 'drop', reason: 'no-chunk' };
    switch (packet.chunkType) {
      case ChunkType.iHello:
        return this.onIHello(readIHello(packet.chunk));
      case ChunkType.iiKeying:
        return this.onIIKeying(readIIKeying(packet.chunk), from, now);
      default:
        return { kind: 'drop', reason: 'unexpected-startup-chunk' };
    }
  }

  /** An IHello for us (answered by `rHello` or `redirect`), or a rendezvous lookup (RFC 7425 §4.4). */
  private onIHello(hello: IHello): StartupResult {
    const epd = parseEPD(hello.epd);
    const selection = epdSelects(epd, {
      fingerprint: this.identity.fingerprint,
      hostname: this.identity.hostname,
      acceptsAncillaryData: true,
    });
    if (selection === 'other-fingerprint')
      return { kind: 'rendezvous', epd, tag: hello.tag, peerId: epd.fingerprint! };
    if (selection === 'no') return { kind: 'drop', reason: 'not-selected' };
    return { kind: 'hello', tag: hello.tag, uri: epd.ancillaryData?.toString('utf8') ?? '' };
  }

  /** RFC 7016 §2.3.4: answer an IHello with a cookie and our certificate. */
  rHello(tag: Buffer, to: Address, now: number): Buffer {
    const pw = this.begin(now);
    writeRHello(pw.w, { tag, cookie: this.cookies.make(to, now), certificate: this.identity.certificate });
    return startupCipher.seal(pw.view(), 0);
  }

  private onIIKeying(k: IIKeying, from: Address, now: number): StartupResult {
    const check = this.cookies.check(k.cookie, from, now);
    if (check === 'moved') {
      // RFC 7016 §3.5.1.2: the initiator moved since RHello; give it a cookie for its new address.
      const pw = this.begin(now);
      writeCookieChange(pw.w, { oldCookie: k.cookie, newCookie: this.cookies.make(from, now) });
      return { kind: 'reply', datagram: startupCipher.seal(pw.view(), k.initiatorSessionId) };
    }
    if (check !== 'valid') return { kind: 'drop', reason: `cookie-${check}` };
    if (k.initiatorSessionId === 0) return { kind: 'drop', reason: 'bad-session-id' };
    return {
      kind: 'keying',
      initiatorSessionId: k.initiatorSessionId,
      job: { certificate: k.certificate, skic: k.skic, groups: this.identity.groups },
    };
  }

  /** RFC 7016 §2.3.8: RIKeying goes under the default key with SSID = the initiator's session ID. */
  riKeying(initiatorSessionId: number, responderSessionId: number, skrc: Buffer, now: number): Buffer {
    const pw = this.begin(now);
    writeRIKeying(pw.w, { responderSessionId, skrc, signature: FLASH_SIGNATURE });
    return startupCipher.seal(pw.view(), initiatorSessionId);
  }

  /** RFC 7016 §2.3.5: send the initiator to other addresses instead of answering. */
  redirect(tag: Buffer, addresses: OriginAddress[], now: number): Buffer {
    const pw = this.begin(now);
    writeRedirect(pw.w, { tag, addresses });
    return startupCipher.seal(pw.view(), 0);
  }

  private begin(now: number): PacketWriter {
    return this.writer.beginStartup(now);
  }
}
