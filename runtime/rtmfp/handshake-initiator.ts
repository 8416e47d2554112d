import { randomBytes, randomInt } from 'node:crypto';
import type { OriginAddress } from './address.ts';
import { makeEPD, makeServerCertificate, parseCertificate } from './certificate.ts';
import {
  ChunkType,
  FLASH_SIGNATURE,
  readCookieChange,
  readRedirect,
  readRHello,
  readRIKeying,
  writeIHello,
  writeIIKeying,
} from './chunks.ts';
import { computeDHSecret, type DHKeyPair, generateDHKeyPair, SUPPORTED_DH_GROUPS } from './dh.ts';
import { ProtocolError } from './errors.ts';
import {
  CLIENT_POLICY,
  deriveSessionKeys,
  type KeyingPolicy,
  makeInitiatorKeyingComponent,
  negotiate,
  offerFlags,
  parseKeyingComponent,
} from './keying.ts';
import { PacketMode, PacketReader, PacketWriter } from './packet.ts';
import { PacketCipher, type PacketCipherOptions } from './packet-crypto.ts';

/** RFC 7016 §2.3.2: tags are opaque; every implementation uses 16 bytes. */
const TAG_LENGTH = 16;

export interface InitiatorOptions {
  /** The rtmfp:// URI, sent as ancillary data in the EPD (RFC 7425 §4.4.2). */
  uri?: string;
  /**
   * A peer to open to instead (RFC 7425 §4.4.4): the EPD names its fingerprint, and only an
   * RHello carrying a certificate with that fingerprint is answered.
   */
  peerId?: Buffer;
  /** Our certificate (default: a fresh one); a client reuses its own so its peer ID stays one. */
  certificate?: Buffer;
  /** DH groups in our order of preference; the first the responder offers is used. */
  groups?: readonly number[];
  /** HMAC / sequence-number policy; default like tcconn: both required. */
  policy?: KeyingPolicy;
  /** Our session ID (default: random). rtmfp-cpp hands out small ones again after a restart. */
  localId?: number;
}

export type InitiatorStep =
  | { kind: 'send'; datagram: Buffer }
  | { kind: 'redirect'; addresses: OriginAddress[] }
  | {
      kind: 'established';
      cipher: PacketCipherOptions;
      localId: number;
      remoteId: number;
      serverFingerprint: Buffer;
    }
  | { kind: 'ignore'; reason: string };

const startupCipher = PacketCipher.startup();

/**
 * The initiator's startup exchange (RFC 7016 §3.5.1): IHello, RHello → IIKeying with an
 * ephemeral DH key, RIKeying → session keys. Pure: the caller owns the socket and resends
 * `current()` on its retransmission timer.
 */
export class Initiator {
  readonly tag = randomBytes(TAG_LENGTH);
  readonly localId: number;
  readonly certificate: Buffer;
  private readonly epd: Buffer;
  private readonly peer: Buffer | undefined;
  private readonly groups: readonly number[];
  private readonly policy: KeyingPolicy;
  private readonly writer = PacketWriter.forStartup();
  private keyPair: DHKeyPair | undefined;
  private skic: Buffer | undefined;
  private cookie: Buffer | undefined;
  private serverFingerprint: Buffer | undefined;
  private iikeying: Buffer | undefined;
  private done = false;

  constructor(o: InitiatorOptions) {
    if (o.peerId === undefined && o.uri === undefined)
      throw new RangeError('an initiator needs a URI or a peer ID to open to');
    this.peer = o.peerId;
    this.epd = o.peerId ? makeEPD({ fingerprint: o.peerId }) : makeEPD({ ancillaryData: o.uri });
    this.groups = o.groups ?? SUPPORTED_DH_GROUPS;
    this.policy = o.policy ?? CLIENT_POLICY;
    this.localId = o.localId ?? randomInt(1, 0xffffffff);
    // An ephemeral certificate: our fingerprint (peer ID) comes from its 64 random bytes.
    this.certificate = o.certificate ?? makeServerCertificate({ groups: this.groups });
  }

  get peerId(): string {
    return parseCertificate(this.certificate).fingerprint.toString('hex');
  }

  /** The datagram to (re)send now: IHello until RHello arrives, then IIKeying. */
  current(now: number): Buffer {
    if (this.iikeying) return this.iikeying;
    const pw = this.begin(now);
    writeIHello(pw.w, { epd: this.epd, tag: this.tag });
    return startupCipher.seal(pw.view(), 0);
  }

