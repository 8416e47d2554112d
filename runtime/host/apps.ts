import type { Logger } from 'pino';
import type { KvStore } from '../cluster/kv.ts';
import type { PublicationStore } from '../cluster/publications.ts';
import type { ConfigStrategy } from '../cluster/selection.ts';
import { shortHash } from '../cluster/state.ts';
import { errorText } from '../error-text.ts';
import { type Address, formatAddress, parseAddress } from '../rtmfp/address.ts';
import type { AmfObject, AmfValue } from '../rtmfp/amf-value.ts';
import type { ProtocolError } from '../rtmfp/errors.ts';
import type { GroupMembership } from '../rtmfp/tc-group.ts';
import {
  type ConnectRequest,
  redirectInfo,
  type TCServerConnection,
  type TCServerHandler,
} from '../rtmfp/tc-server.ts';
import {
  AppSandbox,
  CHOSE_HERE,
  type ClientInfo,
  type DispatchKind,
  eventName,
  failed,
  type GroupInfo,
  type GroupView,
  HANDLERS,
  type HandlerFailure,
  handlerName,
  type Outcome,
  type PublicationView,
  type SandboxCode,
  type SandboxLimits,
  type SandboxServices,
  type Selection,
  type ServerInfo,
} from '../sandbox/sandbox.ts';
import type { Balancer } from './balancer.ts';
import type { NodeGroups } from './groups.ts';
import {
  callArgumentsProblem,
  connectResultProblem,
  isPlainObject,
  MAX_REDIRECT_ADDRESSES,
  redirectTargets,
  rpcResultProblem,
  selectRequest,
  toPlain,
  unresolvedTarget,
} from './handler-values.ts';
import { type HandshakeHook, type HandshakeRequest, UNANSWERED } from './handshake-hook.ts';
import { HostNames } from './host-names.ts';
import type { HandlerObserver } from './node-metrics.ts';

/** This node as handlers see it (`ctx.node`, `ctx.servers`). */
export interface NodeIdentity {
  id: string;
  publicAddress: string;
}

export interface AppHostOptions {
  logger: Logger;
  limits: SandboxLimits;
  /** `[vars]` and secrets, per app. */
  env: (app: string) => Record<string, string>;
  kv: KvStore;
  node: NodeIdentity;
  /** onHandshake calls allowed per second on this node; past it the default (accept here) applies. */
  handshakesPerSecond: number;
  /** The cluster's nodes and node-to-node messages; absent: standalone (this node only). */
  directory?: ServerDirectory;
  /** Chooses nodes for new clients; absent: standalone, every client is accepted here. */
  balancer?: Balancer;
  /** `[balance] strategy`: balances handshakes that onHandshake leaves undecided. */
  strategy?: ConfigStrategy;
  /** Sees every `ctx.log` line of every app (for `fnhost tail`). */
  tap?: (app: string, record: Record<string, unknown>) => void;
  /** Hears each handler call's time and failure (`/metrics`). */
  handlers?: HandlerObserver;
  /** NetGroups across the cluster; absent: NetGroup joins are refused. */
  groups?: NodeGroups;
  /** The cluster's publication registry, for `ctx.publications.get`; absent: it finds none. */
  publications?: PublicationStore;
}

/** Who else is in the cluster, and how to reach their apps (runtime/cluster). */
export interface ServerDirectory {
  servers(): ServerInfo[];
  send(to: string, app: string, name: string, args: unknown[]): void;
  broadcast(app: string, name: string, args: unknown[]): number;
}

/**
 * Why a handler's result will not do, for the events whose result the node acts on (besides
 * onHandshake, whose addresses are checked as they are resolved); undefined when it will.
 */
const RESULT_CHECKS: Partial<Record<DispatchKind, (value: unknown) => string | undefined>> = {
  connect: connectResultProblem,
  rpc: rpcResultProblem,
};

