import { hash, randomBytes } from 'node:crypto';
import { Reader, Writer } from './binary.ts';
import { ProtocolError } from './errors.ts';
import { writeOption } from './option.ts';

/**
 * Flash-profile certificates (RFC 7425 §4.3) and Endpoint Discriminators (RFC 7425 §4.4).
 * Both are RFC 7016 §2.1.3 option lists.
 */

/** RFC 7425 §4.3 certificate option types. */
export const CertOption = {
  hostname: 0x00,
  acceptsAncillaryData: 0x0a,
  extraRandomness: 0x0e,
  supportedEphemeralGroup: 0x15,
  staticPublicKey: 0x1d,
} as const;

/** RFC 7425 §4.4 EPD option types. */
export const EpdOption = {
  requiredHostname: 0x00,
  ancillaryData: 0x0a,
  fingerprint: 0x0f,
} as const;

/** A fingerprint is a SHA-256 (RFC 7425 §4.3.2); Flash calls its hex form the peer ID. */
export const FINGERPRINT_LENGTH = 32;
/** rtmfp-cpp and Cumulus put 64 random bytes in a server certificate (one SHA-256 block). */
const EXTRA_RANDOMNESS_LENGTH = 64;

export interface Certificate {
  hostname?: string;
  acceptsAncillaryData: boolean;
  /** RFC 7425 §4.3.3.4 groups offered for ephemeral DH, in the certificate's order. */
  ephemeralGroups: number[];
  /** RFC 7425 §4.3.3.5 static DH public keys by group. */
  staticKeys: Map<number, Buffer>;
  /** The bytes the fingerprint covers (a view of the input). */
  canonical: Buffer;
  fingerprint: Buffer;
}

export interface EPD {
  hostname?: string;
  ancillaryData?: Buffer;
  fingerprint?: Buffer;
}

/** What an endpoint knows about itself to decide whether an IHello's EPD names it. */
export interface EpdSelf {
  fingerprint: Buffer;
  hostname?: string;
  acceptsAncillaryData: boolean;
}

export type EpdSelection = 'self' | 'other-fingerprint' | 'no';

/**
 * A server certificate as rtmfp-cpp's tcserver builds it: [hostname] · accepts ancillary
 * data · one supported-group option per ephemeral DH group · 64 bytes of extra randomness.
 * Servers use ephemeral DH (RFC 7425 §7); the randomness keeps the fingerprint unique.
 */
export function makeServerCertificate(o: {
  hostname?: string;
  groups: readonly number[];
  randomness?: Buffer;
}): Buffer {
  const w = new Writer(128);
  if (o.hostname !== undefined) writeOption(w, CertOption.hostname, Buffer.from(o.hostname, 'utf8'));
  writeOption(w, CertOption.acceptsAncillaryData);
  for (const group of o.groups)
    writeOption(w, CertOption.supportedEphemeralGroup, new Writer(4).vlu(group).view());
  writeOption(w, CertOption.extraRandomness, o.randomness ?? randomBytes(EXTRA_RANDOMNESS_LENGTH));
  return w.toBuffer();
}

/**
 * A static-DH client certificate as tcconn sends it: one static public key option per group
 * (RFC 7425 §4.3.3.5). Flash Player's is the same with group 2 only.
 */
export function makeStaticCertificate(keys: readonly { group: number; publicKey: Buffer }[]): Buffer {
  const w = new Writer(1024);
  for (const k of keys) writeOption(w, CertOption.staticPublicKey, groupAndBytes(k.group, k.publicKey));
  return w.toBuffer();
}

/**
 * Decodes a certificate. Options after the first marker are not canonical (RFC 7425 §4.3.2)
 * and are ignored. The fingerprint hashes everything up to AND including that marker, the
 * whole certificate when there is none: rtmfp-cpp does so, and its peer IDs must match ours.
 * A certificate must offer ephemeral groups or static keys, not both and not neither.
 */
