import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';
import {
  CLIENT_POLICY,
  deriveSessionKeys,
  Flags,
  type KeyingComponent,
  makeInitiatorKeyingComponent,
  makeResponderKeyingComponent,
  negotiate,
  negotiateFlags,
  parseKeyingComponent,
  responderNegotiation,
  SERVER_POLICY,
} from '../../runtime/rtmfp/keying.ts';

interface ViewKeys {
  encryptKeyFull32Hex: string;
  encryptKeyAES128Hex: string;
  decryptKeyFull32Hex: string;
  decryptKeyAES128Hex: string;
  nearNonceHex: string;
  farNonceHex: string;
  hmacSendKeyHex: string;
  hmacRecvKeyHex: string;
}

interface Derivation {
  name: string;
  skicHex: string;
  skrcHex: string;
  skicOptions: { type: string; valueHex: string }[];
  skrcOptions: { type: string; valueHex: string }[];
  sharedSecretHex: string;
  initiator: ViewKeys;
  responder: ViewKeys;
}

const vectors: { derivations: Derivation[]; negotiationFlags: string } = JSON.parse(
  readFileSync(new URL('../fixtures/vectors/crypto.json', import.meta.url), 'utf8'),
);
const [hmacSseq, plain, ephemeral] = vectors.derivations;
const hex = (s: string) => Buffer.from(s, 'hex');
const RANDOMNESS = hex(hmacSseq.skicOptions[1].valueHex);
const responderKey = hex(hmacSseq.skrcOptions[2].valueHex.slice(2));
const CU_PREFIX = '031a0000021e00';
/** librtmfp's SKIC: group select, 64 random bytes, HMAC SOR length 10, SSEQ SOR. */
const LIBRTMFP_SKIC = Buffer.concat([hex('021d02410e'), RANDOMNESS, hex('031a020a021e02')]);

function assertNegotiationError(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof ProtocolError && e.reason === 'negotiation');
}

/** "(not negotiated; would be <hex>)" → <hex>; a plain hex string as is. */
function keyHex(s: string): string | undefined {
  return /([0-9a-f]{64})/.exec(s)?.[1];
}

describe('keying components', () => {
  test('negotiation flags are SND 0x04, SOR 0x02, REQ 0x01 as the vectors say', () => {
    assert.match(vectors.negotiationFlags, /0x04 SND.*0x02 SOR.*0x01 REQ/);
    assert.deepEqual(Flags, { SND: 0x04, SOR: 0x02, REQ: 0x01 });
  });

  for (const d of vectors.derivations) {
    test(`parses the ${d.name} SKIC and SKRC`, () => {
      for (const [bytes, options] of [
        [d.skicHex, d.skicOptions],
        [d.skrcHex, d.skrcOptions],
      ] as const) {
        const c = parseKeyingComponent(hex(bytes));
        for (const { type, valueHex } of options) {
          const value = hex(valueHex);
          if (type === '0x0d')
            assert.deepEqual(c.ephemeralKey, { group: value[0], publicKey: value.subarray(1) });
          if (type === '0x1d') assert.equal(c.groupSelect, value[0]);
          if (type === '0x0e') assert.deepEqual(c.extraRandomness, value);
          if (type === '0x1a') assert.deepEqual(c.hmac, { flags: value[0], length: value[1] });
          if (type === '0x1e') assert.deepEqual(c.sseq, { flags: value[0] });
        }
      }
    });
  }

  test('builds the static initiator SKIC byte for byte, by default asking like tcconn (07, 16)', () => {
    assert.equal(
      makeInitiatorKeyingComponent({ group: 2, extraRandomness: RANDOMNESS }).toString('hex'),
      hmacSseq.skicHex,
    );
    const plainSkic = makeInitiatorKeyingComponent({
      group: 2,
      extraRandomness: RANDOMNESS,
      hmac: { flags: Flags.SOR, length: 16 },
      sseq: { flags: Flags.SOR },
    });
    assert.equal(plainSkic.toString('hex'), plain.skicHex);
    const fresh = parseKeyingComponent(makeInitiatorKeyingComponent({ group: 16 }));
    assert.equal(fresh.groupSelect, 16);
    assert.equal(fresh.extraRandomness?.length, 64);
  });

  test('builds the ephemeral initiator SKIC byte for byte', () => {
    const key = parseKeyingComponent(hex(ephemeral.skicHex)).ephemeralKey;
    assert.ok(key);
    const skic = makeInitiatorKeyingComponent({
      group: key.group,
      ephemeralPublicKey: key.publicKey,
      hmac: { flags: Flags.SOR, length: 16 },
      sseq: { flags: Flags.SOR },
    });
    assert.equal(skic.toString('hex'), ephemeral.skicHex);
  });

  test('refuses to announce an HMAC length outside 4..32', () => {
    assert.throws(
      () => makeInitiatorKeyingComponent({ group: 2, hmac: { flags: 7, length: 3 } }),
      RangeError,
    );
    assert.throws(
      () => makeInitiatorKeyingComponent({ group: 2, hmac: { flags: 7, length: 33 } }),
      RangeError,
    );
  });

  test("builds rtmfp-cpp's SKRC order (SSEQ, HMAC, DH key) byte for byte", () => {
    const skrc = makeResponderKeyingComponent({
      group: 2,
      publicKey: responderKey,
      hmac: { flags: 7, length: 16 },
      sseq: { flags: 7 },
    });
    assert.equal(skrc.toString('hex'), hmacSseq.skrcHex);
    const plainSkrc = makeResponderKeyingComponent({
      group: 2,
      publicKey: responderKey,
      hmac: { flags: 2, length: 16 },
      sseq: { flags: 2 },
    });
    assert.equal(plainSkrc.toString('hex'), plain.skrcHex);
  });
});

