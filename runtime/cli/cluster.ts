/**
 * What the cluster commands (`deploy`, `versions`, `rollback`, `status`, `secret`, `tail`)
 * share: their common flags, the config they read, the connection to the cluster's store, and
 * the table and age formatting they print.
 */
import os from 'node:os';
import type { ParseArgsOptionsConfig } from 'node:util';
import type { State } from '../cluster/state.ts';
import { CONFIG_FILE, type FnhostConfig, redactUrl } from '../config/config.ts';
import { errorText } from '../error-text.ts';
import { CommandError, parseOptions, usageError } from './command.ts';
import { commandConfig } from './config.ts';

/** How long a command waits for a store that neither answers nor refuses (a black hole). */
const CONNECT_TIMEOUT_MS = 5_000;

/** Flags every cluster command takes. */
export const CLUSTER_OPTIONS = {
  redis: { type: 'string' },
  cluster: { type: 'string' },
  app: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsOptionsConfig;

/** CLUSTER_OPTIONS as a command's usage explains them. */
export const CLUSTER_HELP = `cluster options (else [cluster] in ${CONFIG_FILE}, FNHOST_REDIS, FNHOST_CLUSTER):
  --redis URL      the cluster's Redis: redis://, rediss:// or redis+sentinel://
  --cluster NAME   the cluster's name (default "default")
  --app NAME       the app (default: name in ${CONFIG_FILE})
  --config FILE    the project config (default ./${CONFIG_FILE})
  --json           one JSON line per result on stdout`;

/** Parses a cluster command's flags (CLUSTER_OPTIONS plus `extra`) and loads the config they point at. */
export function parseClusterArgs<T extends ParseArgsOptionsConfig>(argv: string[], extra: T) {
  const parsed = parseOptions(argv, { ...CLUSTER_OPTIONS, ...extra });
  const values = parsed.values as { redis?: string; cluster?: string; app?: string; config?: string };
  const load = (main?: string): FnhostConfig =>
    commandConfig(values.config, { redis: values.redis, cluster: values.cluster, name: values.app, main });
  return { ...parsed, load };
}

/**
 * The cluster's store. Always Redis: these commands talk to the nodes of a real cluster, and
 * a memory store would only ever see this process. A refused connection or an unknown host
 * fails at once; a store that does not answer, after CONNECT_TIMEOUT_MS. The caller must
 * `close()` it. ioredis and pino load here, not with the command: its `--help`, a wrong
 * command line or a bad config answer without them.
 */
export async function openCluster(config: FnhostConfig, command: string): Promise<State> {
  const url = clusterUrl(config, command);
  const [{ default: pino }, { RedisConnectError }, { RedisState }] = await Promise.all([
    import('pino'),
    import('../cluster/redis-connection.ts'),
    import('../cluster/redis-state.ts'),
  ]);
  const logger = pino({ level: 'fatal' }, pino.destination({ fd: 2, sync: true }));
  const signal = AbortSignal.timeout(CONNECT_TIMEOUT_MS);
  try {
    return await RedisState.connect(url, { cluster: config.cluster.name, logger, signal, failFast: true });
  } catch (e) {
    if (signal.aborted) {
      throw new CommandError(
        `cannot reach the cluster store at ${redactUrl(url)} (no answer in ${CONNECT_TIMEOUT_MS / 1000} s)`,
      );
    }
    const reason = e instanceof RedisConnectError ? e.reason : errorText(e);
    throw new CommandError(`cannot reach the cluster store at ${redactUrl(url)}: ${reason}`);
  }
}

/** Runs `use` with the cluster's store open (`openCluster`) and closes the store whatever happens. */
export async function withCluster<T>(
  config: FnhostConfig,
  command: string,
  use: (state: State) => Promise<T>,
): Promise<T> {
  const state = await openCluster(config, command);
  try {
    return await use(state);
  } finally {
    await state.close();
  }
}

/** The cluster's Redis URL, or a usage error naming every way to give one. */
export function clusterUrl(config: FnhostConfig, command: string): string {
  const url = config.cluster.redis;
  if (!url) {
    throw usageError(
      `${command} needs a cluster: --redis URL or [cluster] redis in ${CONFIG_FILE} (or FNHOST_REDIS)`,
    );
  }
  return url;
}

/** `user@host`, recorded with each deploy so `fnhost versions` says who did it. */
export function deployer(): string {
  let user = process.env.USER ?? process.env.LOGNAME ?? 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (containers): the environment's answer stands
  }
  return `${user}@${os.hostname()}`;
}

/** Seconds with two decimals: `0.41 s`. */
export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** How long ago a store-clock time was: `0.4 s ago`, `3 min ago`, `2 h ago`. */
export function formatAge(ms: number): string {
  const age = Math.max(0, ms);
  if (age < 60_000) return `${(age / 1000).toFixed(1)} s ago`;
  if (age < 3_600_000) return `${Math.floor(age / 60_000)} min ago`;
  return `${Math.floor(age / 3_600_000)} h ago`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * Columns padded to their widest cell, two spaces apart; columns listed in `right` are
 * right-aligned (numbers). No trailing spaces.
 */
export function table(headers: string[], rows: string[][], right: number[] = []): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (right.includes(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return `${[headers, ...rows].map(line).join('\n')}\n`;
}

/** Indents every line after the first, so a multi-line error stays under its label. */
export function indentRest(text: string, indent: string): string {
  return text.replace(/\n/g, `\n${indent}`);
}
