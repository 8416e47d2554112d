import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { CONFIG_STRATEGIES, type ConfigStrategy } from '../cluster/selection.ts';
import { DEFAULT_GROUPS_PER_CLIENT } from '../rtmfp/tc-group.ts';

/** The project config file looked for in the project folder. */
export const CONFIG_FILE = 'wrangler-like.toml';

const DEFAULT_MAIN = 'functions/';
const DEFAULT_RTMFP = '0.0.0.0:1935';
const DEFAULT_CLUSTER = 'default';
const DEFAULT_HEARTBEAT_MS = 1_000;
const DEFAULT_CPU_MS = 50;
const DEFAULT_MEMORY_MB = 128;
const DEFAULT_AWAIT_MS = 5_000;
const DEFAULT_HANDSHAKES = 1000;
const DEFAULT_SHUTDOWN_MS = 5_000;
/**
 * Where the HTTP port listens when given a port alone: the dashboard, /status and /metrics say
 * more about the cluster than the internet should see; another host must be asked for.
 */
export const DEFAULT_HTTP_HOST = '127.0.0.1';
/** A cluster secret shorter than this is too easy to guess. */
const MIN_SECRET_LENGTH = 16;
/** isolated-vm refuses smaller isolates. */
const MIN_MEMORY_MB = 8;
const ENV_PREFIX = 'FNHOST_';
const VAR_PREFIX = 'FNHOST_VAR_';
/** The log level (runtime/cli/logger.ts): an FNHOST_* variable that is not a config setting. */
export const LOG_LEVEL_VARIABLE = 'FNHOST_LOG_LEVEL';
/** Variables of `npm run bench` (test/bench), which fnhost itself does not read. */
const BENCH_PREFIX = 'FNHOST_BENCH_';
/** App and cluster names end up in rtmfp:// paths and Redis keys. */
export const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$/;
export const NAME_RULE = 'a name of 1-64 letters, digits, "_" or "-", not starting with "_" or "-"';
const REDIS_SCHEMES = ['redis://', 'rediss://', 'redis+sentinel://'];
/** Shown in place of a password in a URL. */
const HIDDEN = '***';

/** A UDP or TCP listen address; IPv6 hosts are kept without brackets. */
export interface HostPort {
  host: string;
  port: number;
}

/** Where this node listens and how others reach it. */
export interface NodeConfig {
  /** RTMFP (UDP) listen addresses. */
  rtmfp: HostPort[];
  /**
   * HTTP listen address for the dashboard, /healthz /readyz /status /cluster.json /metrics
   * (runtime/http); a port alone listens on DEFAULT_HTTP_HOST; undefined: no HTTP.
   */
  http: HostPort | undefined;
  /** HOST:PORT clients are redirected to; undefined: the host decides. */
  publicAddress: string | undefined;
  /** How long SIGINT/SIGTERM may take (leave the cluster, close sessions) before the process exits anyway. */
  shutdownMs: number;
  /**
   * Encrypt and send packets through native/build/packet.node when it is built (AES-NI, sendto);
   * false: node:crypto and dgram, the slower path every machine has.
   */
  nativePackets: boolean;
}

/** How this node joins a cluster. */
export interface ClusterConfig {
  /** Redis URL; undefined: standalone, in-memory state. */
  redis: string | undefined;
  name: string;
  heartbeatMs: number;
  /** Authenticates node-to-node messages; undefined: one shared through the store is used. */
  secret: string | undefined;
}

/** Per-app sandbox limits, and the per-node bound on onHandshake calls. */
export interface LimitsConfig {
  cpuMs: number;
  memoryMb: number;
  awaitMs: number;
  /** onHandshake calls per second on a node; past it an IHello gets the default answer (accept here). */
  handshakes: number;
  /** NetGroups one client may be in at once; a join past it is refused (that flow only). */
  groupsPerClient: number;
}

/** How handshakes are balanced with no handler code (`[balance]`). */
export interface BalanceConfig {
  /** Applies when onHandshake names no address (or there is none); `none`: it does not. */
  strategy: ConfigStrategy;
  /** A node with this many clients (pending seats included) gets no more; undefined: no limit. */
  maxClients: number | undefined;
}

/** The project config, fully defaulted and checked. */
export interface FnhostConfig {
  name: string;
  /** The functions folder as written. */
  main: string;
  /** `main` as an absolute path. */
  mainPath: string;
  node: NodeConfig;
  cluster: ClusterConfig;
  limits: LimitsConfig;
  balance: BalanceConfig;
  vars: Record<string, string>;
  /** Absolute path of the config file read, if any. */
  file: string | undefined;
  /** What was ignored, for the user to see: FNHOST_* variables that are no setting (a typo?). */
  warnings: string[];
}