/**
 * How long an IHello's decision answers its repeats: the re-send to every address right after
 * a redirect and a first retransmission. Later retries are decided afresh, so an onHandshake
 * that falls back on `hs.attempts` (Cumulus-style: accept here after a few) still can.
 */
const DECISION_MS = 2_000;
/** Decisions kept at most; the oldest go first. */
const MAX_DECISIONS = 10_000;

/** What the hook hands the node for one IHello. */
type HandshakeDecision = ReturnType<HandshakeHook>;

/** An IHello as onHandshake sees it. */
interface Handshake {
  address: string;
  path: string;
  properties: Record<string, string>;
  attempts: number;
}

interface Connected {
  conn: TCServerConnection;
  app: string;
  info: ClientInfo;
  /** onConnection accepted it: only such a client is handed to onDisconnection. */
  accepted: boolean;
}

/**
 * Runs the apps of one node: routes each NetConnection to the app named by its URL's first
 * path segment, turns protocol events into handler calls in that app's sandbox, and answers
 * the client from the outcome. A handler that fails, loops or runs out of memory fails only
 * its own event; the client gets a clear TC error.
 */
export class AppHost implements TCServerHandler {
  private readonly o: AppHostOptions;
  private readonly log: Logger;
  private readonly apps = new Map<string, AppSandbox>();
  private readonly clients = new Map<TCServerConnection, Connected>();
  private readonly byId = new Map<string, Connected>();
  /** Memberships onJoinGroup let in (only those get onUnjoinGroup). */
  private readonly joined = new Set<GroupMembership>();
  private readonly hostNames = new HostNames();
  private handshakeWindow = 0;
  /** Handshake tag → where its IHellos go, while its client may still be handshaking. */
  private readonly decisions = new Map<
    string,
    { decision: Promise<Address[] | undefined | typeof UNANSWERED>; until: number }
  >();
  private handshakeCalls = 0;
  /** onHandshake calls skipped because of the per-second bound. */
  handshakesOverBound = 0;

  constructor(o: AppHostOptions) {
    this.o = o;
    this.log = o.logger;
  }

  get appNames(): string[] {
    return [...this.apps.keys()];
  }

  version(app: string): string | undefined {
    return this.apps.get(app)?.hash;
  }

  /** Times the app's running version had its isolate rebuilt after hitting the memory limit. */
  rebuilds(app: string): number | undefined {
    return this.apps.get(app)?.rebuilds;
  }

  /** Heap bytes of each app's running isolate. */
  heapBytes(): Record<string, number> {
    return Object.fromEntries([...this.apps].map(([app, sandbox]) => [app, sandbox.heapBytes()]));
  }

  /** Answers (kv, client.call) that came back for an isolate of the running version that is gone. */
  droppedResults(app: string): number | undefined {
    return this.apps.get(app)?.droppedResults;
  }

  /**
   * Loads (or replaces) an app's version: the new sandbox starts, adopts the connected
   * clients with their `data`, and takes every new event; the old one finishes what it has in
   * flight, gets `onStop`, and is disposed. Throws if the new version fails to load — the old
   * one keeps running.
   */
  async load(app: string, code: SandboxCode): Promise<void> {
    const next = await AppSandbox.create(code, this.o.limits, this.o.env(app), this.services(app));
    const previous = this.apps.get(app);
    for (const c of this.clients.values()) {
      if (c.app === app) next.adopt(c.info, previous?.clientData(c.info.id));
    }
    this.apps.set(app, next);
    await this.run(app, next, 'start', '', undefined, []);
    this.log.info({ app, version: shortHash(code.hash), handlers: next.handlerNames }, 'app loaded');
    if (previous) void this.retire(app, previous);
  }

  /** Stops every app (node shutdown). */
  async stop(): Promise<void> {
    await Promise.all([...this.apps].map(([app, sandbox]) => this.retire(app, sandbox)));
    this.apps.clear();
  }