  /** A startup datagram from a responder (session ID 0, or ours for RIKeying/Cookie Change). */
  onStartup(datagram: Buffer, now: number): InitiatorStep {
    if (this.done) return { kind: 'ignore', reason: 'established' };
    const packet = new PacketReader(startupCipher.open(datagram));
    if (packet.header.mode !== PacketMode.startup) return { kind: 'ignore', reason: 'bad-mode' };
    if (!packet.nextChunk()) return { kind: 'ignore', reason: 'no-chunk' };
    const r = packet.chunk;
    switch (packet.chunkType) {
      case ChunkType.rHello: {
        const hello = readRHello(r);
        if (!hello.tag.equals(this.tag)) return { kind: 'ignore', reason: 'tag' };
        if (this.iikeying) return { kind: 'ignore', reason: 'duplicate-rhello' };
        return this.onRHello(hello.cookie, hello.certificate, now);
      }
      case ChunkType.redirect: {
        const redirect = readRedirect(r);
        if (!redirect.tag.equals(this.tag)) return { kind: 'ignore', reason: 'tag' };
        return { kind: 'redirect', addresses: redirect.addresses };
      }
      case ChunkType.cookieChange: {
        const change = readCookieChange(r);
        if (!this.cookie || !change.oldCookie.equals(this.cookie))
          return { kind: 'ignore', reason: 'cookie' };
        this.cookie = change.newCookie;
        this.iikeying = this.makeIIKeying(now);
        return { kind: 'send', datagram: this.iikeying };
      }
      case ChunkType.riKeying: {
        const keying = readRIKeying(r);
        return this.onRIKeying(keying.skrc, keying.responderSessionId);
      }
      default:
        return { kind: 'ignore', reason: 'unexpected-chunk' };
    }
  }

  private onRHello(cookie: Buffer, certificate: Buffer, now: number): InitiatorStep {
    const cert = parseCertificate(certificate);
    // RFC 7425 §4.4.4: a peer is who its certificate's fingerprint says; another endpoint
    // answering for it (a stale address, a spoofer) is not the peer asked for.
    if (this.peer && !cert.fingerprint.equals(this.peer)) return { kind: 'ignore', reason: 'wrong-peer' };
    const group = this.groups.find((g) => cert.ephemeralGroups.includes(g));
    if (group === undefined)
      throw new ProtocolError('negotiation', 'responder offers no DH group we support');
    this.serverFingerprint = cert.fingerprint;
    this.keyPair = generateDHKeyPair(group);
    this.skic = makeInitiatorKeyingComponent({
      group,
      ephemeralPublicKey: this.keyPair.publicKey,
      hmac: { flags: offerFlags(this.policy.hmac), length: this.policy.hmacLength },
      sseq: { flags: offerFlags(this.policy.sseq) },
    });
    this.cookie = cookie;
    this.iikeying = this.makeIIKeying(now);
    return { kind: 'send', datagram: this.iikeying };
  }

  private onRIKeying(skrcBytes: Buffer, responderSessionId: number): InitiatorStep {
    if (!this.keyPair || !this.skic) return { kind: 'ignore', reason: 'early-rikeying' };
    const skrc = parseKeyingComponent(skrcBytes);
    if (!skrc.ephemeralKey || skrc.ephemeralKey.group !== this.keyPair.group) {
      throw new ProtocolError('bad-keying', 'RIKeying lacks a DH key in our group');
    }
    const negotiated = negotiate(this.policy, skrc);
    const keys = deriveSessionKeys({
      sharedSecret: computeDHSecret(this.keyPair.group, this.keyPair.privateKey, skrc.ephemeralKey.publicKey),
      nearComponent: this.skic,
      farComponent: skrcBytes,
      sendHmac: negotiated.sendHmac,
      recvHmac: negotiated.recvHmac,
    });
    this.done = true;
    return {
      kind: 'established',
      localId: this.localId,
      remoteId: responderSessionId,
      serverFingerprint: this.serverFingerprint!,
      cipher: {
        encryptKey: keys.encryptKey,
        decryptKey: keys.decryptKey,
        sendHmac: keys.sendHmacKey && { key: keys.sendHmacKey, length: negotiated.sendHmacLength },
        recvHmac: keys.recvHmacKey && { key: keys.recvHmacKey, length: negotiated.recvHmacLength },
        sendSseq: negotiated.sendSseq,
        recvSseq: negotiated.recvSseq,
      },
    };
  }

  private makeIIKeying(now: number): Buffer {
    const pw = this.begin(now);
    writeIIKeying(pw.w, {
      initiatorSessionId: this.localId,
      cookie: this.cookie!,
      certificate: this.certificate,
      skic: this.skic!,
      signature: FLASH_SIGNATURE,
    });
    return startupCipher.seal(pw.view(), 0);
  }

  private begin(now: number): PacketWriter {
    return this.writer.beginStartup(now);
  }
}
