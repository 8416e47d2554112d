/**
 * Node A asks node B to tell B's group member `to` about the member `peer` (RTMFP-NOTES §7,
 * Cumulus `Peer::onUnjoinGroup`): a member left at A, and its successor in the group's
 * cluster-wide join order is connected to B. B sends `0B <peer>` on `to`'s group flow, so the
 * mesh stays connected across nodes. Carried signed on `rpc:<B>`.
 */
export interface GroupIntroduction {
  /** The group ID, 64 lowercase hex digits. */
  group: string;
  /** The member of B to tell, by peer ID. */
  to: string;
  /** The member it learns of, by peer ID. */
  peer: string;
}

const DIGEST_HEX = /^[0-9a-f]{64}$/;

/** A request as it arrived from another node, checked; throws naming the field that is wrong. */
export function parseGroupIntroduction(value: unknown): GroupIntroduction {
  if (typeof value !== 'object' || value === null) throw new Error('group-introduce: not an object');
  const fields = value as Record<string, unknown>;
  for (const field of ['group', 'to', 'peer'] as const) {
    const v = fields[field];
    if (typeof v !== 'string' || !DIGEST_HEX.test(v))
      throw new Error(`group-introduce: ${field} must be 64 lowercase hex digits (SHA-256)`);
  }
  return { group: fields.group as string, to: fields.to as string, peer: fields.peer as string };
}