/** Settings given as CLI flags; they win over the environment and the file. */
export interface ConfigOverrides {
  name?: string;
  main?: string;
  rtmfp?: string[];
  http?: string;
  publicAddress?: string;
  redis?: string;
  cluster?: string;
  clusterSecret?: string;
  heartbeatMs?: number;
  cpuMs?: number;
  memoryMb?: number;
  awaitMs?: number;
  shutdownMs?: number;
  nativePackets?: boolean;
}

/** A config mistake; `key` names the setting, variable or flag at fault ('' for the file itself). */
export class ConfigError extends Error {
  readonly key: string;
  constructor(key: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConfigError';
    this.key = key;
  }
}

type Setting = keyof ConfigOverrides | 'handshakes' | 'groupsPerClient' | 'strategy' | 'maxClients';
/** A setting's value as given, and `what` names where it came from (`[limits] cpu_ms`, `FNHOST_CPU_MS`). */
type Raw = { value: unknown; what: string };
type Layer = Partial<Record<Setting, Raw>>;

const TOP_KEYS: Record<string, Setting> = { name: 'name', main: 'main' };
const SECTIONS: Record<string, Record<string, Setting>> = {
  node: {
    rtmfp: 'rtmfp',
    http: 'http',
    public_address: 'publicAddress',
    shutdown_ms: 'shutdownMs',
    native_packets: 'nativePackets',
  },
  cluster: { redis: 'redis', name: 'cluster', heartbeat_ms: 'heartbeatMs', secret: 'clusterSecret' },
  limits: {
    cpu_ms: 'cpuMs',
    memory_mb: 'memoryMb',
    await_ms: 'awaitMs',
    handshakes: 'handshakes',
    groups_per_client: 'groupsPerClient',
  },
  balance: { strategy: 'strategy', max_clients: 'maxClients' },
};
const SETTINGS = [TOP_KEYS, ...Object.values(SECTIONS)].flatMap((keys) => Object.values(keys));
const NUMERIC: ReadonlySet<Setting> = new Set([
  'heartbeatMs',
  'cpuMs',
  'memoryMb',
  'awaitMs',
  'handshakes',
  'groupsPerClient',
  'shutdownMs',
  'maxClients',
]);
const BOOLEAN: ReadonlySet<Setting> = new Set(['nativePackets']);

/** Reads `o.file`, else `<dir>/wrangler-like.toml` if present, else uses defaults; then env and flags. */
export function loadConfig(
  o: { dir?: string; file?: string; env?: NodeJS.ProcessEnv; overrides?: ConfigOverrides } = {},
): FnhostConfig {
  const dir = resolve(o.dir ?? process.cwd());
  const file = resolve(dir, o.file ?? CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && o.file === undefined) return parseConfig('', { ...o, file: undefined, dir });
    const reason = code === 'ENOENT' ? 'not found' : (err as Error).message;
    throw new ConfigError('', `config: cannot read ${file}: ${reason}`, { cause: err });
  }
  return parseConfig(text, { ...o, file, dir });
}