  /** What an RtmfpNode needs to hand its connections and IHellos to these apps. */
  nodeHooks(): { handler: TCServerHandler; handshake: HandshakeHook } {
    return { handler: this, handshake: (request, now) => this.handshake(request, now) };
  }

  /**
   * Where an IHello goes: IP addresses to redirect to, undefined to accept here (also when
   * onHandshake fails or returns something else), UNANSWERED when no node may take the
   * client. onHandshake decides first; when it names no address, `[balance] strategy` does.
   * A client another node sent here (it holds a seat here) is accepted without either: its
   * onHandshake ran there. Never rejects.
   */
  handshake(request: HandshakeRequest, now: number): HandshakeDecision {
    const { app, path, properties } = splitUrl(request.uri);
    const sandbox = this.apps.get(app);
    const handler = sandbox?.has('onHandshake') ?? false;
    const strategy = this.o.strategy ?? 'none';
    if (!sandbox || (!handler && (strategy === 'none' || !this.o.balancer))) return undefined;
    const known = this.decisions.get(request.tag);
    if (known && known.until > now) return known.decision;
    if (now - this.handshakeWindow >= 1000) {
      this.handshakeWindow = now;
      this.handshakeCalls = 0;
    }
    if (++this.handshakeCalls > this.o.handshakesPerSecond) {
      this.handshakesOverBound++;
      return undefined;
    }
    const hs = { address: formatAddress(request.from), path, properties, attempts: request.attempts };
    const decision = this.decide(app, sandbox, handler ? hs : undefined, request).catch((err: unknown) => {
      this.internalError(app, 'onHandshake', err);
      return undefined;
    });
    this.remember(request.tag, decision, now);
    return decision;
  }

  /**
   * onRendezVousUnknown of each app that has it (in name order; an IHello naming a peer carries
   * no app) until one names addresses: where to redirect an initiator looking for a peer no
   * node knows, resolved to IP addresses, or undefined. A wrong result is logged and counts as
   * none. Never rejects.
   */
  async rendezvousUnknown(peerId: string, from: Address): Promise<Address[] | undefined> {
    for (const app of [...this.apps.keys()].sort()) {
      const sandbox = this.apps.get(app);
      if (!sandbox?.has('onRendezVousUnknown')) continue;
      const start = performance.now();
      const outcome = await sandbox.dispatch('rendezvousUnknown', '', undefined, [peerId]);
      this.observe(app, 'rendezvousUnknown', '', start, outcome);
      const named = outcome.status === 'ok' ? redirectTargets(outcome.value) : [];
      if (typeof named === 'string') {
        this.report(app, 'rendezvousUnknown', '', undefined, failed(named));
        continue;
      }
      this.report(app, 'rendezvousUnknown', '', undefined, outcome);
      if (named.length === 0) continue;
      const resolved = await this.resolve(named, from);
      if (typeof resolved !== 'string') return resolved;
      this.report(app, 'rendezvousUnknown', '', undefined, failed(resolved));
    }
    return undefined;
  }

  /**
   * Keeps an IHello's decision for its tag: a client re-sends its IHello to every address it
   * has (RFC 7016 §3.5.1.1.1), so the node that redirected it hears it again and must answer
   * the same, not take a fresh turn. A client left unanswered is decided afresh.
   */
  private remember(tag: string, decision: Promise<Address[] | undefined | typeof UNANSWERED>, now: number) {
    this.decisions.delete(tag);
    this.decisions.set(tag, { decision, until: now + DECISION_MS });
    if (this.decisions.size > MAX_DECISIONS) this.decisions.delete(this.decisions.keys().next().value!);
    void decision.then((d) => {
      if (d === UNANSWERED) this.decisions.delete(tag);
    });
  }

