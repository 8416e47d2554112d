import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import type { FnhostConfig } from '../../runtime/config/config.ts';
import { type RunningNode, startClusterNode } from '../../runtime/host/cluster-node.ts';
import { forwardingSources, startHttp, waitingSources } from '../../runtime/http/server.ts';

/** A cluster node in this process, with its HTTP port, as `fnhost node` wires them. */
export interface ClusterMember {
  running: RunningNode;
  /** HTTP `host:port`. */
  http: string;
  /** Stops the node (leaving the cluster, closing its store) and its HTTP port. */
  stop(): Promise<void>;
}

/** Starts a node of cluster `default` on `redisUrl` with `config` (and `tuning`), HTTP on a free port of 127.0.0.1. */
export async function startClusterMember(
  config: FnhostConfig,
  redisUrl: string,
  logger: Logger,
  tuning: Parameters<typeof startClusterNode>[5] = {},
): Promise<ClusterMember> {
  const state = await RedisState.connect(redisUrl, { cluster: 'default', logger });
  let running: RunningNode | undefined;
  const server = await startHttp(
    '127.0.0.1',
    0,
    forwardingSources(() => running?.sources ?? waitingSources('starting')),
    logger,
  );
  const http = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  running = await startClusterNode(config, state, logger, http, {}, tuning);
  const node = running;
  return {
    running: node,
    http,
    stop: async () => {
      await node.stop(() => {});
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