/** Checks TOML text (from `file`, relative to `dir`) and layers env and flags over it. */
export function parseConfig(
  text: string,
  o: { file?: string; dir: string; env?: NodeJS.ProcessEnv; overrides?: ConfigOverrides },
): FnhostConfig {
  const dir = resolve(o.dir);
  const file = o.file === undefined ? undefined : resolve(dir, o.file);
  const fromFile = fileLayer(parseToml(text, file ?? '<config>'));
  const fromEnv = envLayer(o.env ?? process.env);
  const fromFlags = flagLayer(o.overrides ?? {});
  const pick = <T>(setting: Setting, fallback: T, check: (value: unknown, what: string) => T): T => {
    const raw = fromFlags[setting] ?? fromEnv[setting] ?? fromFile[setting];
    return raw ? check(raw.value, raw.what) : fallback;
  };
  const main = pick('main', DEFAULT_MAIN, nonEmptyString);
  // main from the file (or its default) is relative to the file; from env or flags, to the project dir.
  const mainBase = file && !fromFlags.main && !fromEnv.main ? dirname(file) : dir;
  return {
    name: pick('name', undefined, appName) ?? defaultName(dir),
    main,
    mainPath: resolve(mainBase, main),
    node: {
      rtmfp: pick('rtmfp', [parseHostPort(DEFAULT_RTMFP, 'rtmfp')], hostPortList),
      http: pick('http', undefined, httpAddress),
      publicAddress: pick('publicAddress', undefined, (v, what) => {
        const text = nonEmptyString(v, what);
        parseHostPort(text, what);
        return text;
      }),
      shutdownMs: pick('shutdownMs', DEFAULT_SHUTDOWN_MS, integerAtLeast(1)),
      nativePackets: pick('nativePackets', true, boolean),
    },
    cluster: {
      redis: pick('redis', undefined, redisUrl),
      name: pick('cluster', DEFAULT_CLUSTER, appName),
      heartbeatMs: pick('heartbeatMs', DEFAULT_HEARTBEAT_MS, integerAtLeast(1)),
      secret: pick('clusterSecret', undefined, (v, what) => {
        const text = nonEmptyString(v, what);
        if (text.length < MIN_SECRET_LENGTH)
          fail(what, `at least ${MIN_SECRET_LENGTH} characters`, text.replace(/./g, '*'));
        return text;
      }),
    },
    limits: {
      cpuMs: pick('cpuMs', DEFAULT_CPU_MS, integerAtLeast(1)),
      memoryMb: pick('memoryMb', DEFAULT_MEMORY_MB, integerAtLeast(MIN_MEMORY_MB)),
      awaitMs: pick('awaitMs', DEFAULT_AWAIT_MS, integerAtLeast(1)),
      handshakes: pick('handshakes', DEFAULT_HANDSHAKES, integerAtLeast(1)),
      groupsPerClient: pick('groupsPerClient', DEFAULT_GROUPS_PER_CLIENT, integerAtLeast(1)),
    },
    balance: {
      strategy: pick('strategy', 'none', oneOf(CONFIG_STRATEGIES)),
      maxClients: pick('maxClients', undefined, integerAtLeast(1)),
    },
    vars: Object.fromEntries([...fromFile.vars, ...fromEnv.vars]),
    file,
    warnings: fromEnv.warnings,
  };
}

/**
 * The URL as logs and errors show it: `redis://user:***@host`. A user part without a colon is
 * hidden whole, since it may be a password written without its `:`; the last `@` before the
 * path ends it, as in redisOptionsFromUrl.
 */
export function redactUrl(url: string): string {
  return url.replace(/^((?:[^:/@]+:\/\/)?)([^/]*)@/, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return `${scheme}${colon < 0 ? '' : userinfo.slice(0, colon + 1)}${HIDDEN}@`;
  });
}

/** Parses `HOST:PORT` or `[IPv6]:PORT` (port 0-65535); `key` names the setting in the error. */
export function parseHostPort(text: string, key: string): HostPort {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^\s:[\]/]+):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65_535 || (text.startsWith('[') && !isIPv6(m[1])))
    fail(key, 'HOST:PORT or [IPv6]:PORT with a port from 0 to 65535', text);
  return { host: m[1], port: Number(m[2]) };
}

function parseToml(text: string, file: string): Record<string, unknown> {
  try {
    return parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = err.message.split('\n')[0].replace(/^Invalid TOML document: /, '');
    const where = `${file}:${err.line}:${err.column}`;
    throw new ConfigError('', `config: ${where}: ${reason}\n\n${err.codeblock.trimEnd()}`, { cause: err });
  }
}

function fileLayer(doc: Record<string, unknown>): Layer & { vars: Map<string, string> } {
  const layer: Layer = {};
  const vars = new Map<string, string>();
  for (const [key, value] of Object.entries(doc)) {
    if (Object.hasOwn(TOP_KEYS, key)) {
      layer[TOP_KEYS[key]] = { value, what: key };
    } else if (key === 'vars' || Object.hasOwn(SECTIONS, key)) {
      if (!isTable(value)) fail(`[${key}]`, 'a table', value);
      for (const [name, v] of Object.entries(value)) {
        const what = `[${key}] ${name}`;
        if (key === 'vars') {
          if (typeof v !== 'string') fail(what, 'a string', v);
          vars.set(name, v);
        } else if (Object.hasOwn(SECTIONS[key], name)) {
          layer[SECTIONS[key][name]] = { value: v, what };
        } else {
          unknown('key', what, Object.keys(SECTIONS[key]));
        }
      }
    } else if (isTable(value)) {
      unknown('section', `[${key}]`, [...Object.keys(SECTIONS), 'vars']);
    } else {
      unknown('key', key, [...Object.keys(TOP_KEYS), ...Object.keys(SECTIONS), 'vars']);
    }
  }
  return { ...layer, vars };
}

/**
 * Empty variables count as unset, so `FNHOST_REDIS=` in a compose file means "no Redis". An
 * FNHOST_* variable that is no setting is most likely misspelled: it is ignored with a warning
 * rather than an error, since the same environment may serve several fnhost versions.
 */
