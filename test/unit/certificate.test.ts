import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  epdSelects,
  makeEPD,
  makeServerCertificate,
  makeStaticCertificate,
  parseCertificate,
  parseEPD,
} from '../../runtime/rtmfp/certificate.ts';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';

interface CertVector {
  hex: string;
  fingerprintHex: string;
  canonicalPartHex?: string;
}

const v: {
  serverCertificate: CertVector & { extraRandomnessHex: string };
  serverCertificateWithNonCanonicalPart: CertVector;
  staticDHClientCertificate: CertVector & { dhPublicKeyHex: string; peerIdHex: string };
  tcconnClientCertificate: CertVector;
  ephemeralDHClientCertificate: CertVector;
  epds: { description: string; hex: string }[];
} = JSON.parse(readFileSync(new URL('../fixtures/vectors/certificate.json', import.meta.url), 'utf8'));
const hex = (s: string) => Buffer.from(s, 'hex');
const [uriEpd, peerIdEpd, fingerprintAndUriEpd, hostnameEpd] = v.epds.map((e) => hex(e.hex));
const URI = 'rtmfp://127.0.0.1:1935/app';

function assertBadCert(bytes: Buffer): void {
  assert.throws(
    () => parseCertificate(bytes),
    (e: unknown) => e instanceof ProtocolError && e.reason === 'bad-certificate',
  );
}

describe('certificate', () => {
  test("builds tcserver's certificate byte for byte and fingerprints it", () => {
    const s = v.serverCertificate;
    const bytes = makeServerCertificate({ groups: [16, 14, 2], randomness: hex(s.extraRandomnessHex) });
    assert.equal(bytes.toString('hex'), s.hex);
    const cert = parseCertificate(bytes);
    assert.equal(cert.acceptsAncillaryData, true);
    assert.deepEqual(cert.ephemeralGroups, [16, 14, 2]);
    assert.equal(cert.staticKeys.size, 0);
    assert.equal(cert.hostname, undefined);
    assert.equal(cert.canonical.toString('hex'), s.canonicalPartHex);
    assert.equal(cert.fingerprint.toString('hex'), s.fingerprintHex);
  });

  test('puts a hostname first and reads it back', () => {
    const bytes = makeServerCertificate({ hostname: 'example.com', groups: [2] });
    assert.equal(bytes.subarray(0, 13).toString('hex'), '0c006578616d706c652e636f6d');
    assert.equal(bytes.length, 13 + 2 + 3 + 66);
    assert.equal(parseCertificate(bytes).hostname, 'example.com');
  });

  test('makes fresh 64-byte randomness, so each server fingerprint is unique', () => {
    const a = parseCertificate(makeServerCertificate({ groups: [2] }));
    const b = parseCertificate(makeServerCertificate({ groups: [2] }));
    assert.notDeepEqual(a.fingerprint, b.fingerprint);
  });

  test('hashes up to and including the first marker, ignoring options after it', () => {
    const s = v.serverCertificateWithNonCanonicalPart;
    const cert = parseCertificate(hex(s.hex));
    assert.equal(cert.canonical.toString('hex'), s.canonicalPartHex);
    assert.equal(cert.fingerprint.toString('hex'), s.fingerprintHex);
    assert.deepEqual(cert.ephemeralGroups, [16, 14, 2]);
    // the tail is a 0x0e option; a 0x1d there must not make the certificate static as well
    const staticTail = Buffer.concat([hex(v.serverCertificate.hex), hex('00031d0201')]);
    assert.equal(parseCertificate(staticTail).staticKeys.size, 0);
  });

  test('builds the Flash-like static client certificate; its fingerprint is the peer ID', () => {
    const s = v.staticDHClientCertificate;
    const bytes = makeStaticCertificate([{ group: 2, publicKey: hex(s.dhPublicKeyHex) }]);
    assert.equal(bytes.toString('hex'), s.hex);
    const cert = parseCertificate(bytes);
    assert.equal(cert.fingerprint.toString('hex'), s.peerIdHex);
    assert.equal(cert.staticKeys.get(2)?.toString('hex'), s.dhPublicKeyHex);
    assert.deepEqual(cert.ephemeralGroups, []);
    assert.equal(cert.acceptsAncillaryData, false);
  });

  test("rebuilds tcconn's three-group static certificate from its keys", () => {
    const s = v.tcconnClientCertificate;
    const cert = parseCertificate(hex(s.hex));
    assert.deepEqual([...cert.staticKeys.keys()], [16, 14, 2]);
    assert.deepEqual(
      [...cert.staticKeys.values()].map((k) => k.length),
      [512, 256, 128],
    );
    const rebuilt = makeStaticCertificate(
      [...cert.staticKeys].map(([group, publicKey]) => ({ group, publicKey })),
    );
    assert.equal(rebuilt.toString('hex'), s.hex);
    assert.equal(cert.fingerprint.toString('hex'), s.fingerprintHex);
  });

  test('reads an ephemeral client certificate', () => {
    const s = v.ephemeralDHClientCertificate;
    const cert = parseCertificate(hex(s.hex));
    assert.deepEqual(cert.ephemeralGroups, [2]);
    assert.equal(cert.fingerprint.toString('hex'), s.fingerprintHex);
  });

  test('rejects a certificate that is both static and ephemeral, or neither', () => {
    assertBadCert(Buffer.concat([hex(v.serverCertificate.hex), hex(v.staticDHClientCertificate.hex)]));
    assertBadCert(hex('010a'));
    assertBadCert(Buffer.alloc(0));
  });

  test('rejects a truncated certificate', () => {
    const bytes = hex(v.staticDHClientCertificate.hex).subarray(0, 60);
    assert.throws(
      () => parseCertificate(bytes),
      (e: unknown) => e instanceof ProtocolError && e.reason === 'truncated',
    );
  });
});

