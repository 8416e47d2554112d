import { createHash } from 'node:crypto';
import { Reader, Writer } from './binary.ts';
import { ProtocolError } from './errors.ts';

/**
 * NetGroup on the server side (RTMFP-NOTES §7): a client opens a flow with "GC" metadata
 * (`isGroupMetadata`), sends one join message on it, and gets peer IDs of other members back
 * on our return flow to it. rtmfp-cpp has no NetGroup; the formats come from Cumulus
 * (`CU:CumulusLib/sources/FlowGroup.cpp rawHandler`, `CU:Peer.cpp joinGroup/writeId`),
 * MonaServer (`MS:MonaCore/sources/RTMFP/RTMFPFlow.cpp`) and librtmfp
 * (`LR:sources/RTMFPWriter.cpp writeGroupConnect`, `LR:sources/GroupStream.cpp process`).
 * Neither message has the TC timestamp: the type byte is followed by the body at once.
 */
export const GroupMessageType = {
  /** Client → server: join (librtmfp GROUP_INIT, `LR:include/GroupStream.h`). */
  join: 0x01,
  /** Server → client: a member's peer ID (librtmfp GROUP_MEMBER; Cumulus: "unknown"). */
  member: 0x0b,
} as const;

/** Join tag: the bytes are a group specifier, hashed here (Cumulus and MonaServer's 0x10 branch). */
export const GROUP_SPECIFIER_TAG = 0x10;
/** Join tag librtmfp sends with an already-hashed ID (`01 21 15 <id>`); any tag but 0x10 means that. */
export const GROUP_ID_TAG = 0x15;
/** Group IDs and peer IDs are SHA-256 digests. */
export const GROUP_ID_BYTES = 32;
export const PEER_ID_BYTES = 32;
/** A group specifier longer than this is not one (Flash's are a few hundred characters). */
export const MAX_GROUP_SPECIFIER_BYTES = 4096;

/**
 * Cumulus's member list on join (`CU:Peer.cpp joinGroup`): the newest 5 others, then one at
 * random from those older. MonaServer sends the last 6 of a map sorted by peer ID instead
 * (`MS:MonaCore/sources/Peer.cpp joinGroup`), which is not join order (pitfall 17).
 */
export const JOIN_NEWEST_MEMBERS = 5;
/** On leave the successor learns the member this many places before it (Cumulus and MonaServer). */
export const LEAVE_LOOKBACK = 6;

/** A parsed join: the 32-byte group ID, and whether we hashed a specifier to get it. */
export interface GroupJoin {
  groupId: Buffer;
  hashed: boolean;
}

/**
 * Parses a join message, `01 · VLU L · tag · (L−1) bytes`. Tag 0x10: the bytes are a group
 * specifier and the group ID is their SHA-256; any other tag: the bytes are the 32-byte ID
 * (Cumulus reads 32 bytes whatever L says, MonaServer too; we insist L−1 = 32). Bytes after the
 * body are ignored, as both servers do. Throws ProtocolError('bad-group-join') on anything
 * else, so the caller can refuse that flow (not the session).
 */
export function decodeGroupJoin(message: Buffer): GroupJoin {
  const r = new Reader(message);
  try {
    const type = r.u8();
    if (type !== GroupMessageType.join)
      throw new ProtocolError('bad-group-join', `message type 0x${hex2(type)} is not a group join`);
    const body = r.field();
    if (body.length === 0) throw new ProtocolError('bad-group-join', 'group join with an empty body');
    const tag = body[0];
    const value = body.subarray(1);
    if (tag === GROUP_SPECIFIER_TAG) {
      if (value.length === 0 || value.length > MAX_GROUP_SPECIFIER_BYTES)
        throw new ProtocolError(
          'bad-group-join',
          `group specifier of ${value.length} bytes (1 to ${MAX_GROUP_SPECIFIER_BYTES})`,
        );
      return { groupId: sha256(value), hashed: true };
    }
    if (value.length !== GROUP_ID_BYTES)
      throw new ProtocolError(
        'bad-group-join',
        `group ID of ${value.length} bytes after tag 0x${hex2(tag)}, not ${GROUP_ID_BYTES}`,
      );
    return { groupId: Buffer.from(value), hashed: false };
  } catch (e) {
    if (e instanceof ProtocolError && e.reason !== 'bad-group-join')
      throw new ProtocolError('bad-group-join', `group join cut short: ${e.message}`);
    throw e;
  }
}

/**
 * A join message: with `groupId`, librtmfp's form `01 21 15 <id>`; with `specifier`, the 0x10
 * form whose SHA-256 the server takes as the ID.
 */
