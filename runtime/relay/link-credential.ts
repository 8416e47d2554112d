import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AmfObject, AmfValue } from '../rtmfp/amf-value.ts';

/**
 * The app name a node-to-node media link connects to (TC `connect`, RFC 7425 §5.3.1). App
 * names may not start with "_" (config.ts NAME_RULE), so no deployed app can be reached by it,
 * nor take it.
 */
export const RELAY_APP = '_fnhost-relay';

/** A link request older (or further in the future) than this is refused; its nonce is kept as long. */
export const LINK_WINDOW_MS = 60_000;
/** Random bytes of a request's nonce. */
const NONCE_BYTES = 16;
/** Nonces remembered at most: past it, requests are refused rather than memory grown ('busy'). */
const MAX_NONCES = 100_000;
/** Labels of the two signed strings, so one can never pass for the other (or for a node message). */
const REQUEST_LABEL = 'fnhost relay link request 1';
const ACCEPT_LABEL = 'fnhost relay link accept 1';

/**
 * What node B sends as the argument of its `connect` to node A (`RELAY_APP`): who it is, which
 * node it means, when, a nonce, and an HMAC-SHA256 with the cluster secret over those and the
 * peer ID of the session's initiator certificate, so a request is good for one session only.
 */
export interface LinkRequest {
  /** B's node id and epoch (its process start). */
  node: string;
  epoch: string;
  /** A's node id: a request for the process that had A's address before is refused. */
  to: string;
  /** ms since the epoch, B's clock. */
  time: number;
  /** Hex, NONCE_BYTES random bytes. */
  nonce: string;
  /** Hex HMAC-SHA256. */
  mac: string;
}

/** What A adds to its `_result` info: B learns it reached the node it meant, one that holds the secret. */
export interface LinkAcceptance {
  node: string;
  epoch: string;
  /** Hex HMAC-SHA256 over A's node, epoch, B's nonce and B's peer ID. */
  mac: string;
}

/** Why a link request or acceptance was refused (counted by reason). */
export type LinkRefusal = 'malformed' | 'forged' | 'misdirected' | 'stale' | 'replayed' | 'busy';

/** A link request or acceptance that does not authenticate; `reason` is what is counted. */
export class LinkAuthError extends Error {
  readonly reason: LinkRefusal;

  constructor(reason: LinkRefusal, message: string) {
    super(`relay link: ${message}`);
    this.name = 'LinkAuthError';
    this.reason = reason;
  }
}

/** B's request to node `to`, for the session whose initiator certificate has `peerId`. */
export function signLinkRequest(
  secret: Buffer,
  o: { node: string; epoch: string; to: string; peerId: string },
  now: number,
): LinkRequest {
  const nonce = randomBytes(NONCE_BYTES).toString('hex');
  const time = Math.round(now);
  const signed = [REQUEST_LABEL, o.node, o.epoch, o.to, o.peerId, String(time), nonce];
  const mac = hmac(secret, signed).toString('hex');
  return { node: o.node, epoch: o.epoch, to: o.to, time, nonce, mac };
}

/** A's answer to `request`, for the session whose initiator certificate has `peerId`. */
export function signLinkAcceptance(
  secret: Buffer,
  self: { node: string; epoch: string },
  request: LinkRequest,
  peerId: string,
): LinkAcceptance {
  const signed = [ACCEPT_LABEL, self.node, self.epoch, request.nonce, peerId];
  const mac = hmac(secret, signed).toString('hex');
  return { node: self.node, epoch: self.epoch, mac };
}

/**
 * B's check of A's `_result` info: signed with the secret, by node `expected`, for our request
 * on this session. Returns A's epoch; throws LinkAuthError.
 */
export function checkLinkAcceptance(
  secret: Buffer,
  info: AmfValue,
  expected: string,
  request: LinkRequest,
  peerId: string,
): string {
  const fields = isObject(info) ? info : {};
  const { node, epoch, mac } = fields;
  if (typeof node !== 'string' || typeof epoch !== 'string' || typeof mac !== 'string')
    throw new LinkAuthError('malformed', 'the far node accepted without node, epoch and mac');
  if (!macMatches(mac, hmac(secret, [ACCEPT_LABEL, node, epoch, request.nonce, peerId])))
    throw new LinkAuthError('forged', 'the far node does not hold the cluster secret (its mac is wrong)');
  if (node !== expected)
    throw new LinkAuthError('misdirected', `reached node ${node}, not ${expected}, at that address`);
  return epoch;
}