describe('EPD', () => {
  const server = parseCertificate(hex(v.serverCertificate.hex));
  const serverSelf = { fingerprint: server.fingerprint, acceptsAncillaryData: true };
  const clientFingerprint = hex(v.staticDHClientCertificate.fingerprintHex);

  test('builds and reads the four EPDs of the vectors', () => {
    assert.deepEqual(makeEPD({ ancillaryData: URI }), uriEpd);
    assert.deepEqual(parseEPD(uriEpd), { ancillaryData: Buffer.from(URI) });

    assert.deepEqual(makeEPD({ fingerprint: clientFingerprint }), peerIdEpd);
    assert.deepEqual(parseEPD(peerIdEpd), { fingerprint: clientFingerprint });

    assert.deepEqual(
      makeEPD({ ancillaryData: Buffer.from(URI), fingerprint: server.fingerprint }),
      fingerprintAndUriEpd,
    );
    assert.deepEqual(parseEPD(fingerprintAndUriEpd), {
      fingerprint: server.fingerprint,
      ancillaryData: Buffer.from(URI),
    });

    assert.deepEqual(makeEPD({ hostname: 'example.com' }), hostnameEpd);
    assert.deepEqual(parseEPD(hostnameEpd), { hostname: 'example.com' });
  });

  test('refuses to build an empty EPD', () => {
    assert.throws(() => makeEPD({}), RangeError);
  });

  test('a URI EPD selects a server that accepts ancillary data, not a client', () => {
    assert.equal(epdSelects(parseEPD(uriEpd), serverSelf), 'self');
    assert.equal(
      epdSelects(parseEPD(uriEpd), { fingerprint: clientFingerprint, acceptsAncillaryData: false }),
      'no',
    );
  });

  test('a fingerprint decides alone: ours is self, another is a rendezvous lookup', () => {
    assert.equal(epdSelects(parseEPD(fingerprintAndUriEpd), serverSelf), 'self');
    assert.equal(epdSelects(parseEPD(peerIdEpd), serverSelf), 'other-fingerprint');
    const otherWithUri = makeEPD({ fingerprint: clientFingerprint, ancillaryData: URI });
    assert.equal(epdSelects(parseEPD(otherWithUri), serverSelf), 'other-fingerprint');
    assert.equal(epdSelects(parseEPD(makeEPD({ fingerprint: Buffer.alloc(5) })), serverSelf), 'no');
  });

  test('a required hostname must equal ours', () => {
    assert.equal(epdSelects(parseEPD(hostnameEpd), { ...serverSelf, hostname: 'example.com' }), 'self');
    assert.equal(epdSelects(parseEPD(hostnameEpd), { ...serverSelf, hostname: 'example.org' }), 'no');
    assert.equal(epdSelects(parseEPD(hostnameEpd), serverSelf), 'no');
    const both = parseEPD(makeEPD({ hostname: 'example.com', ancillaryData: URI }));
    assert.equal(epdSelects(both, { ...serverSelf, hostname: 'example.com' }), 'self');
    assert.equal(
      epdSelects(both, { ...serverSelf, hostname: 'example.com', acceptsAncillaryData: false }),
      'no',
    );
  });

  test('an EPD without hostname, ancillary data or fingerprint selects nobody', () => {
    assert.equal(epdSelects(parseEPD(Buffer.alloc(0)), serverSelf), 'no');
    assert.equal(epdSelects(parseEPD(hex('03140102')), serverSelf), 'no');
  });

  test('steps over markers, as rtmfp-cpp does', () => {
    assert.deepEqual(parseEPD(Buffer.concat([hex('00'), uriEpd])), { ancillaryData: Buffer.from(URI) });
  });
});
