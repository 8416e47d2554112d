/**
 * fnhost/sdk — what an app author imports. An app is an object of lifecycle handlers
 * (`defineApp({...})` in `functions/index.ts`), or one `on*.ts` file per event. Handlers run
 * in an isolated sandbox on every node; they see only their arguments and `ctx`.
 */

/** A value that crosses between a client, a handler and the node: AMF-compatible data. */
export type Value =
  | string
  | number
  | boolean
  | null
  | undefined
  | Date
  | Uint8Array
  | Value[]
  | { [key: string]: Value };

/** One connected client (an RTMFP session with a NetConnection) of this app on this node. */
export interface Client {
  /** Peer ID: hex SHA-256 of the client's certificate (Flash `farID`). */
  readonly id: string;
  /** The client's address as the node sees it, `host:port`. */
  readonly address: string;
  /** The connect URL's path after the app name (`rtmfp://host/chat/room1` → `room1`). */
  readonly path: string;
  /** Query parameters of the connect URL. */
  readonly properties: Readonly<Record<string, string>>;
  /** Per-client state for your handlers; lives in the sandbox as long as the client is connected. */
  data: Record<string, unknown>;
  /** Calls a method on the client (its NetConnection client object); resolves to its answer. */
  call(name: string, ...args: Value[]): Promise<Value>;
  /** Ends the client's connection; it sees NetConnection.Connect.Closed with `reason`. */
  close(reason?: string): void;
}

/** An IHello about to be answered: who is knocking, and for what. */
export interface Handshake {
  /** Source address of the IHello, `host:port`. */
  readonly address: string;
  /** The URL's path after the app name. */
  readonly path: string;
  /** Query parameters of the URL the client dialled. */
  readonly properties: Readonly<Record<string, string>>;
  /** How many IHellos with this tag the node has seen (1 on the first). */
  readonly attempts: number;
}

/** This node. */
export interface NodeInfo {
  readonly id: string;
  /** Address clients are redirected to, `host:port`. */
  readonly publicAddress: string;
  readonly load: { readonly clients: number };
}

/** A node of the cluster (only this node on a standalone node). */
export interface Server {
  readonly id: string;
  readonly publicAddress: string;
  readonly load: { readonly clients: number };
  readonly paused: boolean;
  /** Only a `serving` node takes new clients (balancing leaves out the others and paused ones). */
  readonly state: 'starting' | 'serving' | 'draining' | 'stopping';
  /** Calls this app's `server.<name>(from, args, ctx)` on that node (fire and forget). */
  send(name: string, ...args: Value[]): void;
}

/** The live nodes. */
export interface Servers {
  readonly count: number;
  at(index: number): Server | undefined;
  all(): Server[];
  /** The serving, unpaused node with the fewest clients at the last heartbeat. */
  leastLoaded(): Server | undefined;
  /** `server.<name>` on every other node; returns how many it went to. */
  broadcast(name: string, ...args: Value[]): number;
  /**
   * Where a new client goes, chosen among serving, unpaused nodes under `max_clients` (what
   * the balancing helpers below call; they are easier to use).
   */
  select(request: SelectRequest): Promise<Selection>;
}

/** How `ctx.servers.select()` chooses. */
export interface SelectRequest extends BalanceOptions {
  strategy: 'round-robin' | 'least-loaded' | 'all-servers' | 'by-hash';
  /** by-hash: what the client sticks by. */
  key?: string;
}

/** The answer of `ctx.servers.select()`: here, these addresses, or no node at all (why). */
export type Selection = { here: true } | { to: string[] } | { full: string };

/** Options of the balancing helpers. */
export interface BalanceOptions {
  /** Never choose this node (send the client away from here). */
  exceptSelf?: boolean;
  /** Skip nodes with this many clients (pending seats included); default `[balance] max_clients`. */
  maxClients?: number;
}

/** This app's clients on this node. */
export interface Clients {
  readonly count: number;
  get(id: string): Client | undefined;
  all(): Client[];
}

/** App-scoped key/value store with optional expiry. */
export interface Kv {
  get(key: string): Promise<Value>;
  set(key: string, value: Value, options?: { ttlMs?: number }): Promise<void>;
  delete(key: string): Promise<void>;
  /** Adds `by` (default 1) to a numeric value, creating it at 0; resolves to the new value. */
  incr(key: string, by?: number): Promise<number>;
}

/** The NetGroup a client joins or leaves (onJoinGroup, onUnjoinGroup). */
export interface Group {
  /** The group ID: hex SHA-256 of the group specifier, as every node and `ctx.groups.get` name it. */
  readonly id: string;
}

/** A NetGroup across the whole cluster. */
export interface GroupView {
  readonly id: string;
  /** Members on every node. */
  readonly size: number;
  /** The oldest members (at most 1,000) in join order, with the node each is connected to. */
  readonly members: readonly { readonly peerId: string; readonly node: string }[];
}