describe('negotiation', () => {
  test('negotiateFlags: REQ against a peer offering neither SND nor SOR fails', () => {
    assertNegotiationError(() => negotiateFlags(0, { sendAlways: true, recvRequired: true }));
    assertNegotiationError(() => negotiateFlags(Flags.REQ, { sendAlways: false, recvRequired: true }));
  });

  test('negotiateFlags: peer SND means verify on receive, peer REQ means always send', () => {
    const off = { sendAlways: false, recvRequired: false };
    assert.deepEqual(negotiateFlags(Flags.SND, off), { sendAlways: false, recvRequired: true });
    assert.deepEqual(negotiateFlags(Flags.REQ, off), { sendAlways: true, recvRequired: false });
    assert.deepEqual(negotiateFlags(Flags.SOR, off), off);
    assert.deepEqual(negotiateFlags(Flags.SOR, { sendAlways: true, recvRequired: true }), {
      sendAlways: true,
      recvRequired: true,
    });
  });

  test('the server answers a REQ initiator the rtmfp-cpp way and uses HMAC + SSEQ both ways', () => {
    const { answer, negotiated } = responderNegotiation(parseKeyingComponent(hex(hmacSseq.skicHex)));
    assert.deepEqual(answer, { hmac: { flags: 7, length: 16 }, sseq: { flags: 7 } });
    assert.deepEqual(negotiated, {
      sendHmac: true,
      sendHmacLength: 16,
      recvHmac: true,
      recvHmacLength: 16,
      sendSseq: true,
      recvSseq: true,
    });
    const skrc = makeResponderKeyingComponent({ group: 2, publicKey: responderKey, ...answer });
    assert.equal(skrc.toString('hex'), hmacSseq.skrcHex);
  });

  for (const [who, skic] of [
    ['rtmfp-cpp without REQ', hex(plain.skicHex)],
    ['librtmfp', LIBRTMFP_SKIC],
  ] as const) {
    test(`the server answers ${who} with the exact Cumulus bytes and uses neither`, () => {
      const { answer, negotiated } = responderNegotiation(parseKeyingComponent(skic));
      assert.deepEqual(answer, {});
      assert.equal(
        negotiated.sendHmac || negotiated.recvHmac || negotiated.sendSseq || negotiated.recvSseq,
        false,
      );
      const skrc = makeResponderKeyingComponent({ group: 2, publicKey: responderKey, ...answer });
      assert.equal(skrc.subarray(0, 11).toString('hex'), `${CU_PREFIX}81020d02`);
      assert.deepEqual(skrc.subarray(11), responderKey);
      assert.ok(skrc.length >= 138, 'librtmfp needs at least 138 bytes');
    });
  }

  test('the server still verifies what an initiator sends always without requesting', () => {
    const sndOnly: KeyingComponent = {
      hmac: { flags: Flags.SND | Flags.SOR, length: 10 },
      sseq: { flags: Flags.SOR },
    };
    const { answer, negotiated } = responderNegotiation(sndOnly);
    assert.deepEqual(answer, {});
    assert.equal(negotiated.recvHmac, true);
    assert.equal(negotiated.recvHmacLength, 10);
    assert.equal(negotiated.sendHmac, false);
  });

  test('our client (SND|SOR|REQ) accepts an rtmfp-cpp SKRC and uses everything both ways', () => {
    const n = negotiate(CLIENT_POLICY, parseKeyingComponent(hex(hmacSseq.skrcHex)));
    assert.deepEqual(n, {
      sendHmac: true,
      sendHmacLength: 16,
      recvHmac: true,
      recvHmacLength: 16,
      sendSseq: true,
      recvSseq: true,
    });
  });

  test('our client refuses a Cumulus-style SKRC that offers nothing', () => {
    const cu = makeResponderKeyingComponent({ group: 2, publicKey: responderKey });
    assertNegotiationError(() => negotiate(CLIENT_POLICY, parseKeyingComponent(cu)));
  });

  test('a required HMAC with a length outside 4..32 fails the negotiation', () => {
    for (const length of [0, 3, 33]) {
      const peer: KeyingComponent = {
        hmac: { flags: Flags.SND | Flags.SOR, length },
        sseq: { flags: Flags.SOR },
      };
      assertNegotiationError(() => negotiate(SERVER_POLICY, peer));
    }
  });
});

