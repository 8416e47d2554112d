import type { ConfigStrategy } from '../cluster/selection.ts';
import { shortHash } from '../cluster/state.ts';
import { type Address, formatAddress } from '../rtmfp/address.ts';
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
  type ClientInfo,
  type DispatchKind,
  type GroupInfo,
  HANDLERS,
  type HandlerFailure,
  type Outcome,
  type SandboxCode,
  type SandboxLimits,
  type ServerInfo,
} from '../sandbox/sandbox.ts';
import { AppServices, type AppServicesOptions } from './app-services.ts';
import { splitUrl } from './app-url.ts';
import { HandlerCalls } from './handler-calls.ts';
import { toPlain } from './handler-values.ts';
import { HandshakeDecisions } from './handshake-decisions.ts';
import type { HandshakeHook, HandshakeRequest } from './handshake-hook.ts';
import type { HandlerObserver } from './node-metrics.ts';
import type { StreamApps } from './streams.ts';

/** The node's apps' settings, and what the node lends their `ctx` (AppServicesOptions). */
export interface AppHostOptions extends AppServicesOptions {
  limits: SandboxLimits;
  /** `[vars]` and secrets, per app. */
  env: (app: string) => Record<string, string>;
  /** onHandshake calls allowed per second on this node; past it the default (accept here) applies. */
  handshakesPerSecond: number;
  /** `[balance] strategy`: balances handshakes that onHandshake leaves undecided. */
  strategy?: ConfigStrategy;
  /** Hears each handler call's time and failure (`/metrics`). */
  handlers?: HandlerObserver;
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
 * its own event; the client gets a clear TC error. Where IHellos go is HandshakeDecisions',
 * what `ctx` reaches AppServices', and the live streams' handlers run for NodeStreams
 * (StreamApps).
 */
export class AppHost implements TCServerHandler, StreamApps {
  private readonly o: AppHostOptions;
  private readonly apps = new Map<string, AppSandbox>();
  private readonly clients = new Map<TCServerConnection, Connected>();
  private readonly byId = new Map<string, Connected>();
  /** Memberships onJoinGroup let in (only those get onUnjoinGroup). */
  private readonly joined = new Set<GroupMembership>();
  private readonly calls: HandlerCalls;
  private readonly services: AppServices;
  private readonly handshakes: HandshakeDecisions;

  constructor(o: AppHostOptions) {
    this.o = o;
    this.calls = new HandlerCalls(o.logger, o.handlers);
    this.services = new AppServices(o, {
      connection: (peerId) => this.byId.get(peerId)?.conn,
      clientCount: () => this.clients.size,
      deliver: (app, from, name, args) => this.deliver(app, from, name, args),
    });
    this.handshakes = new HandshakeDecisions({
      apps: this.apps,
      calls: this.calls,
      logger: o.logger,
      perSecond: o.handshakesPerSecond,
      balancer: o.balancer,
      strategy: o.strategy,
    });
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

  /** onHandshake calls skipped because of the per-second bound. */
  get handshakesOverBound(): number {
    return this.handshakes.overBound;
  }

  /**
   * Loads (or replaces) an app's version: the new sandbox starts, adopts the connected
   * clients with their `data`, and takes every new event; the old one finishes what it has in
   * flight, gets `onStop`, and is disposed. Throws if the new version fails to load — the old
   * one keeps running.
   */
  async load(app: string, code: SandboxCode): Promise<void> {
    const next = await AppSandbox.create(code, this.o.limits, this.o.env(app), this.services.of(app));
    const previous = this.apps.get(app);
    for (const c of this.clients.values()) {
      if (c.app === app) next.adopt(c.info, previous?.clientData(c.info.id));
    }
    this.apps.set(app, next);
    await this.calls.run(app, next, 'start', '', undefined, []);
    this.o.logger.info({ app, version: shortHash(code.hash), handlers: next.handlerNames }, 'app loaded');
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

  /** Where an IHello for an app goes (HandshakeDecisions.handshake). Never rejects. */
  handshake(request: HandshakeRequest, now: number): ReturnType<HandshakeHook> {
    return this.handshakes.handshake(request, now);
  }

  /** Where an initiator looking for a peer no node knows goes (onRendezVousUnknown). Never rejects. */
  rendezvousUnknown(peerId: string, from: Address): Promise<Address[] | undefined> {
    return this.handshakes.rendezvousUnknown(peerId, from);
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
    return this.calls
      .run(entry.app, sandbox, kind, '', entry.info, args, (outcome) => {
        result = outcome;
      })
      .then(() => result);
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
    void this.calls.run(app, sandbox, 'connect', '', info, request.args.map(toPlain), (outcome) => {
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
    void this.calls.run(entry.app, sandbox, 'rpc', name, entry.info, args.map(toPlain), (outcome) => {
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
    void this.calls.run(entry.app, sandbox, 'joinGroup', '', entry.info, [group], (outcome) => {
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
      void this.calls.run(entry.app, sandbox, 'unjoinGroup', '', entry.info, [
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
    if (sandbox) void this.calls.run(entry.app, sandbox, 'disconnect', '', entry.info, []);
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
    await this.calls.run(app, sandbox, 'stop', '', undefined, []);
    sandbox.dispose();
  }

  /**
   * Another node's `server.send(name, …)` for `app` (already authenticated by the cluster).
   * Never rejects.
   */
  async deliver(app: string, from: ServerInfo, name: string, args: unknown[]): Promise<void> {
    const sandbox = this.apps.get(app);
    if (sandbox) await this.calls.run(app, sandbox, 'server', name, undefined, [from, ...args]);
  }

  /** onServerConnection / onServerDisconnection in every app. Never rejects. */
  async serverChanged(kind: 'serverJoined' | 'serverLeft', server: ServerInfo): Promise<void> {
    await Promise.all(
      [...this.apps].map(([app, sandbox]) => this.calls.run(app, sandbox, kind, '', undefined, [server])),
    );
  }
}
