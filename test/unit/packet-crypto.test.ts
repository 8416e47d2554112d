import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { loadNativePacket } from '../../runtime/host/native-packet.ts';
import type { AesEngine } from '../../runtime/rtmfp/aes-engine.ts';
import { checksum } from '../../runtime/rtmfp/checksum.ts';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';
import { DEFAULT_KEY, PacketCipher, readSessionId } from '../../runtime/rtmfp/packet-crypto.ts';

interface ViewKeys {
  encryptKeyAES128Hex: string;
  decryptKeyAES128Hex: string;
  hmacSendKeyHex: string;
  hmacRecvKeyHex: string;
}
interface PacketVector {
  description: string;
  packetHex: string;
  datagramHex: string;
  responderSessionIdHex?: string;
  initiatorSessionIdHex?: string;
}
interface Derivation {
  name: string;
  initiator: ViewKeys;
  responder: ViewKeys;
  packets: PacketVector[];
}

const load = (name: string) =>
  readFileSync(new URL(`../fixtures/vectors/${name}.json`, import.meta.url), 'utf8');
const cryptoVectors: {
  defaultKeyEncryption: {
    keyHex: string;
    examples: {
      description: string;
      packetHex: string;
      plaintextWithChecksumAndPaddingHex: string;
      datagramSessionId0Hex: string;
      datagramSessionId0000002aHex?: string;
    }[];
  };
  derivations: Derivation[];
} = JSON.parse(load('crypto'));
const handshake: { datagrams: { description: string; datagramHex: string; decryptedPacketHex?: string }[] } =
  JSON.parse(load('handshake'));
const [hmacSseq, plain] = cryptoVectors.derivations;
const hex = (s: string) => Buffer.from(s, 'hex');

/** Every AES path a session cipher can take here: node:crypto, and the native one when built. */
const { native } = loadNativePacket();
const ENGINES: { name: string; aes: AesEngine | undefined }[] = [
  { name: 'node:crypto', aes: undefined },
  ...(native ? [{ name: 'native AES-NI', aes: native }] : []),
];

/**
 * A datagram as the network hands it over: a buffer of its own. With an engine, seal() returns a
 * view of a shared buffer and open() decrypts in place, so tests copy on both sides.
 */
const copy = (b: Buffer) => Buffer.from(b);

function sessionCiphers(
  d: Derivation,
  hmac: boolean,
  aes: AesEngine | undefined,
): { initiator: PacketCipher; responder: PacketCipher } {
  const make = (v: ViewKeys) =>
    new PacketCipher({
      encryptKey: hex(v.encryptKeyAES128Hex),
      decryptKey: hex(v.decryptKeyAES128Hex),
      sendHmac: hmac ? { key: hex(v.hmacSendKeyHex), length: 16 } : undefined,
      recvHmac: hmac ? { key: hex(v.hmacRecvKeyHex), length: 16 } : undefined,
      sendSseq: hmac,
      recvSseq: hmac,
      aes,
    });
  return { initiator: make(d.initiator), responder: make(d.responder) };
}

function assertReason(reason: string, fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof ProtocolError && e.reason === reason);
}

/** The packet `open` returns is followed by 0xFF padding to the block boundary. */
function assertOpened(opened: Buffer, packet: Buffer): void {
  assert.deepEqual(opened.subarray(0, packet.length), packet);
  assert.ok(opened.subarray(packet.length).every((b) => b === 0xff));
}

/** Independent one-shot startup encryption: a fresh zero-IV cipher per packet. */
function referenceStartupSeal(packet: Buffer, sessionId: number): Buffer {
  const padded = Math.ceil((packet.length + 2) / 16) * 16;
  const plaintext = Buffer.alloc(padded, 0xff);
  packet.copy(plaintext, 2);
  plaintext.writeUInt16BE(checksum(plaintext, 2, padded), 0);
  const cipher = createCipheriv('aes-128-cbc', DEFAULT_KEY, Buffer.alloc(16)).setAutoPadding(false);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const id = Buffer.alloc(4);
  id.writeUInt32BE((sessionId ^ ciphertext.readUInt32BE(0) ^ ciphertext.readUInt32BE(4)) >>> 0);
  return Buffer.concat([id, ciphertext]);
}