function envLayer(env: NodeJS.ProcessEnv): Layer & { vars: Map<string, string>; warnings: string[] } {
  const layer: Layer = {};
  for (const setting of SETTINGS) {
    const what = envName(setting);
    const text = env[what];
    if (text === undefined || text === '') continue;
    let value: unknown = text;
    if (setting === 'rtmfp') value = text.split(',').map((s) => s.trim());
    else if (NUMERIC.has(setting) && /^\d+$/.test(text)) value = Number(text);
    else if (BOOLEAN.has(setting) && (text === 'true' || text === 'false')) value = text === 'true';
    layer[setting] = { value, what };
  }
  const vars = new Map<string, string>();
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith(VAR_PREFIX) || value === undefined) continue;
    if (key === VAR_PREFIX) throw new ConfigError(key, `config: ${key} has no name: use ${VAR_PREFIX}<NAME>`);
    vars.set(key.slice(VAR_PREFIX.length), value);
  }
  const known = [...SETTINGS.map(envName), LOG_LEVEL_VARIABLE];
  const warnings = Object.keys(env)
    .filter(
      (key) => key.startsWith(ENV_PREFIX) && !key.startsWith(VAR_PREFIX) && !key.startsWith(BENCH_PREFIX),
    )
    .filter((key) => !known.includes(key))
    .map(
      (key) => `config: unknown variable ${key}, ignored (known: ${known.join(', ')}, ${VAR_PREFIX}<NAME>)`,
    );
  return { ...layer, vars, warnings };
}

function envName(setting: Setting): string {
  return ENV_PREFIX + snakeCase(setting).toUpperCase();
}

function flagLayer(overrides: Partial<Record<Setting, unknown>>): Layer {
  const layer: Layer = {};
  for (const setting of SETTINGS) {
    const value = overrides[setting];
    if (value !== undefined) layer[setting] = { value, what: `--${snakeCase(setting).replaceAll('_', '-')}` };
  }
  return layer;
}

function defaultName(dir: string): string {
  const name = basename(dir);
  if (!NAME.test(name))
    throw new ConfigError(
      'name',
      `config: name defaults to the project folder's name "${name}", which is not ${NAME_RULE}; set name in ${CONFIG_FILE}`,
    );
  return name;
}

function appName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !NAME.test(value)) fail(what, NAME_RULE, value);
  return value;
}

function nonEmptyString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') fail(what, 'a non-empty string', value);
  return value;
}

function boolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') fail(what, 'true or false', value);
  return value;
}

function integerAtLeast(min: number): (value: unknown, what: string) => number {
  const rule = min === 1 ? 'a positive integer' : `an integer of at least ${min}`;
  return (value, what) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) fail(what, rule, value);
    return value;
  };
}

function oneOf<T extends string>(choices: readonly T[]): (value: unknown, what: string) => T {
  return (value, what) => {
    if (!choices.includes(value as T)) fail(what, `one of ${choices.map((c) => `"${c}"`).join(', ')}`, value);
    return value as T;
  };
}

function hostPort(value: unknown, what: string): HostPort {
  return parseHostPort(nonEmptyString(value, what), what);
}

/** HOST:PORT, or a port alone (number or digits) on DEFAULT_HTTP_HOST. */
function httpAddress(value: unknown, what: string): HostPort {
  const port =
    typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value)) ? Number(value) : NaN;
  if (Number.isNaN(port)) return hostPort(value, what);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    fail(what, 'HOST:PORT, [IPv6]:PORT or a port alone, from 0 to 65535', value);
  return { host: DEFAULT_HTTP_HOST, port };
}

function hostPortList(value: unknown, what: string): HostPort[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) fail(what, 'HOST:PORT or a non-empty array of them', value);
  return list.map((item: unknown) => hostPort(item, what));
}

function redisUrl(value: unknown, what: string): string {
  const url = nonEmptyString(value, what);
  if (!REDIS_SCHEMES.some((scheme) => url.startsWith(scheme)))
    fail(what, `a URL starting with ${REDIS_SCHEMES.join(', ')}`, redactUrl(url));
  return url;
}

function fail(what: string, expected: string, got: unknown): never {
  throw new ConfigError(what, `config: ${what} must be ${expected}, got ${describe(got)}`);
}

function unknown(kind: 'key' | 'section', what: string, known: string[]): never {
  throw new ConfigError(what, `config: unknown ${kind} ${what} (known: ${known.join(', ')})`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'object' && value !== null) return 'a table';
  return String(value);
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function snakeCase(setting: Setting): string {
  return setting.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