/**
 * A's side: checks link requests against the secret, this node's id and the replay window,
 * and remembers nonces for as long as a request could still be fresh. Pure: time comes in.
 */
export class LinkRequestVerifier {
  private readonly secret: Buffer;
  /** nonce → the request's time, oldest first. */
  private readonly seen = new Map<string, number>();

  constructor(secret: Buffer) {
    this.secret = secret;
  }

  /**
   * The request in a `connect`'s first argument, for node `self` on the session whose initiator
   * certificate has `peerId`. Throws LinkAuthError.
   */
  verify(value: AmfValue, self: string, peerId: string, now: number): LinkRequest {
    const request = parseLinkRequest(value);
    const expected = hmac(this.secret, [
      REQUEST_LABEL,
      request.node,
      request.epoch,
      request.to,
      peerId,
      String(request.time),
      request.nonce,
    ]);
    if (!macMatches(request.mac, expected))
      throw new LinkAuthError('forged', `node ${request.node} signed with another secret (mac is wrong)`);
    if (request.to !== self)
      throw new LinkAuthError('misdirected', `the request is for node ${request.to}, this is ${self}`);
    if (Math.abs(now - request.time) > LINK_WINDOW_MS)
      throw new LinkAuthError(
        'stale',
        `the request is ${Math.round(Math.abs(now - request.time) / 1000)} s off this node's clock (window ${LINK_WINDOW_MS / 1000} s)`,
      );
    this.forget(now);
    if (this.seen.has(request.nonce)) throw new LinkAuthError('replayed', 'the request was seen before');
    if (this.seen.size >= MAX_NONCES)
      throw new LinkAuthError('busy', `more than ${MAX_NONCES} link requests in ${LINK_WINDOW_MS / 1000} s`);
    this.seen.set(request.nonce, request.time);
    return request;
  }

  /** Nonces whose requests are outside the window now: a replay of them is refused as stale. */
  private forget(now: number): void {
    for (const [nonce, time] of this.seen) {
      if (now - time <= LINK_WINDOW_MS) {
        // Times are B's clocks, so not strictly ordered: stop at the first fresh one all the same
        // (a few stale entries live one window longer).
        break;
      }
      this.seen.delete(nonce);
    }
  }
}

/** The request as an AMF object (the `connect` argument). */
export function linkRequestValue(request: LinkRequest): AmfObject {
  return { ...request };
}

function parseLinkRequest(value: AmfValue): LinkRequest {
  const f = isObject(value) ? value : undefined;
  if (
    !f ||
    typeof f.node !== 'string' ||
    typeof f.epoch !== 'string' ||
    typeof f.to !== 'string' ||
    typeof f.time !== 'number' ||
    !Number.isSafeInteger(f.time) ||
    typeof f.nonce !== 'string' ||
    f.nonce.length !== NONCE_BYTES * 2 ||
    typeof f.mac !== 'string' ||
    // The signed fields are joined by newlines (hmac below): one inside a field would let a
    // signature stand for another split of the same text.
    [f.node, f.epoch, f.to, f.nonce].some((v) => v.includes('\n'))
  )
    throw new LinkAuthError(
      'malformed',
      'connect to the relay app needs {node, epoch, to, time, nonce, mac} as its first argument',
    );
  return { node: f.node, epoch: f.epoch, to: f.to, time: f.time, nonce: f.nonce, mac: f.mac };
}

function hmac(secret: Buffer, parts: string[]): Buffer {
  return createHmac('sha256', secret).update(parts.join('\n')).digest();
}

function macMatches(hex: string, expected: Buffer): boolean {
  const mac = Buffer.from(hex, 'hex');
  return mac.length === expected.length && timingSafeEqual(mac, expected);
}

function isObject(v: AmfValue): v is AmfObject {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}
