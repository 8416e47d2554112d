import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProtocolError } from '../../runtime/rtmfp/errors.ts';
import {
  decodeGroupJoin,
  decodeGroupMember,
  encodeGroupJoin,
  encodeGroupMember,
  groupIdOfSpecifier,
  leaveIntroduction,
  membersToIntroduce,
} from '../../runtime/rtmfp/net-group.ts';
import { GROUP_METADATA, isGroupMetadata } from '../../runtime/rtmfp/tc-message.ts';
import { prng } from '../support/prng.ts';
import { loadVectors } from '../support/vectors.ts';

/** test/fixtures/vectors/netgroup.json: each entry says which reference code its bytes follow. */
const fixture = loadVectors<{
  gcMetadata: { hex: string };
  specifiers: { specifier: string; groupId: string }[];
  joins: { name: string; hex: string; groupId: string; hashed: boolean }[];
  badJoins: { hex: string; why: string }[];
  member: { peerId: string; hex: string };
}>('netgroup');
const hex = (h: string) => Buffer.from(h, 'hex');

describe('NetGroup wire', () => {
  test('our return flow metadata is the "GC" librtmfp and Cumulus use', () => {
    assert.equal(GROUP_METADATA.toString('hex'), fixture.gcMetadata.hex);
    assert.equal(isGroupMetadata(GROUP_METADATA), true);
  });

  for (const j of fixture.joins) {
    test(`decodes the ${j.name} to its group ID`, () => {
      const join = decodeGroupJoin(hex(j.hex));
      assert.deepEqual(join, { groupId: hex(j.groupId), hashed: j.hashed });
    });
  }

  test('encodes joins as librtmfp (hashed ID) and as the specifier form', () => {
    const [byId, bySpecifier] = fixture.joins;
    assert.equal(encodeGroupJoin({ groupId: hex(byId.groupId) }).toString('hex'), byId.hex);
    assert.equal(encodeGroupJoin({ specifier: Buffer.from('G:test') }).toString('hex'), bySpecifier.hex);
  });

  test('a long specifier takes a two-byte VLU length and still round-trips', () => {
    const specifier = Buffer.alloc(300, 0x41);
    const message = encodeGroupJoin({ specifier });
    assert.deepEqual(message.subarray(0, 4), Buffer.from([0x01, 0x82, 0x2d, 0x10]));
    assert.equal(decodeGroupJoin(message).hashed, true);
  });

  for (const bad of fixture.badJoins) {
    test(`refuses a malformed join with a clear error: ${bad.why}`, () => {
      assert.throws(
        () => decodeGroupJoin(hex(bad.hex)),
        (e: unknown) => e instanceof ProtocolError && e.reason === 'bad-group-join' && e.message.length > 10,
      );
    });
  }

  test('10,000 mutated joins: each is a 32-byte group ID or a bad-group-join error, nothing else', () => {
    const random = prng(9);
    const seeds = fixture.joins.map((j) => hex(j.hex));
    let refused = 0;
    for (let i = 0; i < 10_000; i++) {
      const message = Buffer.from(seeds[i % seeds.length]);
      for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--)
        message[Math.floor(random() * Math.min(message.length, 6))] = Math.floor(random() * 256);
      const cut = random() < 0.3 ? message.subarray(0, Math.floor(random() * message.length)) : message;
      try {
        assert.equal(decodeGroupJoin(cut).groupId.length, 32);
      } catch (e) {
        assert.ok(e instanceof ProtocolError && e.reason === 'bad-group-join', String(e));
        refused++;
      }
    }
    assert.ok(refused > 1000, `mutants reached the error paths (${refused})`);
  });

  test('the member message is 0B and the peer ID, no timestamp, and reads back', () => {
    const message = encodeGroupMember(hex(fixture.member.peerId));
    assert.equal(message.toString('hex'), fixture.member.hex);
    assert.deepEqual(decodeGroupMember(message), hex(fixture.member.peerId));
    assert.throws(() => encodeGroupMember(Buffer.alloc(31)), /32 bytes/);
    assert.throws(() => decodeGroupMember(message.subarray(0, 20)), ProtocolError);
  });

  for (const s of fixture.specifiers) {
    test(`computes librtmfp's group ID for ${s.specifier}`, () => {
      assert.equal(groupIdOfSpecifier(s.specifier).toString('hex'), s.groupId);
    });
  }

  test('a specifier without its end marker, or not hex, is refused', () => {
    assert.throws(() => groupIdOfSpecifier('G:027f02'), /end marker/);
    assert.throws(() => groupIdOfSpecifier('chat-room'), /"G:"/);
  });
});

describe('NetGroup member selection', () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `m${i}`);

  test('a joiner hears of the 5 newest others, newest first, and one random older one (Cumulus)', () => {
    const members = [...ids(9), 'me'];
    const asked: number[] = [];
    const picked = membersToIntroduce(
      members,
      (m) => m === 'me',
      (n) => {
        asked.push(n);
        return 1;
      },
    );
    assert.deepEqual(picked, ['m8', 'm7', 'm6', 'm5', 'm4', 'm1']);
    assert.deepEqual(asked, [4]);
  });

  test('with 5 others or fewer there is no random pick; the joiner is skipped wherever it stands', () => {
    const never = () => assert.fail('no random pick expected');
    assert.deepEqual(
      membersToIntroduce(['a', 'me', 'b', 'c', 'd', 'e'], (m) => m === 'me', never),
      ['e', 'd', 'c', 'b', 'a'],
    );
    assert.deepEqual(
      membersToIntroduce(['me'], (m) => m === 'me', never),
      [],
    );
    assert.deepEqual(
      membersToIntroduce([], () => false, never),
      [],
    );
  });

  test('the random older member is never the joiner itself (a re-join)', () => {
    const members = ['me', 'a', 'b', 'c', 'd', 'e', 'f'];
    const picked = membersToIntroduce(
      members,
      (m) => m === 'me',
      () => 0,
    );
    assert.deepEqual(picked, ['f', 'e', 'd', 'c', 'b', 'a']);
  });

  test('on leave the successor hears of the member 6 places before it (Cumulus and MonaServer)', () => {
    const members = ids(10);
    assert.deepEqual(
      leaveIntroduction(members, (m) => m === 'm7'),
      { successor: 'm8', introduce: 'm2' },
    );
    assert.deepEqual(
      leaveIntroduction(members, (m) => m === 'm5'),
      { successor: 'm6', introduce: 'm0' },
    );
  });

  test('no introduction when the leaver was the newest, too few are older, or it is not a member', () => {
    const members = ids(10);
    assert.equal(
      leaveIntroduction(members, (m) => m === 'm9'),
      undefined,
    );
    assert.equal(
      leaveIntroduction(members, (m) => m === 'm4'),
      undefined,
    );
    assert.equal(
      leaveIntroduction(members, (m) => m === 'x'),
      undefined,
    );
  });
});