export function parseCertificate(bytes: Buffer): Certificate {
  const cert: Certificate = {
    acceptsAncillaryData: false,
    ephemeralGroups: [],
    staticKeys: new Map(),
    canonical: bytes,
    fingerprint: Buffer.alloc(0),
  };
  let canonicalEnd = -1;
  for (const { type, value, end } of listOptions(bytes)) {
    if (canonicalEnd >= 0) continue;
    switch (type) {
      case MARKER:
        canonicalEnd = end;
        break;
      case CertOption.hostname:
        cert.hostname ??= value.toString('utf8');
        break;
      case CertOption.acceptsAncillaryData:
        cert.acceptsAncillaryData = true;
        break;
      case CertOption.supportedEphemeralGroup:
        cert.ephemeralGroups.push(new Reader(value).vlu());
        break;
      case CertOption.staticPublicKey: {
        const r = new Reader(value);
        const group = r.vlu();
        if (!cert.staticKeys.has(group)) cert.staticKeys.set(group, r.rest());
        break;
      }
    }
  }
  const isEphemeral = cert.ephemeralGroups.length > 0;
  const isStatic = cert.staticKeys.size > 0;
  if (isEphemeral === isStatic) {
    throw new ProtocolError(
      'bad-certificate',
      'certificate must offer either ephemeral DH groups or static keys',
    );
  }
  if (canonicalEnd >= 0) cert.canonical = bytes.subarray(0, canonicalEnd);
  cert.fingerprint = hash('sha256', cert.canonical, 'buffer');
  return cert;
}

/**
 * Decodes an EPD. Like rtmfp-cpp, the last option of each kind wins and markers are skipped.
 * An EPD with none of the three options selects nobody (see epdSelects).
 */
export function parseEPD(bytes: Buffer): EPD {
  const epd: EPD = {};
  for (const { type, value } of listOptions(bytes)) {
    if (type === EpdOption.requiredHostname) epd.hostname = value.toString('utf8');
    else if (type === EpdOption.ancillaryData) epd.ancillaryData = value;
    else if (type === EpdOption.fingerprint) epd.fingerprint = value;
  }
  return epd;
}

/**
 * Builds an EPD in rtmfp-cpp's option order: fingerprint, ancillary data, hostname.
 * `makeEPD({ fingerprint })` is the canonical EPD of an endpoint (RFC 7425 §4.4.4).
 */
export function makeEPD(o: {
  fingerprint?: Buffer;
  ancillaryData?: Buffer | string;
  hostname?: string;
}): Buffer {
  if (o.fingerprint === undefined && o.ancillaryData === undefined && o.hostname === undefined) {
    throw new RangeError('makeEPD needs a fingerprint, ancillary data or a hostname');
  }
  const w = new Writer(64);
  if (o.fingerprint !== undefined) writeOption(w, EpdOption.fingerprint, o.fingerprint);
  if (o.ancillaryData !== undefined) {
    const data = typeof o.ancillaryData === 'string' ? Buffer.from(o.ancillaryData, 'utf8') : o.ancillaryData;
    writeOption(w, EpdOption.ancillaryData, data);
  }
  if (o.hostname !== undefined) writeOption(w, EpdOption.requiredHostname, Buffer.from(o.hostname, 'utf8'));
  return w.toBuffer();
}

/**
 * Whether an IHello's EPD names this endpoint (RFC 7425 §4.4; rtmfp-cpp `isSelectedByEPD`):
 * a fingerprint decides alone — ours → 'self', another 32-byte one → 'other-fingerprint'
 * (a rendezvous lookup for a connected peer); otherwise a required hostname must equal ours
 * and ancillary data needs a certificate that accepts it. An EPD with none of them → 'no'.
 */
export function epdSelects(epd: EPD, self: EpdSelf): EpdSelection {
  if (epd.fingerprint !== undefined) {
    if (epd.fingerprint.equals(self.fingerprint)) return 'self';
    return epd.fingerprint.length === FINGERPRINT_LENGTH ? 'other-fingerprint' : 'no';
  }
  if (epd.hostname === undefined && epd.ancillaryData === undefined) return 'no';
  if (epd.hostname !== undefined && epd.hostname !== self.hostname) return 'no';
  if (epd.ancillaryData !== undefined && !self.acceptsAncillaryData) return 'no';
  return 'self';
}

/** An option of a list, or a marker (`type` = MARKER); `end` is the offset just after it. */
interface ListItem {
  type: number;
  value: Buffer;
  end: number;
}

const MARKER = -1;

/**
 * Every option of a list, markers included. option.ts's readOptions stops at the first
 * marker; certificates need the marker's offset and EPD parsing steps over markers.
 */
function listOptions(bytes: Buffer): ListItem[] {
  const items: ListItem[] = [];
  const r = new Reader(bytes);
  while (r.remaining > 0) {
    const length = r.vlu();
    if (length === 0) {
      items.push({ type: MARKER, value: EMPTY, end: r.pos });
      continue;
    }
    const body = new Reader(r.bytes(length));
    const type = body.vlu();
    items.push({ type, value: body.rest(), end: r.pos });
  }
  return items;
}

const EMPTY = Buffer.alloc(0);

function groupAndBytes(group: number, bytes: Buffer): Buffer {
  return new Writer(bytes.length + 4).vlu(group).bytes(bytes).toBuffer();
}