/** NetGroups across the cluster. */
export interface Groups {
  /** A group by ID (64 hex digits) or specifier ("G:…"); size 0 and no members when nobody is in it. */
  get(id: string): Promise<GroupView>;
}

/** A NetStream's stream as onPublish, onUnpublish, onSubscribe, onUnsubscribe and onData see it. */
export interface Stream {
  /** The stream name, without its `?query`. */
  readonly name: string;
  /** What the `?query` of the name the client sent held (`cam?token=x` → `{ token: 'x' }`). */
  readonly properties: Readonly<Record<string, string>>;
}

/** A live publication across the cluster. */
export interface PublicationView {
  readonly name: string;
  /** The origin: the ID of the node its publisher is connected to. */
  readonly node: string;
  /** The publisher's peer ID. */
  readonly publisher: string;
  /** When it started (ms since the epoch, the cluster store's clock). */
  readonly since: number;
  /** Players on every node. */
  readonly subscribers: number;
  /** Node ID → players there (nodes with none are absent). */
  readonly nodes: Readonly<Record<string, number>>;
}

/** This app's live publications across the cluster. */
export interface Publications {
  /** The publication of `name`, or null when nobody publishes it (player counts need a publisher). */
  get(name: string): Promise<PublicationView | null>;
}

/** Structured logging: lines are tagged with app, event and client, and reach `fnhost tail`. */
export interface Log {
  debug(message: string, fields?: Record<string, Value>): void;
  info(message: string, fields?: Record<string, Value>): void;
  warn(message: string, fields?: Record<string, Value>): void;
  error(message: string, fields?: Record<string, Value>): void;
}

/** What every handler gets as its last argument. */
export interface Ctx {
  readonly node: NodeInfo;
  readonly servers: Servers;
  readonly clients: Clients;
  readonly groups: Groups;
  readonly publications: Publications;
  /** `[vars]` from the config, and secrets. */
  readonly env: Readonly<Record<string, string>>;
  readonly log: Log;
  readonly kv: Kv;
}

type Awaitable<T> = T | Promise<T>;
/** What a handler may return when its result does not matter or is optional. */
// biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing is the common case
type Nothing = undefined | void;

/** The lifecycle handlers of an app; every one is optional and may be async. */
export interface App {
  /** The app's version is loaded on a node. */
  onStart?(ctx: Ctx): Awaitable<void>;
  /** The app's version is unloaded (new version deployed, node stopping). */
  onStop?(ctx: Ctx): Awaitable<void>;
  /**
   * An IHello for this app: return nothing to accept here, or up to 16 addresses `host:port`
   * to redirect to (a host name is resolved with DNS). Anything else is logged and answered here.
   */
  onHandshake?(hs: Handshake, ctx: Ctx): Awaitable<string | string[] | Nothing>;
  /**
   * NetConnection `connect`: return fields for the `_result` info (AMF data: `Value`s), or
   * `throw reject(…)` / `throw redirect(…)`. Returning anything else refuses the connect.
   */
  onConnection?(client: Client, args: Value[], ctx: Ctx): Awaitable<Record<string, Value> | Nothing>;
  /** The client's session closed or timed out. */
  onDisconnection?(client: Client, ctx: Ctx): Awaitable<void>;
  /**
   * NetConnection.call(name): the result is the `_result`; a throw becomes `_error` with its
   * message, and so does a result AMF cannot carry (a Map, a bigint, a cycle, …).
   */
  rpc?: Record<string, (client: Client, args: Value[], ctx: Ctx) => Awaitable<Value | Nothing>>;
  /**
   * A client joins a NetGroup (its group control flow, RTMFP-NOTES §7), before it is told of
   * other members: `throw reject(…)` (or any throw) refuses it with a flow exception; the
   * client's connection stays.
   */
  onJoinGroup?(client: Client, group: Group, ctx: Ctx): Awaitable<void>;
  /** A client that onJoinGroup let in left the group (closed its flow, or disconnected). */
  onUnjoinGroup?(client: Client, group: Group, ctx: Ctx): Awaitable<void>;
  /**
   * NetStream `publish`: any throw refuses it (NetStream.Publish.BadName with the message), and
   * so does a name another publisher holds anywhere in the cluster (checked after this).
   */
  onPublish?(client: Client, stream: Stream, ctx: Ctx): Awaitable<void>;
  /** A publish onPublish let in ended (closeStream, unpublish, disconnect). */
  onUnpublish?(client: Client, stream: Stream, ctx: Ctx): Awaitable<void>;
  /**
   * NetStream `play`: `throw redirect(address)` sends NetStream.Play.Failed with the address as
   * description and in `info.ex.redirect` (players such as `nc.play(name, { followRedirect })`
   * go there); any other throw refuses it with its message.
   */
  onSubscribe?(client: Client, stream: Stream, ctx: Ctx): Awaitable<void>;
  /** A play onSubscribe let in ended (closeStream, another play, disconnect). */
  onUnsubscribe?(client: Client, stream: Stream, ctx: Ctx): Awaitable<void>;
  /**
   * A data message a publisher sent (`@setDataFrame` metadata arrives as its handler name,
   * e.g. `onMetaData`; cue points as theirs); never audio or video. Defining it opts in.
   */
  onData?(client: Client, stream: Stream, name: string, args: Value[], ctx: Ctx): Awaitable<void>;
  /**
   * An IHello asked for a peer ID no node of the cluster has connected (a P2P initiator looking
   * for a peer, RTMFP-NOTES §6): return up to 7 addresses `host:port` to redirect the initiator
   * to (e.g. another cluster's rendezvous), or nothing to leave it unanswered. Anything else is
   * logged and leaves it unanswered.
   */
  onRendezVousUnknown?(peerId: string, ctx: Ctx): Awaitable<string | string[] | Nothing>;
  /** A node joined the cluster. */
  onServerConnection?(server: Server, ctx: Ctx): Awaitable<void>;
  /** A node left the cluster (clean leave, or reaped after missing heartbeats). */
  onServerDisconnection?(server: Server, ctx: Ctx): Awaitable<void>;
  /** Messages from other nodes: `server.send(name, …)` or `ctx.servers.broadcast(name, …)`. */
  server?: Record<string, (from: Server, args: Value[], ctx: Ctx) => Awaitable<void>>;
}