describe('session key derivation', () => {
  for (const d of vectors.derivations) {
    for (const side of ['initiator', 'responder'] as const) {
      test(`derives the ${d.name} keys and nonces in the ${side} view`, () => {
        const expected = d[side];
        const [near, far] = side === 'initiator' ? [d.skicHex, d.skrcHex] : [d.skrcHex, d.skicHex];
        const keys = deriveSessionKeys({
          sharedSecret: hex(d.sharedSecretHex),
          nearComponent: hex(near),
          farComponent: hex(far),
          sendHmac: true,
          recvHmac: true,
        });
        assert.equal(keys.encryptKey.toString('hex'), expected.encryptKeyAES128Hex);
        assert.equal(keys.decryptKey.toString('hex'), expected.decryptKeyAES128Hex);
        assert.equal(keys.encryptKeyFull.toString('hex'), expected.encryptKeyFull32Hex);
        assert.equal(keys.decryptKeyFull.toString('hex'), expected.decryptKeyFull32Hex);
        assert.equal(keys.nearNonce.toString('hex'), expected.nearNonceHex);
        assert.equal(keys.farNonce.toString('hex'), expected.farNonceHex);
        const initiatorView = d.initiator;
        const [send, recv] =
          side === 'initiator'
            ? [initiatorView.hmacSendKeyHex, initiatorView.hmacRecvKeyHex]
            : [initiatorView.hmacRecvKeyHex, initiatorView.hmacSendKeyHex];
        assert.equal(keys.sendHmacKey?.toString('hex'), keyHex(send));
        assert.equal(keys.recvHmacKey?.toString('hex'), keyHex(recv));
      });
    }
  }

  test('leaves out the HMAC keys that were not negotiated', () => {
    const keys = deriveSessionKeys({
      sharedSecret: hex(plain.sharedSecretHex),
      nearComponent: hex(plain.skicHex),
      farComponent: hex(plain.skrcHex),
      sendHmac: false,
      recvHmac: false,
    });
    assert.equal(keys.sendHmacKey, undefined);
    assert.equal(keys.recvHmacKey, undefined);
    assert.equal(keys.encryptKey.length, 16);
  });
});
