import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { Redis, type RedisOptions, ReplyError } from 'ioredis';
import type { Logger } from 'pino';
import { redactUrl } from '../config/config.ts';
import { type RoundTripListener, StoreUnavailableError } from './state.ts';

/** Longest wait between reconnect attempts: a restarted Redis is found again within ~2 s. */
const RETRY_CAP_MS = 2_000;
/** A command without a reply for this long fails (Redis hung, or a network black hole). */
const COMMAND_TIMEOUT_MS = 5_000;
/**
 * How long ioredis waits for a socket to end after disconnect() before destroying it. Its
 * 2 s default also applies to a socket that already failed, which then holds the process
 * open for 2 s after close().
 */
const DISCONNECT_TIMEOUT_MS = 200;
/** close() waits this long for Redis to answer QUIT: a hung Redis must not hold a process that is ending. */
const QUIT_TIMEOUT_MS = 500;
/** Errors that retrying cannot fix: connect() fails with them instead of waiting forever. */
const FATAL = /WRONGPASS|NOAUTH|NOPERM|invalid password|without any password configured|DB index/i;

/** A Lua script and its SHA1, for EVALSHA. */
export interface LuaScript {
  lua: string;
  sha: string;
}

export function luaScript(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/** Lua that sets `now`: the store clock in ms from Redis TIME (seconds, microseconds). */
export const LUA_NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** One reconnect attempt while Redis is unreachable: what failed, and when the next try is. */
export interface RedisRetry {
  attempt: number;
  delayMs: number;
  /** `connection refused at 127.0.0.1:6379`, `host r1 not found`, or ioredis's text. */
  problem: string;
}

export interface RedisOpenOptions {
  name: string;
  logger: Logger;
  /** Gives up connecting: open() rejects and the retrying stops. */
  signal?: AbortSignal;
  /** The first connection error ends open() (a CLI command says it at once); else it retries. */
  failFast?: boolean;
  /** Told of every retry until open() settles (each is logged too, also later). */
  onRetry?: (retry: RedisRetry) => void;
}

/** open() could not connect: `reason` says why, without the URL. */
export class RedisConnectError extends Error {
  readonly reason: string;

  constructor(where: string, reason: string) {
    super(`redis: cannot use ${where}: ${reason}`);
    this.name = 'RedisConnectError';
    this.reason = reason;
  }
}

/**
 * The two Redis connections of a node: commands, and subscriptions (a connection in subscribe
 * mode can't run other commands). Losing Redis never crashes the process: ioredis retries
 * with backoff capped at RETRY_CAP_MS, and `onStatus` says 'down' / 'up'.
 *
 * - Commands have no offline queue and no resend: while Redis is down they fail at once, so
 *   heartbeats and KV calls can't pile up to be replayed late; callers re-assert after 'up'.
 * - Subscriptions are kept here and re-issued by us on every reconnect (not by ioredis's
 *   autoResubscribe), so 'up' is reported only once they are active again.
 */
export class RedisConnection {
  private readonly commands: Redis;
  private readonly subscriber: Redis;
  private readonly logger: Logger;
  private onRetry: ((retry: RedisRetry) => void) | undefined;
  private readonly failFast: boolean;
  private readonly where: string;
  private readonly handlers = new Map<string, Set<(message: string) => void>>();
  private readonly statusHandlers: ((status: 'up' | 'down') => void)[] = [];
  private commandsReady = false;
  private subscriberReady = false;
  private up = false;
  private closing = false;
  private lastError = '';
  private fatal: ((err: Error) => void) | undefined;
  private roundTrip: RoundTripListener | undefined;

  private constructor(url: string, o: RedisOpenOptions) {
    const { name } = o;
    this.logger = o.logger;
    this.onRetry = o.onRetry;
    this.failFast = o.failFast === true;
    this.where = redactUrl(url);
    const options: RedisOptions = { ...redisOptionsFromUrl(url), disconnectTimeout: DISCONNECT_TIMEOUT_MS };
    this.commands = new Redis({
      ...options,
      connectionName: `${name}:commands`,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: (attempt) => this.retryDelay(attempt, true),
    });
    this.subscriber = new Redis({
      ...options,
      connectionName: `${name}:subscriber`,
      autoResubscribe: false,
      maxRetriesPerRequest: null,
      retryStrategy: (attempt) => this.retryDelay(attempt, false),
    });
    this.watch(this.commands, 'commands');
    this.watch(this.subscriber, 'subscriber');
    this.subscriber.on('message', (channel: string, message: string) => this.deliver(channel, message));
  }

  /**
   * Connects both; resolves once both are ready. While Redis is unreachable it logs each
   * retry and keeps retrying (a node started before its Redis waits for it); it rejects with a
   * RedisConnectError on errors retrying can't fix, such as a wrong password, on the first
   * error with `failFast`, or when `signal` aborts (a CLI command that gives up must also
   * stop the retrying, or it keeps the process alive).
   */
  static async open(url: string, o: RedisOpenOptions): Promise<RedisConnection> {
    o.signal?.throwIfAborted();
    const c = new RedisConnection(url, o);
    let onAbort: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        c.fatal = reject;
        c.statusHandlers.push((status) => {
          if (status === 'up') resolve();
        });
        onAbort = () => reject(new RedisConnectError(c.where, `gave up (${c.lastError || 'no answer'})`));
        o.signal?.addEventListener('abort', onAbort, { once: true });
      });
    } catch (err) {
      await c.close();
      throw err;
    } finally {
      if (onAbort) o.signal?.removeEventListener('abort', onAbort);
      c.fatal = undefined;
      c.onRetry = undefined;
      c.statusHandlers.length = 0;
    }
    return c;
  }

  onStatus(handler: (status: 'up' | 'down') => void): void {
    this.statusHandlers.push(handler);
  }

  /**
   * Sends one command. Only Redis's own replies (a script error, a wrong type) come back as
   * they are: a command that fails because Redis is unreachable, hung or went away meanwhile
   * rejects with StoreUnavailableError, which is what a handler or a user may see, never
   * ioredis's internal text.
   */
  async command<T>(send: (redis: Redis) => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      const reply = await send(this.commands);
      this.roundTrip?.((performance.now() - start) / 1000, false);
      return reply;
    } catch (err) {
      this.roundTrip?.((performance.now() - start) / 1000, true);
      if (err instanceof ReplyError) throw err;
      throw new StoreUnavailableError({ cause: err });
    }
  }

  /** Tells `listener` the time of each command (one listener: the node's metrics). */
  onRoundTrip(listener: RoundTripListener): void {
    this.roundTrip = listener;
  }

  /** EVALSHA, falling back to EVAL when Redis doesn't have the script (first use, restart). */
  async run(script: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await this.command((r) => r.evalsha(script.sha, keys.length, ...keys, ...args));
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return await this.command((r) => r.eval(script.lua, keys.length, ...keys, ...args));
    }
  }

  /** Resolves once Redis confirms the subscription (after reconnecting, if it is down now). */
  async subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    let set = this.handlers.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    const entry = (message: string) => handler(message);
    set.add(entry);
    const unsubscribe = async () => {
      if (!set.delete(entry) || set.size > 0 || this.handlers.get(channel) !== set) return;
      this.handlers.delete(channel);
      // While down there is nothing to undo: only channels still in `handlers` are re-issued.
      if (this.subscriber.status === 'ready') await this.subscriber.unsubscribe(channel);
    };
    try {
      // Also for a second handler: the first one's SUBSCRIBE may not be confirmed yet.
      await this.subscriber.subscribe(channel);
    } catch (err) {
      if (first) await unsubscribe();
      else set.delete(entry);
      throw err;
    }
    return unsubscribe;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([quit(this.commands), quit(this.subscriber)]);
  }

  private deliver(channel: string, message: string): void {
    const set = this.handlers.get(channel);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        handler(message);
      } catch (err) {
        this.logger.error({ err, channel }, 'redis: a subscriber threw; the message is lost for it');
      }
    }
  }

  private watch(redis: Redis, role: 'commands' | 'subscriber'): void {
    const setReady = (ready: boolean) => {
      if (role === 'commands') this.commandsReady = ready;
      else this.subscriberReady = ready;
      this.update();
    };
    redis.on('ready', () => {
      if (role === 'commands') return setReady(true);
      const channels = [...this.handlers.keys()];
      if (channels.length === 0) return setReady(true);
      redis.subscribe(...channels).then(
        () => setReady(redis.status === 'ready'),
        (err: Error) => this.logger.debug({ err }, 'redis: resubscribing failed; retrying on reconnect'),
      );
    });
    for (const event of ['close', 'end', 'reconnecting']) redis.on(event, () => setReady(false));
    redis.on('error', (err: Error) => {
      this.lastError = connectionProblem(err);
      if (this.fatal && (this.failFast || FATAL.test(err.message))) {
        this.fatal(new RedisConnectError(this.where, this.lastError));
      } else {
        this.logger.debug({ err, role }, 'redis: connection error');
      }
    });
  }

  private update(): void {
    const up = this.commandsReady && this.subscriberReady;
    if (up === this.up || this.closing) return;
    this.up = up;
    if (up) this.logger.info(`redis: connected to ${this.where}`);
    else this.logger.warn(`redis: lost ${this.where}; reconnecting`);
    for (const handler of [...this.statusHandlers]) handler(up ? 'up' : 'down');
  }

  /** Backoff doubling from 50 ms up to RETRY_CAP_MS, jittered; each retry is logged once (`report`). */
  private retryDelay(attempt: number, report: boolean): number {
    const delayMs =
      Math.min(RETRY_CAP_MS, 50 * 2 ** Math.min(attempt - 1, 16)) + Math.floor(Math.random() * 100);
    if (report && !this.closing) {
      const problem = this.lastError || 'connection closed';
      this.logger.warn(
        { attempt, delayMs, problem },
        `redis: cannot reach ${this.where} (${problem}); retry ${attempt} in ${delayMs} ms`,
      );
      this.onRetry?.({ attempt, delayMs, problem });
    }
    return delayMs;
  }
}