/** Declares an app (identity at run time; it gives your handlers their types). */
export function defineApp<T extends App>(app: T): T {
  return app;
}

/**
 * Thrown from `onConnection` (NetConnection.Connect.Rejected), `onPublish`, `onSubscribe` or
 * `onJoinGroup`: the client is refused with `message`.
 */
export function reject(message: string): Error {
  return Object.assign(new Error(message), { name: 'RejectError', fnhost: 'reject' as const });
}

/**
 * Thrown from `onConnection` or `onSubscribe`: the connect or play is refused and the info
 * object carries the new address (`info.ex.redirect`, `info.ex.code` 302: the Wowza/FMS
 * convention players follow).
 */
export function redirect(addresses: string | string[]): Error {
  const list = Array.isArray(addresses) ? addresses : [addresses];
  return Object.assign(new Error(`redirected to ${list.join(', ')}`), {
    name: 'RedirectError',
    fnhost: 'redirect' as const,
    addresses: list,
  });
}

/*
 * Balancing helpers, for onHandshake (`return roundRobin(ctx)`) and onConnection
 * (`const to = await leastLoaded(ctx, { exceptSelf: true }); if (to) throw redirect(to);`).
 * Each skips paused and draining nodes and nodes at max_clients; each resolves to undefined
 * when the choice is this node (accept here). When no node may take the client they throw
 * `reject('cluster full: …')`: onConnection refuses the client with it, onHandshake leaves
 * the IHello unanswered (the client retries, and gets in once a node has room).
 */

/** The next eligible node in turn (the same order on every node). */
export function roundRobin(ctx: Ctx, options?: BalanceOptions): Promise<string | undefined> {
  return chosen(ctx, { ...options, strategy: 'round-robin' });
}

/**
 * The better of two random eligible nodes by load (clients, plus redirects on their way), so
 * bursts spread instead of all landing on the node that looked emptiest at the last heartbeat.
 */
export function leastLoaded(ctx: Ctx, options?: BalanceOptions): Promise<string | undefined> {
  return chosen(ctx, { ...options, strategy: 'least-loaded' });
}

/** The node `key` sticks to (a user id, a room): the same on every node while the nodes stay. */
export function byHash(ctx: Ctx, key: string, options?: BalanceOptions): Promise<string | undefined> {
  return chosen(ctx, { ...options, strategy: 'by-hash', key: String(key) });
}

/**
 * Every eligible node's address (Cumulus's "all servers" redirect): the client tries them all
 * and keeps the first that answers. For onHandshake.
 */
export async function allServers(ctx: Ctx, options?: BalanceOptions): Promise<string[] | undefined> {
  const s = await selected(ctx, { ...options, strategy: 'all-servers' });
  return 'to' in s ? s.to : undefined;
}

async function chosen(ctx: Ctx, request: SelectRequest): Promise<string | undefined> {
  const s = await selected(ctx, request);
  return 'to' in s ? s.to[0] : undefined;
}

async function selected(ctx: Ctx, request: SelectRequest): Promise<{ here: true } | { to: string[] }> {
  const s = await ctx.servers.select(request);
  if ('full' in s) throw reject(s.full);
  return s;
}
