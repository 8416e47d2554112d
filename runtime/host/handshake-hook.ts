import type { Address } from '../rtmfp/address.ts';

/** An IHello for an app, as the node hands it over. */
export interface HandshakeRequest {
  from: Address;
  uri: string;
  attempts: number;
  /** The IHello's tag, hex: the same in every IHello of this connection attempt, to any node. */
  tag: string;
}

/** The hook's answer for an IHello that gets none (no node may take the client): it retries. */
export const UNANSWERED = 'unanswered';

/**
 * Decides where an IHello goes (the apps' onHandshake): undefined, or a promise of it, answers
 * here; IP addresses redirect (RFC 7016 §2.3.5); UNANSWERED drops it.
 */
export type HandshakeHook = (
  request: HandshakeRequest,
  now: number,
) => Promise<Address[] | undefined | typeof UNANSWERED> | undefined;
