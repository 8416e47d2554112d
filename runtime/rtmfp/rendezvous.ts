import {
  type Address,
  AddressOrigin,
  isIPv4,
  isIPv6,
  type OriginAddress,
  parseAddress,
  sameAddress,
} from './address.ts';
import type { AmfValue } from './amf-value.ts';
import { makeEPD } from './certificate.ts';
import type { ForwardedIHello } from './chunks.ts';

/**
 * LAN addresses kept per client from setPeerInfo. librtmfp reports one per interface
 * (`LR:sources/RTMFPSession.cpp onNetConnectionSuccess`); more is not a real host.
 */
export const MAX_REPORTED_ADDRESSES = 16;

/**
 * Addresses in one Redirect to a P2P initiator. librtmfp keeps at most 7 peer addresses per
 * handshake and ignores the rest (`LR:include/RTMFP.h RTMFP_MAX_ADDRESSES`, checked in
 * `LR:sources/RTMFP.cpp ReadAddresses`); rtmfp-cpp takes 24 (`REDIRECT_THRESHOLD`).
 */
export const MAX_REDIRECT_ADDRESSES = 7;

const UNSPECIFIED = new Set(['0.0.0.0', '::']);

/**
 * The LAN addresses a client reported with `setPeerInfo` (RFC 7425 §5.3; RTMFP-NOTES §6):
 * "a.b.c.d:port" and "[v6]:port" strings, as librtmfp writes them (`LR:RTMFPSession.cpp
 * onNetConnectionSuccess` → `SocketAddress` text, `[host%scope]:port` for IPv6). Only IP
 * literals are kept, as rtmfp-cpp's `Address::setFromPresentation` (which tcserver uses for
 * them) accepts only those: a host name would need DNS and could not be put in a Redirect. The
 * zone of a scoped IPv6 address means nothing to another host and is dropped. Unspecified
 * addresses are left out: librtmfp reads 0.0.0.0:0 in a Redirect as "that peer is gone"
 * (`LR:RTMFP.cpp ReadAddress` returns ADDRESS_UNSPECIFIED for it). Non-strings, malformed
 * strings and duplicates are skipped; at most MAX_REPORTED_ADDRESSES are kept.
 */
export function parsePeerInfo(args: readonly AmfValue[]): Address[] {
  const out: Address[] = [];
  for (const arg of args) {
    if (out.length >= MAX_REPORTED_ADDRESSES) break;
    if (typeof arg !== 'string') continue;
    const a = parseAddress(arg);
    if (!a) continue;
    const address = a.address.split('%')[0];
    const literal = arg.startsWith('[') ? isIPv6(address) : isIPv4(address);
    if (!literal || UNSPECIFIED.has(address)) continue;
    const parsed = { address, port: a.port };
    if (!out.some((b) => sameAddress(b, parsed))) out.push(parsed);
  }
  return out;
}

/** A connected client as the rendezvous sees it. */
export interface RendezvousPeer {
  /** The address its session comes from (its NAT's public side). */
  observed: Address;
  /** What it reported with setPeerInfo (its LAN side). */
  reported: readonly Address[];
}

/**
 * An introduction: an IHello at `initiator.observed` whose EPD names `targetPeerId`
 * (RTMFP-NOTES §2.2, §6).
 */
export interface IntroductionRequest {
  /** The IHello's tag, echoed in both answers. */
  tag: Buffer;
  /**
   * IHellos with this tag for this target before this one: 0 for the first. Cumulus counts per
   * target session and tag (`CU:ServerSession.h helloAttempt`).
   */
  attempt: number;
  initiator: RendezvousPeer;
  /** The target's peer ID: the 32-byte fingerprint the IHello's EPD names. */
  targetPeerId: Buffer;
  target: RendezvousPeer;
}

export interface Introduction {
  /** For the Redirect (RFC 7016 §2.3.5) sent back to the initiator. */
  redirect: OriginAddress[];
  /** For the Forwarded IHello (RFC 7016 §2.3.3) sent to the target in its session. */
  forwarded: ForwardedIHello;
}

/** Both answers to a rendezvous IHello (RFC 7016 §3.5.1.4–6). */
export function introduce(req: IntroductionRequest): Introduction {
  return {
    redirect: redirectAddresses(req.target, req.attempt),
    forwarded: forwardedIHello(req),
  };
}

/**
 * Where the initiator should send its IHellos: the target's observed address first (origin
 * observed), then its reported ones (origin reported), as rtmfp-cpp's tcserver
 * (`RC:test/tcserver.cpp doRedirect`), Cumulus (`CU:RTMFPServer.cpp p2pHandshake`) and
 * MonaServer (`MS:RTMFPHandshake.cpp`) all list them. Never origin 0: librtmfp reads it as
 * "that peer is gone" (pitfall 25). Bounded by MAX_REDIRECT_ADDRESSES; when the reported
 * addresses do not all fit, the ones that do rotate with `attempt`, so a retrying initiator
 * hears of each in turn (Cumulus lists them all and has no bound).
 */
export function redirectAddresses(target: RendezvousPeer, attempt: number): OriginAddress[] {
  const out: OriginAddress[] = [{ ...target.observed, origin: AddressOrigin.observed }];
  const reported = target.reported.filter((a) => !sameAddress(a, target.observed));
  const room = MAX_REDIRECT_ADDRESSES - 1;
  const start = reported.length > room ? (attempt * room) % reported.length : 0;
  for (let i = 0; i < Math.min(room, reported.length); i++) {
    out.push({ ...reported[(start + i) % reported.length], origin: AddressOrigin.reported });
  }
  return out;
}

/**
 * The Forwarded IHello for the target: its canonical EPD (`21 0F` + its peer ID, as Cumulus and
 * MonaServer rebuild it, `CU:ServerSession.cpp p2pHandshake`; librtmfp accepts no other, it
 * checks the bytes `22 21 0F`, `LR:RTMFPSession.cpp handleP2PAddressExchange`), the tag, and the
 * address the target answers to.
 *
 * That reply address is the initiator's observed one (origin observed) on the first attempt.
 * On a repeated attempt, or at once when both peers share a public IP (behind one NAT the
 * public address often does not loop back), it cycles through the initiator's observed then
 * reported addresses: index (attempt + (same public IP ? 1 : 0)) mod count, origin observed for
 * index 0 and reported for the others — Cumulus's rule (`CU:ServerSession.cpp p2pHandshake`,
 * called from `CU:RTMFPServer.cpp p2pHandshake`), also MonaServer's (`MS:RTMFPSession.cpp
 * p2pHandshake`, which adds an "interior" guess we do not make).
 */
export function forwardedIHello(req: IntroductionRequest): ForwardedIHello {
  const { initiator, target, attempt } = req;
  const sameNat = initiator.observed.address === target.observed.address;
  const candidates: Address[] = [initiator.observed];
  if (attempt > 0 || sameNat) {
    for (const a of initiator.reported) if (!sameAddress(a, initiator.observed)) candidates.push(a);
  }
  const index = (attempt + (sameNat ? 1 : 0)) % candidates.length;
  const origin = index === 0 ? AddressOrigin.observed : AddressOrigin.reported;
  return {
    epd: makeEPD({ fingerprint: req.targetPeerId }),
    replyAddress: { ...candidates[index], origin },
    tag: req.tag,
  };
}
