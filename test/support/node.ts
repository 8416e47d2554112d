import pino from 'pino';
import { type ListenAddress, RtmfpNode } from '../../runtime/host/node.ts';
import { formatAddress } from '../../runtime/rtmfp/address.ts';
import type { SessionConfig } from '../../runtime/rtmfp/session.ts';
import type { TCServerHandler } from '../../runtime/rtmfp/tc-server.ts';
import { echoApp } from './echo-app.ts';

export const silentLogger = pino({ level: 'silent' });

export interface TestNode {
  node: RtmfpNode;
  port: number;
  /** `rtmfp://HOST:PORT/app` */
  url: (app?: string) => string;
  stop: () => Promise<void>;
}

/** A node (default: the echo app) on a free UDP port of 127.0.0.1. */
export async function startNode(
  o: {
    session?: SessionConfig;
    cryptoWorkers?: number;
    handler?: TCServerHandler;
    listen?: ListenAddress[];
    nativePackets?: boolean;
  } = {},
): Promise<TestNode> {
  const node = new RtmfpNode({
    listen: o.listen ?? [{ host: '127.0.0.1', port: 0 }],
    handler: o.handler ?? echoApp(silentLogger),
    logger: silentLogger,
    session: o.session,
    cryptoWorkers: o.cryptoWorkers,
    nativePackets: o.nativePackets,
  });
  const [bound] = await node.start();
  let stopped = false;
  return {
    node,
    port: bound.port,
    url: (app = 'app') => `rtmfp://${formatAddress(bound)}/${app}`,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await node.stop();
    },
  };
}

/** Polls `condition` every 10 ms until true; throws after `timeoutMs`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export { prng } from './prng.ts';