  private async decide(
    app: string,
    sandbox: AppSandbox,
    hs: Handshake | undefined,
    request: HandshakeRequest,
  ): Promise<Address[] | undefined | typeof UNANSWERED> {
    const balancer = this.o.balancer;
    if (balancer && (await balancer.seated(request.tag))) return undefined;
    let targets: Address[] = [];
    if (hs) {
      const start = performance.now();
      const outcome = await sandbox.dispatch('handshake', '', undefined, [hs]);
      this.observe(app, 'handshake', '', start, outcome);
      if (outcome.status === 'ok' && outcome.value === CHOSE_HERE) return undefined;
      const named = outcome.status === 'ok' ? redirectTargets(outcome.value) : [];
      if (typeof named === 'string') {
        this.report(app, 'handshake', '', undefined, failed(named));
        return undefined;
      }
      if (outcome.status === 'failed' && outcome.failure.kind === 'reject') {
        this.log.info({ app, why: outcome.failure.message }, 'onHandshake left an IHello unanswered');
        return UNANSWERED;
      }
      this.report(app, 'handshake', '', undefined, outcome);
      targets = named;
    }
    if (targets.length === 0 && balancer && this.o.strategy && this.o.strategy !== 'none') {
      const choice = await balancer.choose({ strategy: this.o.strategy });
      if (choice.kind === 'full') return UNANSWERED;
      if (choice.kind === 'here') return undefined;
      targets = choice.to.flatMap((t) => parseAddress(t) ?? []);
    }
    if (targets.length === 0) return undefined;
    await balancer?.seat(request.tag, targets.map(formatAddress));
    const resolved = await this.resolve(targets, request.from);
    if (typeof resolved === 'string') {
      this.report(app, 'handshake', '', undefined, failed(resolved));
      return undefined;
    }
    return resolved;
  }

  /** The IP addresses of `targets` (host names resolved), or why they name none. */
  private async resolve(targets: Address[], client: Address): Promise<Address[] | string> {
    const resolved = await Promise.all(
      targets.map((t) =>
        this.hostNames.resolve(t, client).catch((e: Error) => unresolvedTarget(t, e.message)),
      ),
    );
    const why = resolved.find((r) => typeof r === 'string');
    return why ?? (resolved as Address[][]).flat().slice(0, MAX_REDIRECT_ADDRESSES);
  }

  /** `ctx.groups.get(id)`: a group across the cluster; a bad ID fails with a message naming it. */
  private async group(id: string): Promise<GroupView> {
    if (!this.o.groups) return { id, size: 0, members: [] };
    try {
      return await this.o.groups.view(id);
    } catch (e) {
      throw new Error(`ctx.groups.get: ${errorText(e).replace(/^state: /, '')}`);
    }
  }

  /** `ctx.publications.get(name)`: the app's live publication across the cluster, or null. */
  private async publication(app: string, name: string): Promise<PublicationView | null> {
    if (!this.o.publications) return null;
    let info: Awaited<ReturnType<PublicationStore['get']>>;
    try {
      info = await this.o.publications.get(app, name);
    } catch (e) {
      throw new Error(`ctx.publications.get: ${errorText(e).replace(/^state: /, '')}`);
    }
    if (!info) return null;
    const { node, publisher, since, subscribers, nodes } = info;
    return { name: info.name, node, publisher, since, subscribers, nodes };
  }

  /** A client onConnection let in: its app and connect URL (NodeStreams). */
  client(peerId: string): { app: string; tcUrl: string } | undefined {
    const entry = this.byId.get(peerId);
    if (!entry?.accepted) return undefined;
    return { app: entry.app, tcUrl: entry.conn.request?.tcUrl ?? '' };
  }

  /** Whether `app`'s running version has the handler of `kind`. */
  handles(app: string, kind: DispatchKind): boolean {
    return this.apps.get(app)?.has(HANDLERS[kind].export) ?? false;
  }

  /**
   * Runs `kind`'s handler for the client `peerId` (let in by onConnection) and resolves to its
   * checked outcome; undefined when the client or its app is gone. Never rejects.
   */
  clientEvent(peerId: string, kind: DispatchKind, args: unknown[]): Promise<Outcome | undefined> {
    const entry = this.byId.get(peerId);
    const sandbox = entry?.accepted ? this.apps.get(entry.app) : undefined;
    if (!entry || !sandbox) return Promise.resolve(undefined);
    let result: Outcome | undefined;
    return this.run(entry.app, sandbox, kind, '', entry.info, args, (outcome) => {
      result = outcome;
    }).then(() => result);
  }