export function encodeGroupJoin(join: { groupId: Buffer } | { specifier: Buffer }): Buffer {
  const [tag, value] =
    'groupId' in join
      ? [GROUP_ID_TAG, checkLength(join.groupId, GROUP_ID_BYTES, 'group ID')]
      : [GROUP_SPECIFIER_TAG, join.specifier];
  const w = new Writer(8 + value.length)
    .u8(GroupMessageType.join)
    .vlu(1 + value.length)
    .u8(tag);
  return w.bytes(value).toBuffer();
}

/** `0B · <32-byte peer ID>` (`CU:Peer.cpp writeId`, read by `LR:GroupStream.cpp` as GROUP_MEMBER). */
export function encodeGroupMember(peerId: Buffer): Buffer {
  const out = Buffer.allocUnsafe(1 + PEER_ID_BYTES);
  out[0] = GroupMessageType.member;
  out.set(checkLength(peerId, PEER_ID_BYTES, 'peer ID'), 1);
  return out;
}

export function decodeGroupMember(message: Buffer): Buffer {
  if (message.length < 1 + PEER_ID_BYTES || message[0] !== GroupMessageType.member)
    throw new ProtocolError('bad-group-member', `not a group member message (${message.length} bytes)`);
  return Buffer.from(message.subarray(1, 1 + PEER_ID_BYTES));
}

/**
 * The group ID librtmfp computes for a group specifier "G:<hex>" (`LR:sources/Invoker.cpp
 * GroupSpecReader::parse` and `connect2Group`): SHA-256 of the text from "G:" up to, not
 * including, the `00` that ends the option list; hashed twice when the options hold 0x7f = 2
 * (a version 2 specifier). Option lengths are read as VLUs (librtmfp reads single bytes: the
 * same for lengths under 128).
 */
export function groupIdOfSpecifier(specifier: string): Buffer {
  if (!/^G:([0-9a-f]{2})*$/i.test(specifier))
    throw new RangeError(`a group specifier is "G:" and hex bytes, got "${specifier.slice(0, 40)}"`);
  const r = new Reader(Buffer.from(specifier.slice(2), 'hex'));
  let version2 = false;
  try {
    for (;;) {
      const length = r.vlu();
      if (length === 0) break;
      const option = r.bytes(length);
      if (option[0] === 0x7f && option.length === 2 && option[1] === 2) version2 = true;
    }
  } catch (e) {
    if (e instanceof ProtocolError)
      throw new RangeError(`group specifier without its 00 end marker: ${e.message}`);
    throw e;
  }
  const id = sha256(Buffer.from(specifier.slice(0, 2 + 2 * (r.pos - 1)), 'latin1'));
  return version2 ? sha256(id) : id;
}

/**
 * Whom a joining member is told about, from the members in join order (oldest first; the
 * joiner may be among them, it is skipped): the newest JOIN_NEWEST_MEMBERS others, newest
 * first, then one picked by `random(n)` (an index below n) among the others older than those —
 * Cumulus's rule (`CU:Peer.cpp joinGroup`, which could also pick the joiner itself on a re-join;
 * we do not).
 */
export function membersToIntroduce<T>(
  members: readonly T[],
  isJoiner: (member: T) => boolean,
  random: (n: number) => number,
): T[] {
  const out: T[] = [];
  let i = members.length;
  while (out.length < JOIN_NEWEST_MEMBERS && i > 0) {
    const m = members[--i];
    if (!isJoiner(m)) out.push(m);
  }
  if (out.length === JOIN_NEWEST_MEMBERS) {
    const older = members.slice(0, i).filter((m) => !isJoiner(m));
    if (older.length > 0) out.push(older[random(older.length)]);
  }
  return out;
}

/**
 * What keeps the mesh connected when a member leaves (`CU:Peer.cpp onUnjoinGroup`,
 * `MS:Peer.cpp onUnjoinGroup`): its successor in join order is told about the member
 * LEAVE_LOOKBACK places before that successor. `members` is the list before the leaver is
 * removed; undefined when the leaver was the newest or too few members are older.
 */
export function leaveIntroduction<T>(
  members: readonly T[],
  isLeaver: (member: T) => boolean,
): { successor: T; introduce: T } | undefined {
  const at = members.findIndex(isLeaver);
  if (at < 0 || at + 1 >= members.length) return undefined;
  const older = at + 1 - LEAVE_LOOKBACK;
  if (older < 0) return undefined;
  return { successor: members[at + 1], introduce: members[older] };
}

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

function checkLength(bytes: Buffer, length: number, what: string): Buffer {
  if (bytes.length !== length) throw new RangeError(`a ${what} is ${length} bytes, got ${bytes.length}`);
  return bytes;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
