import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Address, AddressOrigin, parseAddress } from '../../runtime/rtmfp/address.ts';
import { Reader, Writer } from '../../runtime/rtmfp/binary.ts';
import {
  readForwardedIHello,
  readRedirect,
  writeForwardedIHello,
  writeRedirect,
} from '../../runtime/rtmfp/chunks.ts';
import {
  forwardedIHello,
  type IntroductionRequest,
  introduce,
  MAX_REDIRECT_ADDRESSES,
  MAX_REPORTED_ADDRESSES,
  parsePeerInfo,
  redirectAddresses,
} from '../../runtime/rtmfp/rendezvous.ts';
import { loadVectors } from '../support/vectors.ts';

/** test/fixtures/vectors/rendezvous.json: each field says which reference code its bytes follow. */
const fixture = loadVectors<{
  tag: string;
  targetPeerId: string;
  initiator: { observed: string; reported: string[] };
  target: { observed: string; setPeerInfo: string[] };
  redirectChunk: { hex: string };
  forwardedIHelloChunk: { hex: string };
}>('rendezvous');

const at = (text: string): Address => parseAddress(text) as Address;

function fixtureRequest(attempt = 0): IntroductionRequest {
  return {
    tag: Buffer.from(fixture.tag, 'hex'),
    attempt,
    initiator: { observed: at(fixture.initiator.observed), reported: fixture.initiator.reported.map(at) },
    targetPeerId: Buffer.from(fixture.targetPeerId, 'hex'),
    target: { observed: at(fixture.target.observed), reported: parsePeerInfo(fixture.target.setPeerInfo) },
  };
}

/** The chunk bytes as the node will put them in its packets. */
function chunkBytes(write: (w: Writer) => void): string {
  const w = new Writer();
  write(w);
  return w.toBuffer().toString('hex');
}

describe('setPeerInfo addresses', () => {
  test('keeps the IPv4 and [IPv6] literals librtmfp sends, dropping an IPv6 zone', () => {
    assert.deepEqual(parsePeerInfo(['192.168.1.20:50002', '[fd00::20]:50003', '[fd00::21%eth0]:50003']), [
      { address: '192.168.1.20', port: 50002 },
      { address: 'fd00::20', port: 50003 },
      { address: 'fd00::21', port: 50003 },
    ]);
  });

  test('skips what cannot go in a Redirect: host names, unspecified addresses, port 0, non-strings, duplicates', () => {
    const args = [
      null,
      12,
      'lan.example:5000',
      '0.0.0.0:5000',
      '[::]:5000',
      '10.0.0.1:0',
      '10.0.0.1',
      '[10.0.0.1]:80',
    ];
    assert.deepEqual(parsePeerInfo([...args, '10.0.0.2:80', '10.0.0.2:80']), [
      { address: '10.0.0.2', port: 80 },
    ]);
  });

  test(`keeps at most ${MAX_REPORTED_ADDRESSES} addresses`, () => {
    const many = Array.from({ length: 40 }, (_, i) => `10.0.1.${i + 1}:9000`);
    const kept = parsePeerInfo(many);
    assert.equal(kept.length, MAX_REPORTED_ADDRESSES);
    assert.deepEqual(kept[0], { address: '10.0.1.1', port: 9000 });
  });
});

describe('rendezvous introduction', () => {
  test('the Redirect to the initiator is byte for byte the fixture: observed (origin 2) first, then reported (origin 1)', () => {
    const { redirect } = introduce(fixtureRequest());
    const tag = Buffer.from(fixture.tag, 'hex');
    const hex = chunkBytes((w) => writeRedirect(w, { tag, addresses: redirect }));
    assert.equal(hex, fixture.redirectChunk.hex);
    const back = readRedirect(new Reader(Buffer.from(hex, 'hex'), 3));
    assert.deepEqual(back.addresses, redirect);
  });

  test('the Forwarded IHello to the target is byte for byte the fixture: its canonical EPD, the initiator observed, the tag', () => {
    const { forwarded } = introduce(fixtureRequest());
    const hex = chunkBytes((w) => writeForwardedIHello(w, forwarded));
    assert.equal(hex, fixture.forwardedIHelloChunk.hex);
    assert.deepEqual(readForwardedIHello(new Reader(Buffer.from(hex, 'hex'), 3)), forwarded);
  });

  test('repeated attempts cycle the reply address through the initiator observed, then reported (Cumulus)', () => {
    const req = fixtureRequest();
    const lan: Address = { address: '10.0.0.6', port: 40001 };
    req.initiator = { ...req.initiator, reported: [...req.initiator.reported, lan] };
    const replies = [0, 1, 2, 3].map((attempt) => forwardedIHello({ ...req, attempt }).replyAddress);
    assert.deepEqual(replies, [
      { address: '203.0.113.7', port: 40001, origin: AddressOrigin.observed },
      { address: '10.0.0.5', port: 40001, origin: AddressOrigin.reported },
      { address: '10.0.0.6', port: 40001, origin: AddressOrigin.reported },
      { address: '203.0.113.7', port: 40001, origin: AddressOrigin.observed },
    ]);
  });

  test('peers behind one NAT start with the initiator LAN address at the first attempt', () => {
    const req = fixtureRequest();
    req.target = { ...req.target, observed: { address: '203.0.113.7', port: 50002 } };
    assert.deepEqual(forwardedIHello(req).replyAddress, {
      address: '10.0.0.5',
      port: 40001,
      origin: AddressOrigin.reported,
    });
    const alone = forwardedIHello({ ...req, initiator: { ...req.initiator, reported: [] } });
    assert.equal(alone.replyAddress.origin, AddressOrigin.observed);
  });

  test(`a Redirect holds at most ${MAX_REDIRECT_ADDRESSES} addresses, and a retry names the reported ones left out`, () => {
    const reported = Array.from({ length: 10 }, (_, i) => ({ address: `10.0.2.${i + 1}`, port: 7000 }));
    const target = { observed: { address: '198.51.100.9', port: 7000 }, reported };
    const seen = new Set<string>();
    for (const attempt of [0, 1]) {
      const list = redirectAddresses(target, attempt);
      assert.equal(list.length, MAX_REDIRECT_ADDRESSES);
      assert.deepEqual(list[0], { ...target.observed, origin: AddressOrigin.observed });
      for (const a of list.slice(1)) {
        assert.equal(a.origin, AddressOrigin.reported);
        seen.add(a.address);
      }
    }
    assert.equal(seen.size, reported.length);
  });

  test('no address is ever origin 0, and a reported address equal to the observed one is not listed twice', () => {
    const observed = { address: '198.51.100.9', port: 7000 };
    const list = redirectAddresses(
      { observed, reported: [observed, { address: '10.0.0.9', port: 7000 }] },
      3,
    );
    assert.deepEqual(
      list.map((a) => [a.address, a.origin]),
      [
        ['198.51.100.9', AddressOrigin.observed],
        ['10.0.0.9', AddressOrigin.reported],
      ],
    );
  });
});
