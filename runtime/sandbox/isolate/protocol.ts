/**
 * What crosses between the node and an app's isolate. Both sides import these types; the
 * isolate side is bundled separately (isolate/runtime.ts) and sees no Node API.
 */

/** A client as the node describes it to the isolate. */
export interface ClientInfo {
  id: string;
  address: string;
  path: string;
  properties: Record<string, string>;
}

/** Events the node dispatches into the isolate. */
export type DispatchKind =
  | 'start'
  | 'stop'
  | 'handshake'
  | 'connect'
  | 'disconnect'
  | 'rpc'
  /** `server.<name>(from, args, ctx)`: a message from another node; args[0] is the sender. */
  | 'server'
  /** onServerConnection / onServerDisconnection: args[0] is the server. */
  | 'serverJoined'
  | 'serverLeft'
  /** onJoinGroup / onUnjoinGroup(client, group, ctx): args[0] is the GroupInfo. */
  | 'joinGroup'
  | 'unjoinGroup'
  /** onRendezVousUnknown(peerId, ctx): args[0] is the peer ID. */
  | 'rendezvousUnknown'
  /** onPublish / onUnpublish / onSubscribe / onUnsubscribe(client, stream, ctx): args[0] is the StreamInfo. */
  | 'publish'
  | 'unpublish'
  | 'subscribe'
  | 'unsubscribe'
  /** onData(client, stream, name, args, ctx): args are [StreamInfo, name, values]. */
  | 'data';

/**
 * The handler each event runs, by the name an app exports it under (`rpc` and `server` are
 * tables of named handlers), and whether the node acts on what it returns: the others'
 * results are dropped in the isolate, so whatever they return can fail nothing.
 */
export const HANDLERS: Readonly<Record<DispatchKind, { export: string; result: boolean }>> = {
  start: { export: 'onStart', result: false },
  stop: { export: 'onStop', result: false },
  handshake: { export: 'onHandshake', result: true },
  connect: { export: 'onConnection', result: true },
  disconnect: { export: 'onDisconnection', result: false },
  rpc: { export: 'rpc', result: true },
  server: { export: 'server', result: false },
  serverJoined: { export: 'onServerConnection', result: false },
  serverLeft: { export: 'onServerDisconnection', result: false },
  joinGroup: { export: 'onJoinGroup', result: false },
  unjoinGroup: { export: 'onUnjoinGroup', result: false },
  rendezvousUnknown: { export: 'onRendezVousUnknown', result: true },
  publish: { export: 'onPublish', result: false },
  unpublish: { export: 'onUnpublish', result: false },
  subscribe: { export: 'onSubscribe', result: false },
  unsubscribe: { export: 'onUnsubscribe', result: false },
  data: { export: 'onData', result: false },
};

/** How log lines tag an event: its kind, or `rpc.NAME` / `server.NAME`. */
export function eventName(kind: DispatchKind, name: string): string {
  return kind === 'rpc' || kind === 'server' ? `${kind}.${name}` : kind;
}

/** How logs and errors name a handler: `onConnection`, `rpc.NAME`, `server.NAME`. */
export function handlerName(kind: DispatchKind, name: string): string {
  return kind === 'rpc' || kind === 'server' ? `${kind}.${name}` : HANDLERS[kind].export;
}

/**
 * What onHandshake's nothing becomes when a balancing helper in it chose this node: a decision
 * to answer here, which `[balance] strategy` must not override (a NUL: never a host:port).
 */
export const CHOSE_HERE = '\u0000fnhost:chose-here';

/** Why a result could not be copied out of the isolate (the structured clone refuses these). */
export const UNSENDABLE_RESULT = 'the handler returned a value that cannot be sent (a function or a symbol)';

/** A handler's failure, as plain data. */
export interface HandlerFailure {
  kind: 'error' | 'reject' | 'redirect';
  message: string;
  stack: string | undefined;
  addresses?: string[];
  /** Set by the node when the event failed on a `[limits]` setting (counted in /metrics). */
  limit?: SandboxLimit;
}

