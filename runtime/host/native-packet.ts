import type dgram from 'node:dgram';
import { createRequire } from 'node:module';
import type { AesEngine } from '../rtmfp/aes-engine.ts';

/**
 * The native packet path (native/packet.c, built by `npm install`): AES-128-CBC in place on
 * AES-NI, and sendto(2) on the node's own socket. Node's Cipher.update() allocates its output
 * on every call and dgram's send() queues a request object per datagram; at fan-out rates those
 * cost more than the AES and the kernel's send (PERF-NOTES, test/bench `o`). Without it, a node
 * runs the same protocol on node:crypto and dgram.
 */
export interface NativePacket extends AesEngine {
  /**
   * Sends buf[start, end) from socket descriptor `fd` to an IP literal at once, never blocking.
   * Returns 0, or the errno of a datagram that did not go out (EAGAIN: the socket buffer is full).
   */
  sendTo(fd: number, buf: Buffer, start: number, end: number, address: string, port: number): number;
}

export type NativeLoad = { native: NativePacket; reason?: undefined } | { native: undefined; reason: string };

/** Relative to the package root, from runtime/host (sources) or dist/runtime/host (built). */
const CANDIDATES = ['../../native/build/packet.node', '../../../native/build/packet.node'];
/** sendto errnos that mean "the socket buffer is full, try later": EAGAIN (Linux 11, macOS 35), ENOBUFS (Linux 105). */
export const SEND_AGAIN = new Set([11, 35, 105]);

let loaded: NativeLoad | undefined;

/** Loads the native packet path once; `reason` says why there is none. */
export function loadNativePacket(): NativeLoad {
  loaded ??= load();
  return loaded;
}

function load(): NativeLoad {
  const require = createRequire(import.meta.url);
  let failure = 'native/build/packet.node is not built (`npm install` builds it with a C compiler)';
  for (const candidate of CANDIDATES) {
    let m: Partial<NativePacket>;
    try {
      m = require(candidate) as Partial<NativePacket>;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') continue;
      failure = `native/build/packet.node did not load: ${e instanceof Error ? e.message : String(e)}`;
      break;
    }
    if (typeof m.encryptCbc !== 'function' || typeof m.sendTo !== 'function')
      return { native: undefined, reason: 'this CPU has no AES-NI' };
    return { native: m as NativePacket };
  }
  return { native: undefined, reason: failure };
}

/**
 * The socket's descriptor, for sendTo; undefined where this Node keeps it elsewhere (then the
 * node sends through dgram). `socket._handle` is deprecated (DEP0112) and warns: dgram keeps the
 * same handle under its state symbol.
 */
export function socketDescriptor(socket: dgram.Socket): number | undefined {
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const handle = state && (socket as unknown as Record<symbol, { handle?: { fd?: unknown } }>)[state]?.handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