  /** `ctx.servers.select(request)`: checks what the handler asked, then lets the balancer choose. */
  private async select(raw: unknown): Promise<Selection> {
    const request = selectRequest(raw);
    if (typeof request === 'string') throw new Error(`ctx.servers.select: ${request}`);
    const choice = this.o.balancer ? await this.o.balancer.choose(request) : { kind: 'here' as const };
    if (choice.kind === 'full') return { full: choice.reason };
    return choice.kind === 'here' ? { here: true } : { to: choice.to };
  }

  connect(conn: TCServerConnection, request: ConnectRequest): void {
    const { app, path, properties } = splitUrl(request.tcUrl, request.app);
    const sandbox = this.apps.get(app);
    if (!sandbox) {
      conn.reject(`unknown app "${app}"`, { code: 'NetConnection.Connect.InvalidApp' });
      return;
    }
    const info: ClientInfo = {
      id: conn.peerId,
      address: formatAddress(conn.session.address),
      path,
      properties,
    };
    const entry: Connected = { conn, app, info, accepted: false };
    this.clients.set(conn, entry);
    this.byId.set(info.id, entry);
    void this.run(app, sandbox, 'connect', '', info, request.args.map(toPlain), (outcome) => {
      const accepted = outcome.status === 'ok' || outcome.status === 'missing';
      if (conn.state !== 'connecting') {
        // The client left while onConnection ran: it gets onDisconnection only if it was let in.
        if (accepted) this.disconnected(entry);
        else this.apps.get(app)?.forget(info.id);
        return;
      }
      if (!accepted) {
        this.apps.get(app)?.forget(info.id);
        this.refuse(conn, request.tcUrl, outcome.failure);
        return;
      }
      entry.accepted = true;
      conn.accept(outcome.status === 'ok' ? ((outcome.value ?? {}) as AmfObject) : {});
    });
  }

  call(
    conn: TCServerConnection,
    name: string,
    args: AmfValue[],
    reply: Parameters<TCServerHandler['call']>[3],
  ): void {
    const entry = this.clients.get(conn);
    const sandbox = entry && this.apps.get(entry.app);
    if (!entry || !sandbox) {
      reply?.error(`Method not found: ${name}`);
      return;
    }
    void this.run(entry.app, sandbox, 'rpc', name, entry.info, args.map(toPlain), (outcome) => {
      if (outcome.status === 'ok') reply?.result(outcome.value as AmfValue);
      else if (outcome.status === 'missing') reply?.error(`Method not found: ${name}`);
      else reply?.error(outcome.failure.message);
    });
  }

  /**
   * A NetGroup join (RTMFP-NOTES §7): onJoinGroup decides (a throw refuses the membership with a
   * flow exception), then the cluster store records it and the member hears of others.
   */
  groupJoin(conn: TCServerConnection, membership: GroupMembership): void {
    const entry = this.clients.get(conn);
    const sandbox = entry && this.apps.get(entry.app);
    const groups = this.o.groups;
    if (!entry?.accepted || !sandbox || !groups) {
      membership.refuse();
      return;
    }
    const group: GroupInfo = { id: membership.groupIdHex };
    void this.run(entry.app, sandbox, 'joinGroup', '', entry.info, [group], (outcome) => {
      if (membership.state === 'left') return;
      if (outcome.status === 'failed') {
        groups.failed('refused', conn.peerId, outcome.failure.message);
        membership.refuse();
        return;
      }
      this.joined.add(membership);
      void groups.join(conn.peerId, membership);
    });
  }