async function quit(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      // The connection going away while quitting leaves nothing to close gracefully.
      redis.quit().catch(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, QUIT_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
  }
  redis.disconnect();
}

/** A connection error as a user reads it: where it was refused, or which host is unknown. */
function connectionProblem(
  err: Error & { code?: string; address?: string; port?: number; hostname?: string },
) {
  if (err.code === 'ECONNREFUSED' && err.address)
    return `connection refused at ${err.address.includes(':') ? `[${err.address}]` : err.address}:${err.port}`;
  if (err.code === 'ENOTFOUND' && err.hostname) return `host ${err.hostname} not found`;
  return err.message;
}

/**
 * ioredis options for `redis://[user:pass@]host[:port][/db]`, `rediss://…` (TLS) and
 * `redis+sentinel://[user:pass@]host[:port][,host[:port]…]/masterName[/db]` (`rediss+sentinel`
 * for TLS). Sentinel credentials are those of the master; sentinels themselves are reached
 * without AUTH.
 */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const bad = (why: string) => new Error(`redis: bad URL "${redactUrl(url)}": ${why}`);
  const m = /^(rediss?)(\+sentinel)?:\/\/([^/?#]*)(\/[^?#]*)?([?#].*)?$/i.exec(url);
  if (!m) throw bad('use redis://, rediss:// or redis+sentinel://');
  const [, scheme, sentinel, authority, path = '', extra] = m;
  if (extra) throw bad('query parameters and fragments are not supported');
  const at = authority.lastIndexOf('@');
  const hosts = authority.slice(at + 1);
  const options: RedisOptions = {};
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    const username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
    if (username) options.username = username;
    if (colon >= 0) options.password = decodeURIComponent(userinfo.slice(colon + 1));
  }
  if (scheme.toLowerCase() === 'rediss') options.tls = {};
  const segments = path.split('/').filter((s) => s !== '');
  const parseDb = (s: string | undefined) => {
    if (s === undefined) return;
    if (!/^\d+$/.test(s)) throw bad(`database must be a number, got "${s}"`);
    options.db = Number(s);
  };
  if (sentinel) {
    if (segments.length < 1 || segments.length > 2)
      throw bad('expected /masterName[/db] after the sentinels');
    options.name = decodeURIComponent(segments[0]);
    parseDb(segments[1]);
    options.sentinels = hosts.split(',').map((h) => parseHostPort(h, 26379, bad));
    if (options.tls) options.enableTLSForSentinelMode = true;
  } else {
    if (segments.length > 1) throw bad('expected at most /db after the host');
    parseDb(segments[0]);
    const { host, port } = parseHostPort(hosts, 6379, bad);
    options.host = host;
    options.port = port;
    // SNI carries host names only (RFC 6066 §3); an IP address is checked against the certificate without it.
    if (options.tls) options.tls = isIP(host) ? {} : { servername: host };
  }
  return options;
}

function parseHostPort(
  s: string,
  defaultPort: number,
  bad: (why: string) => Error,
): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(s);
  if (!m) throw bad(`expected host[:port], got "${s}"`);
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port < 1 || port > 65535) throw bad(`port must be 1-65535, got ${port}`);
  return { host: m[1] ?? m[2], port };
}
