import type { Address } from '../rtmfp/address.ts';

/** An IHello for an app, as the node hands it over. */
export interface HandshakeRequest {
  from: Address;
  uri: string;
  attempts: number;
}

/**
 * Decides where an IHello goes (the apps' onHandshake): undefined, or a promise of it, answers
 * here; IP addresses redirect (RFC 7016 §2.3.5).
 */
export type HandshakeHook = (
  request: HandshakeRequest,
  now: number,
) => Promise<Address[] | undefined> | undefined;