  /** A membership onJoinGroup let in ended: out of the store, then onUnjoinGroup. */
  groupLeave(conn: TCServerConnection, membership: GroupMembership): void {
    if (!this.joined.delete(membership)) return;
    void this.o.groups?.leave(conn.peerId, membership);
    const entry = this.clients.get(conn);
    const sandbox = entry && this.apps.get(entry.app);
    if (entry && sandbox)
      void this.run(entry.app, sandbox, 'unjoinGroup', '', entry.info, [
        { id: membership.groupIdHex } satisfies GroupInfo,
      ]);
  }

  /** A malformed join, or one past `[limits] groups_per_client`: its flow was refused. */
  groupJoinFailed(conn: TCServerConnection, error: ProtocolError): void {
    this.o.groups?.failed(error.reason, conn.peerId, error.message);
  }

  closed(conn: TCServerConnection): void {
    const entry = this.clients.get(conn);
    if (!entry) return;
    this.clients.delete(conn);
    this.byId.delete(entry.info.id);
    // A client still in onConnection is settled when it returns; a refused one was forgotten.
    if (entry.accepted) this.disconnected(entry);
  }

  private disconnected(entry: Connected): void {
    const sandbox = this.apps.get(entry.app);
    if (sandbox) void this.run(entry.app, sandbox, 'disconnect', '', entry.info, []);
  }

  /** NetConnection.Connect.Rejected with the handler's message, or the redirect convention. */
  private refuse(conn: TCServerConnection, tcUrl: string, f: HandlerFailure): void {
    if (f.kind === 'reject') {
      conn.reject(f.message);
      return;
    }
    if (f.kind === 'redirect' && f.addresses?.length) {
      conn.reject(f.message, redirectInfo(tcUrl, f.addresses[0]));
      return;
    }
    conn.reject(`onConnection failed: ${f.message}`);
  }