describe('packet crypto: startup (default key)', () => {
  for (const e of cryptoVectors.defaultKeyEncryption.examples) {
    test(`seals and opens the default-key example byte for byte: ${e.description}`, () => {
      const packet = hex(e.packetHex);
      const startup = PacketCipher.startup();
      assert.equal(startup.seal(packet, 0).toString('hex'), e.datagramSessionId0Hex);
      if (e.datagramSessionId0000002aHex) {
        assert.equal(startup.seal(packet, 0x2a).toString('hex'), e.datagramSessionId0000002aHex);
        assert.equal(readSessionId(hex(e.datagramSessionId0000002aHex)), 0x2a);
      }
      assert.equal(readSessionId(hex(e.datagramSessionId0Hex)), 0);
      const opened = startup.open(hex(e.datagramSessionId0Hex));
      assert.equal(opened.toString('hex'), e.plaintextWithChecksumAndPaddingHex.slice(4));
      assertOpened(opened, packet);
    });
  }

  test('uses the key "Adobe Systems 02" (RFC 7425 §4.1)', () => {
    assert.equal(DEFAULT_KEY.toString('hex'), cryptoVectors.defaultKeyEncryption.keyHex);
  });

  test('opens the IHello and Redirect datagrams rtmfp-cpp sent', () => {
    for (const d of handshake.datagrams) {
      const opened = PacketCipher.startup().open(hex(d.datagramHex));
      if (d.decryptedPacketHex) assertOpened(opened, hex(d.decryptedPacketHex));
      assert.equal(opened[0] & 0x03, 3, 'startup mode');
    }
  });

  test('is one shared instance', () => {
    assert.equal(PacketCipher.startup(), PacketCipher.startup());
  });

  test('stays byte-identical to a fresh zero-IV cipher over hundreds of packets (CBC chain trick)', () => {
    const startup = PacketCipher.startup();
    for (let i = 0; i < 300; i++) {
      const packet = randomBytes(1 + ((i * 37) % 1300));
      const id = (i * 2654435761) >>> 0;
      const datagram = startup.seal(packet, id);
      assert.deepEqual(datagram, referenceStartupSeal(packet, id));
      assert.equal(readSessionId(datagram), id);
      assertOpened(startup.open(datagram), packet);
    }
  });

  test('does not keep the packet it sealed, nor the datagram it opened', () => {
    const startup = PacketCipher.startup();
    const packet = hex('0301000400010203');
    const datagram = startup.seal(packet, 0);
    const copy = Buffer.from(datagram);
    packet.fill(0);
    const opened = startup.open(datagram);
    datagram.fill(0);
    assertOpened(opened, hex('0301000400010203'));
    assert.deepEqual(startup.open(copy), opened);
  });

  test("flags a flipped bit as 'bad-checksum'", () => {
    const datagram = hex(cryptoVectors.defaultKeyEncryption.examples[0].datagramSessionId0Hex);
    for (const at of [4, 20, datagram.length - 1]) {
      const tampered = Buffer.from(datagram);
      tampered[at] ^= 0x01;
      assertReason('bad-checksum', () => PacketCipher.startup().open(tampered));
    }
  });

  test("rejects datagrams shorter than 20 bytes or not 4 + 16n as 'bad-length'", () => {
    assertReason('bad-length', () => readSessionId(Buffer.alloc(19)));
    assertReason('bad-length', () => PacketCipher.startup().open(Buffer.alloc(19)));
    assertReason('bad-length', () => PacketCipher.startup().open(Buffer.alloc(4 + 16 + 5)));
  });
});

