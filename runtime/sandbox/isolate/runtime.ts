/**
 * The runtime inside every app isolate: it builds `ctx` and `client` objects on top of the
 * host globals and runs the app's handlers. Bundled on its own into a plain script; it must
 * not use any Node API (there is none in the isolate).
 */
import {
  type AsyncOp,
  CHOSE_HERE,
  type ClientInfo,
  type DispatchKind,
  type DispatchResult,
  eventName,
  HANDLERS,
  type HandlerFailure,
  type HostGlobals,
  type IsolateApi,
  type LogLevel,
  type ServerInfo,
  type Settlement,
  UNSENDABLE_RESULT,
} from './protocol.ts';

type Handler = (...args: unknown[]) => unknown;
interface AppShape {
  [event: string]: unknown;
  rpc?: Record<string, Handler>;
  server?: Record<string, Handler>;
}

const g = globalThis as unknown as HostGlobals & { __fnhostApp?: AppShape; __fnhost?: IsolateApi };
const host = {
  log: g.__host_log,
  op: g.__host_op,
  sync: g.__host_sync,
  settle: g.__host_settle,
  env: Object.freeze({ ...g.__host_env }),
};
/** Op and pending IDs share one sequence (they live in different tables). */
let nextId = g.__host_first_id;
// The app sees none of the host's globals.
for (const name of Object.getOwnPropertyNames(g)) {
  if (name.startsWith('__host_')) delete (g as unknown as Record<string, unknown>)[name];
}

interface ClientObject {
  readonly id: string;
  readonly address: string;
  readonly path: string;
  readonly properties: Readonly<Record<string, string>>;
  data: Record<string, unknown>;
  call(name: string, ...args: unknown[]): Promise<unknown>;
  close(reason?: string): void;
}

const clients = new Map<string, ClientObject>();
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
const pending = new Set<number>();

function op(name: AsyncOp, args: unknown[]): Promise<unknown> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    host.op(id, name, args);
  });
}

function makeClient(info: ClientInfo, data: Record<string, unknown> = {}): ClientObject {
  return {
    id: info.id,
    address: info.address,
    path: info.path,
    properties: Object.freeze({ ...info.properties }),
    data,
    call: (name, ...args) => op('client.call', [info.id, name, args]),
    close: (reason) => {
      host.sync('client.close', [info.id, reason ?? '']);
    },
  };
}