  private async retire(app: string, sandbox: AppSandbox): Promise<void> {
    const deadline = Date.now() + this.o.limits.awaitMs;
    while (sandbox.busy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.run(app, sandbox, 'stop', '', undefined, []);
    sandbox.dispose();
  }

  /** Logs what a handler did wrong, naming it; success and "no handler" are silent. */
  private report(
    app: string,
    kind: DispatchKind,
    name: string,
    clientId: string | undefined,
    outcome: Outcome,
  ): void {
    if (outcome.status !== 'failed' || outcome.failure.kind !== 'error') return;
    const { message, stack } = outcome.failure;
    const handler = handlerName(kind, name);
    this.log.error(
      { app, event: eventName(kind, name), handler, client: clientId?.slice(0, 16), err: { message, stack } },
      `${handler} failed: ${message}`,
    );
  }

  /**
   * Runs one event's handler and, once its result is checked (RESULT_CHECKS) and any failure
   * logged, `act`s on the outcome. Never rejects: what acting throws (a bug of the node's,
   * since results are checked) is logged instead of ending the process.
   */
  private run(
    app: string,
    sandbox: AppSandbox,
    kind: DispatchKind,
    name: string,
    client: ClientInfo | undefined,
    args: unknown[],
    act: (outcome: Outcome) => void = () => {},
  ): Promise<void> {
    const start = performance.now();
    return sandbox
      .dispatch(kind, name, client, args)
      .then((raw) => {
        const why = raw.status === 'ok' ? RESULT_CHECKS[kind]?.(raw.value) : undefined;
        const outcome = why === undefined ? raw : failed(why);
        this.observe(app, kind, name, start, outcome);
        this.report(app, kind, name, client?.id, outcome);
        act(outcome);
      })
      .catch((err: unknown) => this.internalError(app, handlerName(kind, name), err));
  }

  /**
   * Times a handler call that ran. An event the app has no handler for is not counted: its
   * name (an RPC's comes from the client) would be a label anyone could make up.
   */
  private observe(app: string, kind: DispatchKind, name: string, start: number, outcome: Outcome): void {
    if (outcome.status === 'missing') return;
    const seconds = (performance.now() - start) / 1000;
    this.o.handlers?.handled(
      app,
      eventName(kind, name),
      seconds,
      outcome.status === 'failed' ? outcome.failure : undefined,
    );
  }

  private internalError(app: string, handler: string, err: unknown): void {
    this.log.error({ app, handler, err }, `${handler}: the node failed to act on its outcome`);
  }

  /**
   * Another node's `server.send(name, …)` for `app` (already authenticated by the cluster).
   * Never rejects.
   */
  async deliver(app: string, from: ServerInfo, name: string, args: unknown[]): Promise<void> {
    const sandbox = this.apps.get(app);
    if (sandbox) await this.run(app, sandbox, 'server', name, undefined, [from, ...args]);
  }

  /** onServerConnection / onServerDisconnection in every app. Never rejects. */
  async serverChanged(kind: 'serverJoined' | 'serverLeft', server: ServerInfo): Promise<void> {
    await Promise.all(
      [...this.apps].map(([app, sandbox]) => this.run(app, sandbox, kind, '', undefined, [server])),
    );
  }

  private self(): ServerInfo {
    return { ...this.o.node, load: { clients: this.clients.size }, paused: false, state: 'serving' };
  }

  private services(app: string): SandboxServices {
    const log = this.log.child({ app });
    return {
      log: (level, event, clientId, message, fields) => {
        const record = { event, client: clientId?.slice(0, 16), ...(isPlainObject(fields) ? fields : {}) };
        log[level](record, message);
        this.o.tap?.(app, { level, ...record, msg: message });
      },
      node: () => this.self(),
      servers: () => this.o.directory?.servers() ?? [this.self()],
      serverSend: (to, name, args) => {
        if (this.o.directory) this.o.directory.send(to, app, name, args);
        else if (to === this.o.node.id) void this.deliver(app, this.self(), name, args);
      },
      serverBroadcast: (name, args) => this.o.directory?.broadcast(app, name, args) ?? 0,
      kv: (op, args) => {
        const [key, value, extra] = args as [string, unknown, number];
        if (op === 'get') return this.o.kv.get(app, key);
        if (op === 'set') return this.o.kv.set(app, key, value, extra);
        if (op === 'delete') return this.o.kv.delete(app, key);
        return this.o.kv.incr(app, key, Number(value));
      },
      clientCall: (id, name, args) =>
        new Promise((resolve, reject) => {
          const entry = this.byId.get(id);
          if (!entry) {
            reject(new Error(`client ${id.slice(0, 16)} is not connected`));
            return;
          }
          const problem = callArgumentsProblem(name, args);
          if (problem) {
            reject(new Error(problem));
            return;
          }
          entry.conn.call(name, args as AmfValue[], (ok, value) => {
            if (ok) resolve(toPlain(value));
            else reject(new Error(describeStatus(value)));
          });
        }),
      clientClose: (id, reason) => this.byId.get(id)?.conn.close(reason || 'Closed by the app.'),
      select: (request) => this.select(request),
      group: (id) => this.group(id),
      publication: (name) => this.publication(app, name),
    };
  }
}

/** `rtmfp://host/app/a/b?x=1` → app, path `a/b`, properties {x: '1'}. */
export function splitUrl(
  url: string,
  fallbackApp = '',
): { app: string; path: string; properties: Record<string, string> } {
  const m = /^[a-z]+:\/\/[^/]*\/?([^?#]*)(?:\?([^#]*))?/i.exec(url);
  const segments = (m?.[1] ?? '').split('/').filter(Boolean).map(safeDecode);
  const properties: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(m?.[2] ?? '')) properties[k] = v;
  return { app: segments[0] ?? fallbackApp, path: segments.slice(1).join('/'), properties };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function describeStatus(info: AmfValue): string {
  if (isPlainObject(info) && typeof info.description === 'string') return info.description;
  if (isPlainObject(info) && typeof info.code === 'string') return info.code;
  return 'the client answered with an error';
}
