import type { Reader, Writer } from './binary.ts';
import { ProtocolError } from './errors.ts';

/** A UDP endpoint. `family` follows the address text. */
export interface Address {
  address: string;
  port: number;
}

/** RFC 7016 §2.1.5 address origin, the low two bits of the flags byte. */
export const AddressOrigin = {
  unknown: 0,
  reported: 1,
  observed: 2,
  relay: 3,
} as const;
export type AddressOrigin = (typeof AddressOrigin)[keyof typeof AddressOrigin];

export interface OriginAddress extends Address {
  origin: AddressOrigin;
}

const IPV6_FLAG = 0x80;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIPv4(text: string): boolean {
  return IPV4.test(text);
}

/** An IPv6 address in text form (with `::`, an IPv4 tail or a zone, as the socket layer gives them). */
export function isIPv6(text: string): boolean {
  const [address, zone] = text.split('%');
  if (zone === '' || !address.includes(':')) return false;
  const lastColon = address.lastIndexOf(':');
  const v4Tail = address.includes('.', lastColon);
  if (v4Tail && !isIPv4(address.slice(lastColon + 1))) return false;
  const head = v4Tail ? `${address.slice(0, lastColon + 1)}0:0` : address;
  const halves = head.split('::');
  if (halves.length > 2) return false;
  const groups = halves.flatMap((h) => (h === '' ? [] : h.split(':')));
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return false;
  return halves.length === 2 ? groups.length < 8 : groups.length === 8;
}

export function addressKey(a: Address): string {
  return `${a.address}|${a.port}`;
}

export function sameAddress(a: Address, b: Address): boolean {
  return a.port === b.port && a.address === b.address;
}

export function formatAddress(a: Address): string {
  return isIPv6(a.address) ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** Parses "host:port" or "[v6]:port". Returns undefined when the text is not one. */
export function parseAddress(text: string): Address | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!(port > 0 && port < 65536)) return undefined;
  return { address: m[1], port };
}

/** RFC 7016 §2.1.5 address encoding: flags, 4 or 16 address bytes, u16 port. */
export function writeAddress(w: Writer, a: Address, origin: AddressOrigin): Writer {
  if (isIPv4(a.address)) {
    w.u8(origin);
    for (const part of a.address.split('.')) w.u8(Number(part));
  } else if (isIPv6(a.address)) {
    w.u8(IPV6_FLAG | origin);
    w.bytes(ipv6Bytes(a.address));
  } else {
    throw new RangeError(`not an IP address: ${a.address}`);
  }
  return w.u16(a.port);
}

export function readAddress(r: Reader): OriginAddress {
  const flags = r.u8();
  const origin = (flags & 3) as AddressOrigin;
  if (flags & IPV6_FLAG) {
    const b = r.bytes(16);
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    return { address: compressIPv6(groups), port: r.u16(), origin };
  }
  if (flags & 0x7c) throw new ProtocolError('bad-address', `address flags 0x${flags.toString(16)}`);
  const b = r.bytes(4);
  return { address: `${b[0]}.${b[1]}.${b[2]}.${b[3]}`, port: r.u16(), origin };
}

function ipv6Bytes(text: string): Buffer {
  let head = text;
  let v4Tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    v4Tail = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.split('::');
  const l = left ? left.split(':') : [];
  const r = right !== undefined ? (right ? right.split(':') : []) : [];
  const groups = right !== undefined ? [...l, ...Array(8 - l.length - r.length).fill('0'), ...r] : l;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  if (v4Tail.length === 4) out.set(v4Tail, 12);
  return out;
}

function compressIPv6(groups: string[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}
