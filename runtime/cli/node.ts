import type { AddressInfo } from 'node:net';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { MemoryState } from '../cluster/memory-state.ts';
import { RedisState } from '../cluster/redis-state.ts';
import type { State } from '../cluster/state.ts';
import { type FnhostConfig, type HostPort, redactUrl } from '../config/config.ts';
import { type RunningNode, startClusterNode } from '../host/cluster-node.ts';
import { forwardingSources, type HttpSources, startHttp, waitingSources } from '../http/server.ts';
import { type Command, parseOptions, printResult, usageError } from './command.ts';
import { summaryOf } from './commands.ts';
import { commandConfig } from './config.ts';
import { makeLogger } from './logger.ts';
import { exitOnSignals } from './shutdown.ts';

/**
 * `fnhost node`: a cluster node. It opens its HTTP health/status port at once, then waits for
 * the store (Redis, or memory without `--redis`), registers, heartbeats its load, loads every
 * app's active version and follows deploys, serves RTMFP, and on SIGINT/SIGTERM leaves within
 * `[node] shutdown_ms`.
 */
export const node: Command = {
  ...summaryOf('node'),
  flags: `  --redis URL                the cluster's Redis (without: a standalone node on in-memory state)
  --rtmfp HOST:PORT          UDP address to listen on (repeatable; default 0.0.0.0:1935)
  --http [HOST:]PORT         the dashboard (/), /healthz /readyz /status /cluster.json /metrics
                             (a port alone listens on 127.0.0.1 only)
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
  // The HTTP port opens before anything waits on the store, so /healthz answers from the start.
  let sources = waitingSources('starting');
  const http = config.node.http && (await openHttp(config.node.http, () => sources, log));
  if (http) printResult(values.json, `http listening on http://${http.address}`, { http: http.address });
  let running: RunningNode | undefined;
  const giveUp = new AbortController();
  const exit = exitOnSignals({
    log,
    shutdownMs: config.node.shutdownMs,
    stop: async (step) => {
      giveUp.abort();
      await running?.stop(step);
      step('closing the HTTP port');
      await http?.close();
    },
  });

  let state: State;
  try {
    state = await openState(config, log, giveUp.signal, (why) => {
      sources = waitingSources(why);
    });
  } catch (e) {
    // A signal gave up waiting for the store: the shutdown handler ends the process.
    if (giveUp.signal.aborted) return;
    throw e;
  }
  sources = waitingSources('loading the deployed apps');
  running = await startClusterNode(config, state, log, http?.address, {
    drained: () => exit('drained'),
  });
  sources = running.sources;
  const { id } = running.cluster;
  const cluster = config.cluster.name;
  printResult(
    values.json,
    [
      ...running.rtmfp.map((a) => `rtmfp listening on udp://${a}`),
      `node ${id} in cluster "${cluster}" (${state.kind})`,
    ].join('\n'),
    { node: id, cluster, store: state.kind, rtmfp: running.rtmfp },
  );
}

/** The store: Redis, waited for while it does not answer (`waiting` hears why), or memory. */
async function openState(
  config: FnhostConfig,
  log: Logger,
  signal: AbortSignal,
  waiting: (why: string) => void,
): Promise<State> {
  const url = config.cluster.redis;
  if (!url) {
    log.warn('no --redis: a standalone node on in-memory state (use `fnhost dev` to develop an app)');
    return new MemoryState();
  }
  const where = `waiting for the cluster store at ${redactUrl(url)}`;
  waiting(where);
  return RedisState.connect(url, {
    cluster: config.cluster.name,
    logger: log,
    signal,
    onRetry: (r) => waiting(`${where}: ${r.problem} (retry ${r.attempt} in ${r.delayMs} ms)`),
  });
}

/** The HTTP port, answering from whatever `sources()` is at the time of each request. */
async function openHttp(at: HostPort, sources: () => HttpSources, log: Logger) {
  const server = await startHttp(at.host, at.port, forwardingSources(sources), log);
  const { port } = server.address() as AddressInfo;
  return {
    address: `${isIPv6(at.host) ? `[${at.host}]` : at.host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
