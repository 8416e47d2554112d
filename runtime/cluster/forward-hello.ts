import { isIPv4, isIPv6, parseAddress } from '../rtmfp/address.ts';
import { MAX_REPORTED_ADDRESSES } from '../rtmfp/rendezvous.ts';

/**
 * Node A asks node B to send a Forwarded IHello to B's client `target` (RFC 7016 §3.5.1.5,
 * RTMFP-NOTES §6 step 2): an initiator at A looked for a peer that is connected to B. A has
 * already answered the initiator with the target's addresses; B forwards inside the target's
 * session, so the target answers the initiator directly. Carried signed on `rpc:<B>`.
 */
export interface ForwardHelloRequest {
  /** The peer ID of B's client, 64 hex digits. */
  target: string;
  /** The initiator's EPD as it sent it, hex (Flash: `21 0f` + the target's peer ID). */
  epd: string;
  /** The initiator's tag, hex: the target echoes it. */
  tag: string;
  /** The initiator's address as A observed it, `ip:port` or `[ipv6]:port`. */
  address: string;
  /**
   * IHellos with this tag A saw before this one (0 for the first): B picks the reply address
   * from it as a single node does (rendezvous.ts `forwardedIHello`, RTMFP-NOTES §6 step 2).
   */
  attempt: number;
  /**
   * The LAN addresses the initiator reported to A with setPeerInfo (empty if it is not A's
   * client), in its order: the reply addresses B cycles through on repeated attempts.
   */
  reported: string[];
}

/** An EPD this long is not a peer ID lookup (Flash's is 34 bytes). */
const MAX_EPD_BYTES = 256;
/** RFC 7016 §2.3.2 leaves the tag length open; Flash and librtmfp send 16 bytes. */
const MAX_TAG_BYTES = 64;

/** A request as it arrived from another node, checked; throws naming the field that is wrong. */
export function parseForwardHello(value: unknown): ForwardHelloRequest {
  if (typeof value !== 'object' || value === null) throw new Error('forward-hello: not an object');
  // A node from before attempts and reported addresses sends neither: it meant the first
  // attempt and none (what it forwarded then), so a rolling upgrade keeps introducing.
  const { target, epd, tag, address, attempt = 0, reported = [] } = value as Record<string, unknown>;
  if (typeof target !== 'string' || !/^[0-9a-f]{64}$/.test(target)) {
    throw new Error('forward-hello: target must be a peer ID, 64 lowercase hex digits');
  }
  checkHex('epd', epd, MAX_EPD_BYTES);
  checkHex('tag', tag, MAX_TAG_BYTES);
  if (!isIpAddress(address)) {
    throw new Error(`forward-hello: address must be an observed "ip:port", got ${JSON.stringify(address)}`);
  }
  if (typeof attempt !== 'number' || !Number.isSafeInteger(attempt) || attempt < 0) {
    throw new Error(`forward-hello: attempt must be a non-negative integer, got ${JSON.stringify(attempt)}`);
  }
  if (!Array.isArray(reported) || reported.length > MAX_REPORTED_ADDRESSES || !reported.every(isIpAddress)) {
    throw new Error(
      `forward-hello: reported must be a list of at most ${MAX_REPORTED_ADDRESSES} "ip:port" addresses`,
    );
  }
  return {
    target,
    epd: epd as string,
    tag: tag as string,
    address: address as string,
    attempt,
    reported: [...reported] as string[],
  };
}

function isIpAddress(value: unknown): boolean {
  const parsed = typeof value === 'string' ? parseAddress(value) : undefined;
  return parsed !== undefined && (isIPv4(parsed.address) || isIPv6(parsed.address));
}

function checkHex(field: string, value: unknown, maxBytes: number): void {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > maxBytes * 2 ||
    !/^([0-9a-f]{2})+$/.test(value)
  ) {
    throw new Error(`forward-hello: ${field} must be 1 to ${maxBytes} bytes of lowercase hex`);
  }
}
