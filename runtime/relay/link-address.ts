import type { NodeRecord } from '../cluster/state.ts';
import { type Address, parseAddress } from '../rtmfp/address.ts';

/** Addresses a socket binds to but nobody can send to. */
const UNSPECIFIED = new Set(['0.0.0.0', '::']);

/**
 * Where another node takes media links: its first RTMFP listen address that names one host,
 * else its public address (which may be a host name, for the caller to resolve). Undefined
 * when the record has neither (a node still starting).
 */
export function linkAddress(record: Pick<NodeRecord, 'rtmfp' | 'publicAddress'>): Address | undefined {
  for (const text of record.rtmfp) {
    const a = parseAddress(text);
    if (a && !UNSPECIFIED.has(a.address)) return a;
  }
  return parseAddress(record.publicAddress);
}