for (const { name, aes } of ENGINES)
  describe(`packet crypto: session keys (${name})`, () => {
    test('seals HMAC-16 + sequence-numbered packets byte for byte both ways, and opens them', () => {
      const { initiator, responder } = sessionCiphers(hmacSseq, true, aes);
      for (const p of hmacSseq.packets) {
        const [from, to, id] = p.responderSessionIdHex
          ? [initiator, responder, p.responderSessionIdHex]
          : [responder, initiator, p.initiatorSessionIdHex ?? ''];
        const datagram = copy(from.seal(hex(p.packetHex), Number.parseInt(id, 16)));
        assert.equal(datagram.toString('hex'), p.datagramHex, p.description);
        assertOpened(to.open(datagram), hex(p.packetHex));
      }
    });

    test('seals a checksummed packet under the session key byte for byte', () => {
      const { initiator, responder } = sessionCiphers(plain, false, aes);
      const p = plain.packets[0];
      const datagram = copy(initiator.seal(hex(p.packetHex), 0x2a));
      assert.equal(datagram.toString('hex'), p.datagramHex);
      assertOpened(responder.open(datagram), hex(p.packetHex));
    });

    test("flags a flipped bit in the ciphertext or the HMAC as 'bad-hmac'", () => {
      const datagram = hex(hmacSseq.packets[0].datagramHex);
      for (const at of [4, 19, datagram.length - 16, datagram.length - 1]) {
        const { responder } = sessionCiphers(hmacSseq, true, aes);
        const tampered = Buffer.from(datagram);
        tampered[at] ^= 0x80;
        assertReason('bad-hmac', () => responder.open(tampered));
      }
    });

    test("flags a datagram whose HMAC was cut off as 'bad-length'", () => {
      const { responder } = sessionCiphers(hmacSseq, true, aes);
      assertReason('bad-length', () => responder.open(hex(hmacSseq.packets[0].datagramHex).subarray(0, 20)));
    });

    test("rejects a replayed datagram as 'replayed'", () => {
      const { responder } = sessionCiphers(hmacSseq, true, aes);
      const first = hex(hmacSseq.packets[0].datagramHex);
      responder.open(copy(first));
      assertReason('replayed', () => responder.open(copy(first)));
      responder.open(hex(hmacSseq.packets[1].datagramHex));
      assertReason('replayed', () => responder.open(copy(first)));
    });

    test('accepts reordering within 32 and rejects anything at or below highest - 32', () => {
      const { initiator, responder } = sessionCiphers(hmacSseq, true, aes);
      const sent = Array.from({ length: 200 }, (_, i) =>
        copy(initiator.seal(Buffer.from([0x0d, i & 0xff]), 0x2a)),
      );
      responder.open(copy(sent[150])); // highest = 150; sequence numbers ≥ 128 take two VLU bytes
      responder.open(copy(sent[119])); // 150 - 31: inside the window
      assertReason('replayed', () => responder.open(copy(sent[118]))); // 150 - 32
      assertReason('replayed', () => responder.open(copy(sent[3])));
      responder.open(copy(sent[149]));
      assertReason('replayed', () => responder.open(copy(sent[149])));
      for (let i = 151; i < 200; i++) if (i !== 170) assert.equal(responder.open(copy(sent[i]))[1], i & 0xff);
      assertReason('replayed', () => responder.open(copy(sent[150])));
      assertReason('replayed', () => responder.open(copy(sent[199 - 32])));
      assert.equal(responder.open(copy(sent[170]))[1], 170); // late, but never seen and inside the window
    });

    test('a rejected replay does not disturb the next packet', () => {
      const { initiator, responder } = sessionCiphers(hmacSseq, true, aes);
      const a = copy(initiator.seal(Buffer.from([0x0d, 1]), 1));
      const b = copy(initiator.seal(Buffer.from([0x0d, 2]), 1));
      responder.open(copy(a));
      assertReason('replayed', () => responder.open(copy(a)));
      assert.equal(responder.open(b)[1], 2);
    });

    test('round-trips many packets through long-lived ciphers in every mode', () => {
      const zeroIvDecrypt = (key: Buffer, ciphertext: Buffer) =>
        createDecipheriv('aes-128-cbc', key, Buffer.alloc(16)).setAutoPadding(false).update(ciphertext);
      for (const mode of [
        { hmac: false, sseq: false },
        { hmac: false, sseq: true }, // checksum after a VLU: odd and even covered lengths
        { hmac: true, sseq: false },
        { hmac: true, sseq: true },
      ]) {
        const keys = (v: ViewKeys) => ({
          encryptKey: hex(v.encryptKeyAES128Hex),
          decryptKey: hex(v.decryptKeyAES128Hex),
          sendHmac: mode.hmac ? { key: hex(v.hmacSendKeyHex), length: 10 } : undefined,
          recvHmac: mode.hmac ? { key: hex(v.hmacRecvKeyHex), length: 10 } : undefined,
          sendSseq: mode.sseq,
          recvSseq: mode.sseq,
          aes,
        });
        const a = new PacketCipher(keys(hmacSseq.initiator));
        const b = new PacketCipher(keys(hmacSseq.responder));
        const sendKey = hex(hmacSseq.initiator.encryptKeyAES128Hex);
        for (let i = 0; i < 300; i++) {
          const packet = randomBytes(1 + ((i * 53) % 1200));
          const datagram = copy(a.seal(packet, 7));
          const ciphertext = datagram.subarray(4, datagram.length - (mode.hmac ? 10 : 0));
          const fresh = zeroIvDecrypt(sendKey, ciphertext);
          assert.ok(
            fresh.includes(packet),
            `packet ${i} decrypts with a fresh zero IV (${JSON.stringify(mode)})`,
          );
          assertOpened(b.open(datagram), packet);
          const reply = randomBytes(1 + ((i * 29) % 700));
          assertOpened(a.open(copy(b.seal(reply, 9))), reply);
        }
      }
    });

    if (aes)
      test('seals into one buffer it reuses, and opens the datagram in place: no allocation per packet', () => {
        const { initiator, responder } = sessionCiphers(hmacSseq, true, aes);
        const first = initiator.seal(Buffer.from([0x0d, 1]), 1);
        const sealed = copy(first);
        const second = initiator.seal(Buffer.from([0x0d, 2]), 1);
        assert.equal(first.buffer, second.buffer, 'the same shared buffer');
        assert.notDeepEqual(first, sealed, 'the first datagram is gone once the next is sealed');
        const opened = responder.open(sealed);
        assert.equal(opened.buffer, sealed.buffer, 'decrypted where it lay');
        assert.equal(opened[1], 1);
      });

    test('refuses an HMAC length outside 4..32', () => {
      const key = Buffer.alloc(16);
      assert.throws(
        () =>
          new PacketCipher({
            encryptKey: key,
            decryptKey: key,
            sendHmac: { key, length: 40 },
            sendSseq: false,
            recvSseq: false,
          }),
        RangeError,
      );
    });
  });