/** The `[limits]` a handler can run into. */
export type SandboxLimit = 'cpu' | 'memory' | 'await';

/**
 * The answer to a dispatch: a value, a pending promise (settled later through the host's
 * `settle`), a failure, or `missing` when the app has no handler for the event.
 */
export type DispatchResult = { v: unknown } | { p: number } | { e: HandlerFailure } | { missing: true };

export type Settlement = { v: unknown } | { e: HandlerFailure };

/** Asynchronous operations the isolate asks of the node; answered through `resume`. */
export type AsyncOp =
  | 'kv.get'
  | 'kv.set'
  | 'kv.delete'
  | 'kv.incr'
  | 'client.call'
  | 'servers.select'
  | 'groups.get'
  | 'publications.get';

/** The NetGroup a client joins or leaves, as onJoinGroup / onUnjoinGroup see it. */
export interface GroupInfo {
  /** The group ID: hex SHA-256 of the group specifier (RTMFP-NOTES §7). */
  id: string;
}

/** A stream as onPublish, onUnpublish, onSubscribe, onUnsubscribe and onData see it. */
export interface StreamInfo {
  /** The stream name, without its `?query`. */
  name: string;
  /** What the `?query` of the name the client sent held. */
  properties: Record<string, string>;
}

/** What `ctx.publications.get(name)` resolves to: a live publication across the cluster. */
export interface PublicationView {
  name: string;
  /** The origin: the node its publisher is connected to. */
  node: string;
  /** The publisher's peer ID. */
  publisher: string;
  /** When it started (ms since the epoch, the cluster store's clock). */
  since: number;
  /** Players on every node. */
  subscribers: number;
  /** Node ID → players there. */
  nodes: Record<string, number>;
}

/** What `ctx.groups.get(id)` resolves to: the group across the cluster. */
export interface GroupView {
  id: string;
  /** Members in the whole cluster. */
  size: number;
  /** The oldest members (at most 1,000), in join order, each with the node it is connected to. */
  members: { peerId: string; node: string }[];
}

/**
 * What `ctx.servers.select()` resolves to: accept here, send to these public addresses, or
 * nowhere (every node paused, draining or full: the reason).
 */
export type Selection = { here: true } | { to: string[] } | { full: string };

/** Synchronous queries the isolate makes of the node. */
export type SyncOp = 'node' | 'servers' | 'client.close' | 'server.send' | 'server.broadcast';

/** A node as handlers see it (without `send`, which the runtime adds). */
export interface ServerInfo {
  id: string;
  publicAddress: string;
  load: { clients: number };
  paused: boolean;
  /** `starting | serving | draining | stopping`: only a serving node takes new clients. */
  state: string;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Globals the node installs in the isolate before the runtime and the app's bundle run. */
export interface HostGlobals {
  __host_log(
    level: LogLevel,
    event: string,
    clientId: string | undefined,
    message: string,
    fields: unknown,
  ): void;
  __host_op(opId: number, op: AsyncOp, args: unknown[]): void;
  __host_sync(op: SyncOp, args: unknown[]): unknown;
  __host_settle(pendingId: number, settlement: Settlement): void;
  __host_env: Record<string, string>;
  /**
   * The first op and pending ID this isolate may use: above every ID an earlier isolate of the
   * same app version used, so an answer meant for a rebuilt isolate can never match a new one's.
   */
  __host_first_id: number;
}

/** What the runtime exposes to the node (`globalThis.__fnhost`). */
export interface IsolateApi {
  dispatch(kind: DispatchKind, name: string, client: ClientInfo | undefined, args: unknown[]): DispatchResult;
  resume(opId: number, ok: boolean, value: unknown): void;
  abandon(pendingId: number): void;
  /** Registers a client (e.g. after a swap) with its `data` carried over. */
  adopt(client: ClientInfo, data: unknown): void;
  clientData(id: string): unknown;
  /** Drops a client whose connect was refused (it never reaches onDisconnection). */
  forget(id: string): void;
  handlers(): string[];
}
