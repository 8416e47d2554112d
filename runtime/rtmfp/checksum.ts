/**
 * The 16-bit checksum that guards Flash-profile packets sent without an HMAC (RFC 7425 §4.2,
 * §4.6.4): the one's-complement Internet checksum of big-endian 16-bit words, except that an
 * odd trailing byte is added as the LOW byte of a word. RFC 1071 would add it as the high
 * byte; rtmfp-cpp (`in_cksum`) and Cumulus both do it this way, so peers expect it.
 *
 * Covers `buf[start..end)`. Allocation-free: it runs once per packet in both directions.
 */
export function checksum(buf: Buffer, start: number, end: number): number {
  // A double holds the running sum exactly up to 2^53: 2^37 words, far beyond any datagram.
  let sum = 0;
  const last = end - 1;
  let i = start;
  for (; i < last; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i === last) sum += buf[i];
  // The first fold divides because `>>>` would truncate a sum past 2^32 (inputs over 128 KiB).
  sum = Math.floor(sum / 0x10000) + (sum & 0xffff);
  while (sum > 0xffff) sum = (sum >>> 16) + (sum & 0xffff);
  return ~sum & 0xffff;
}