function makeLog(event: string, clientId: string | undefined) {
  const line = (level: LogLevel) => (message: unknown, fields?: unknown) => {
    host.log(level, event, clientId, String(message), fields ?? null);
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

const kv = {
  get: (key: string) => op('kv.get', [String(key)]),
  set: (key: string, value: unknown, options?: { ttlMs?: number }) =>
    op('kv.set', [String(key), value, options?.ttlMs ?? 0]).then(() => undefined),
  delete: (key: string) => op('kv.delete', [String(key)]).then(() => undefined),
  incr: (key: string, by = 1) => op('kv.incr', [String(key), Number(by)]) as Promise<number>,
};

/** A node object for handlers: its description plus `send(name, ...args)` to its `server.<name>`. */
function makeServer(info: ServerInfo) {
  return Object.freeze({
    ...info,
    send: (name: string, ...args: unknown[]) => {
      host.sync('server.send', [info.id, String(name), args]);
    },
  });
}

function liveServers() {
  return (host.sync('servers', []) as ServerInfo[]).map(makeServer);
}

const servers = {
  get count() {
    return (host.sync('servers', []) as unknown[]).length;
  },
  at: (i: number) => liveServers()[i],
  all: () => liveServers(),
  leastLoaded: () =>
    liveServers()
      .filter((s) => !s.paused && s.state === 'serving')
      .sort((a, b) => a.load.clients - b.load.clients)[0],
  broadcast: (name: string, ...args: unknown[]) =>
    host.sync('server.broadcast', [String(name), args]) as number,
  select: (request: unknown) => op('servers.select', [request]),
};

/** `ctx.servers` for one onHandshake call: notes when a select() in it chose this node. */
function handshakeServers(chose: { here: boolean }) {
  return Object.assign(Object.create(servers) as typeof servers, {
    select: (request: unknown) =>
      servers.select(request).then((s) => {
        if (s !== null && typeof s === 'object' && 'here' in s) chose.here = true;
        return s;
      }),
  });
}

const groups = {
  get: (id: string) => op('groups.get', [String(id)]),
};

const publications = {
  get: (name: string) => op('publications.get', [String(name)]),
};

const clientsView = {
  get count() {
    return clients.size;
  },
  get: (id: string) => clients.get(id),
  all: () => [...clients.values()],
};

function makeCtx(event: string, clientId: string | undefined, chose?: { here: boolean }) {
  return Object.freeze({
    get node() {
      return host.sync('node', []);
    },
    servers: chose ? handshakeServers(chose) : servers,
    clients: clientsView,
    groups,
    publications,
    env: host.env,
    log: makeLog(event, clientId),
    kv,
  });
}

function failure(e: unknown): HandlerFailure {
  if (e instanceof Error) {
    const tagged = e as Error & { fnhost?: string; addresses?: unknown };
    const kind = tagged.fnhost === 'reject' || tagged.fnhost === 'redirect' ? tagged.fnhost : 'error';
    const out: HandlerFailure = { kind, message: e.message, stack: e.stack };
    if (kind === 'redirect' && Array.isArray(tagged.addresses)) out.addresses = tagged.addresses.map(String);
    return out;
  }
  return { kind: 'error', message: `a non-Error was thrown: ${String(e)}`, stack: undefined };
}

function settle(id: number, s: Settlement): void {
  if (!pending.delete(id)) return;
  try {
    host.settle(id, s);
  } catch (e) {
    host.settle(id, {
      e: { kind: 'error', message: `${UNSENDABLE_RESULT}: ${failure(e).message}`, stack: undefined },
    });
  }
}

/** Events whose handler takes (client, stream, ctx). */
const STREAM_EVENTS: ReadonlySet<DispatchKind> = new Set([
  'publish',
  'unpublish',
  'subscribe',
  'unsubscribe',
]);

function handlerFor(kind: DispatchKind, name: string): Handler | undefined {
  const app = g.__fnhostApp;
  if (!app) return undefined;
  const fn = kind === 'rpc' || kind === 'server' ? app[kind]?.[name] : app[HANDLERS[kind].export];
  return typeof fn === 'function' ? (fn as Handler) : undefined;
}

const api: IsolateApi = {
  dispatch(kind, name, info, args) {
    let client: ClientObject | undefined;
    if (info) {
      client = clients.get(info.id);
      if (!client) {
        // Known to the node but not here (first connect, or the isolate was rebuilt): register it.
        client = makeClient(info);
        if (kind !== 'disconnect') clients.set(info.id, client);
      }
    }
    const fn = handlerFor(kind, name);
    if (kind === 'disconnect' && info) clients.delete(info.id);
    if (!fn) return { missing: true };
    const chose = kind === 'handshake' ? { here: false } : undefined;
    const ctx = makeCtx(eventName(kind, name), info?.id, chose);
    // A helper that chose this node returns nothing, like a handler with no opinion: tell them apart.
    const answer = (v: unknown) => (chose?.here && v == null ? CHOSE_HERE : v);
    let callArgs: unknown[];
    if (kind === 'handshake' || kind === 'rendezvousUnknown') callArgs = [args[0], ctx];
    else if (kind === 'server') callArgs = [makeServer(args[0] as ServerInfo), args.slice(1), ctx];
    else if (kind === 'serverJoined' || kind === 'serverLeft')
      callArgs = [makeServer(args[0] as ServerInfo), ctx];
    else if (client && (kind === 'joinGroup' || kind === 'unjoinGroup' || STREAM_EVENTS.has(kind)))
      callArgs = [client, args[0], ctx];
    else if (client && kind === 'data') callArgs = [client, args[0], args[1], args[2], ctx];
    else if (client) callArgs = kind === 'disconnect' ? [client, ctx] : [client, args, ctx];
    else callArgs = [ctx];
    let result: unknown;
    try {
      result = fn(...callArgs);
    } catch (e) {
      return { e: failure(e) } satisfies DispatchResult;
    }
    const { result: kept } = HANDLERS[kind];
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as Promise<unknown>).then === 'function'
    ) {
      const id = nextId++;
      pending.add(id);
      (result as Promise<unknown>).then(
        (v) => settle(id, { v: kept ? answer(v) : undefined }),
        (e) => settle(id, { e: failure(e) }),
      );
      return { p: id };
    }
    return { v: kept ? answer(result) : undefined };
  },
  resume(opId, ok, value) {
    const w = waiting.get(opId);
    if (!w) return;
    waiting.delete(opId);
    if (ok) w.resolve(value);
    else w.reject(new Error(String(value)));
  },
  abandon(pendingId) {
    pending.delete(pendingId);
  },
  adopt(info, data) {
    clients.set(info.id, makeClient(info, (data ?? {}) as Record<string, unknown>));
  },
  clientData(id) {
    return clients.get(id)?.data;
  },
  forget(id) {
    clients.delete(id);
  },
  handlers() {
    const app = g.__fnhostApp ?? {};
    const names = Object.keys(app).filter((k) => typeof app[k] === 'function');
    for (const r of Object.keys(app.rpc ?? {})) names.push(`rpc.${r}`);
    for (const r of Object.keys(app.server ?? {})) names.push(`server.${r}`);
    return names;
  },
};

Object.defineProperty(g, '__fnhost', { value: Object.freeze(api) });
