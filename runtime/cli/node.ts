import type { Logger } from 'pino';
import { MemoryState } from '../cluster/memory-state.ts';
import { RedisState } from '../cluster/redis-state.ts';
import type { State } from '../cluster/state.ts';
import type { FnhostConfig } from '../config/config.ts';
import { startClusterNode } from '../host/cluster-node.ts';
import { type Command, parseOptions, printResult, usageError } from './command.ts';
import { commandConfig } from './config.ts';
import { makeLogger } from './logger.ts';

/**
 * `fnhost node`: a cluster node. It registers in the store (Redis, or memory without
 * `--redis`), heartbeats its load, loads every app's active version and follows deploys,
 * serves RTMFP and the HTTP health/status port, and leaves cleanly on SIGTERM.
 */
export const node: Command = {
  name: 'node',
  synopsis: ['node [--redis URL] [--rtmfp HOST:PORT]... [--http HOST:PORT] [--public-address HOST:PORT]'],
  about: 'Runs a cluster node: registers in Redis, runs every deployed app, follows deploys.',
  flags: `  --redis URL                the cluster's Redis (without: a standalone node on in-memory state)
  --rtmfp HOST:PORT          UDP address to listen on (repeatable; default 0.0.0.0:1935)
  --http HOST:PORT           /healthz /readyz /status /metrics
  --public-address HOST:PORT where other nodes send redirected clients
  --cluster NAME             the cluster's name (default "default")
  --config FILE              the project config (default ./wrangler-like.toml)
  --json                     log JSON lines on stderr and print JSON lines on stdout`,
  run: runNode,
};

async function runNode(argv: string[]): Promise<undefined> {
  const { values, positionals } = parseOptions(argv, {
    redis: { type: 'string' },
    rtmfp: { type: 'string', multiple: true },
    http: { type: 'string' },
    'public-address': { type: 'string' },
    cluster: { type: 'string' },
    config: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw usageError(`node takes no arguments, got ${positionals.join(' ')}`);
  const config = commandConfig(values.config, {
    redis: values.redis,
    rtmfp: values.rtmfp,
    http: values.http,
    publicAddress: values['public-address'],
    cluster: values.cluster,
  });
  const log = makeLogger({ json: values.json });
  const state = await openState(config, log);
  const running = await startClusterNode(config, state, log);
  const { id } = running.cluster;
  const cluster = config.cluster.name;
  printResult(
    values.json,
    [
      ...running.rtmfp.map((a) => `rtmfp listening on udp://${a}`),
      ...(running.http ? [`http listening on http://${running.http}`] : []),
      `node ${id} in cluster "${cluster}" (${state.kind})`,
    ].join('\n'),
    { node: id, cluster, store: state.kind, rtmfp: running.rtmfp, http: running.http ?? null },
  );
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'leaving the cluster');
    await running.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

async function openState(config: FnhostConfig, log: Logger): Promise<State> {
  if (!config.cluster.redis) {
    log.warn('no --redis: a standalone node on in-memory state (use `fnhost dev` to develop an app)');
    return new MemoryState();
  }
  return RedisState.connect(config.cluster.redis, { cluster: config.cluster.name, logger: log });
}
