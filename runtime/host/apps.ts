import type { Logger } from 'pino';
import type { KvStore } from '../cluster/memory-kv.ts';
import { shortHash } from '../cluster/state.ts';
import { type Address, formatAddress, parseAddress } from '../rtmfp/address.ts';
import type { AmfObject, AmfValue } from '../rtmfp/amf-value.ts';
import { EcmaArray, TypedObject } from '../rtmfp/amf-value.ts';
import type { ConnectRequest, TCServerConnection, TCServerHandler } from '../rtmfp/tc-server.ts';
import {
  AppSandbox,
  type ClientInfo,
  type HandlerFailure,
  type Outcome,
  type SandboxCode,
  type SandboxLimits,
  type SandboxServices,
  type ServerInfo,
} from '../sandbox/sandbox.ts';
import type { NodeOptions } from './node.ts';

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
  /** Sees every `ctx.log` line of every app (for `fnhost tail`). */
  tap?: (app: string, record: Record<string, unknown>) => void;
}

/** Who else is in the cluster, and how to reach their apps (runtime/cluster). */
export interface ServerDirectory {
  servers(): ServerInfo[];
  send(to: string, app: string, name: string, args: unknown[]): void;
  broadcast(app: string, name: string, args: unknown[]): number;
}

/** An IHello for an app, as the node hands it over. */
export interface HandshakeRequest {
  from: Address;
  uri: string;
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
  private handshakeWindow = 0;
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
    this.report('start', app, undefined, await next.dispatch('start', '', undefined, []));
    this.log.info({ app, version: shortHash(code.hash), handlers: next.handlerNames }, 'app loaded');
    if (previous) void this.retire(app, previous);
  }

  /** Stops every app (node shutdown). */
  async stop(): Promise<void> {
    await Promise.all([...this.apps].map(([app, sandbox]) => this.retire(app, sandbox)));
    this.apps.clear();
  }

  /** What an RtmfpNode needs to hand its connections and IHellos to these apps. */
  nodeHooks(): Pick<NodeOptions, 'handler' | 'handshake'> {
    return { handler: this, handshake: (request, now) => this.handshake(request, now) };
  }

  /** onHandshake: addresses to redirect to, or undefined to accept here (also when it fails). */
  handshake(request: HandshakeRequest, now: number): Promise<Address[] | undefined> | undefined {
    const { app, path, properties } = splitUrl(request.uri);
    const sandbox = this.apps.get(app);
    if (!sandbox?.has('onHandshake')) return undefined;
    if (now - this.handshakeWindow >= 1000) {
      this.handshakeWindow = now;
      this.handshakeCalls = 0;
    }
    if (++this.handshakeCalls > this.o.handshakesPerSecond) {
      this.handshakesOverBound++;
      return undefined;
    }
    const hs = { address: formatAddress(request.from), path, properties, attempts: request.attempts };
    return sandbox.dispatch('handshake', '', undefined, [hs]).then((outcome) => {
      this.report('handshake', app, undefined, outcome);
      if (outcome.status !== 'ok' || outcome.value == null) return undefined;
      const list = Array.isArray(outcome.value) ? outcome.value : [outcome.value];
      const addresses = list.flatMap((a) => (typeof a === 'string' ? (parseAddress(a) ?? []) : []));
      if (addresses.length !== list.length) {
        this.log.warn(
          { app, value: outcome.value },
          'onHandshake returned something other than "ip:port" addresses',
        );
      }
      return addresses.length > 0 ? addresses : undefined;
    });
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
    sandbox.dispatch('connect', '', info, request.args.map(toPlain)).then((outcome) => {
      this.report('connect', app, info.id, outcome);
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
      conn.accept(
        outcome.status === 'ok' && isPlainObject(outcome.value) ? (outcome.value as AmfObject) : {},
      );
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
    sandbox.dispatch('rpc', name, entry.info, args.map(toPlain)).then((outcome) => {
      this.report(`rpc.${name}`, entry.app, entry.info.id, outcome);
      if (outcome.status === 'ok') reply?.result(outcome.value as AmfValue);
      else if (outcome.status === 'missing') reply?.error(`Method not found: ${name}`);
      else reply?.error(outcome.failure.message);
    });
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
    this.apps
      .get(entry.app)
      ?.dispatch('disconnect', '', entry.info, [])
      .then((o) => this.report('disconnect', entry.app, entry.info.id, o));
  }

  /** NetConnection.Connect.Rejected with the handler's message, or the redirect convention. */
  private refuse(conn: TCServerConnection, tcUrl: string, f: HandlerFailure): void {
    if (f.kind === 'reject') {
      conn.reject(f.message);
      return;
    }
    if (f.kind === 'redirect' && f.addresses?.length) {
      const target = f.addresses[0];
      // The same URL (app, path, query) on the new host, unless the app gave a whole URL.
      const url = /^rtmfp:\/\//i.test(target)
        ? target
        : tcUrl.replace(/^[a-z]+:\/\/[^/?#]*/i, `rtmfp://${target}`);
      // FMS/Wowza convention that players follow: info.ex.code 302, info.ex.redirect = new URL.
      conn.reject(f.message, { ex: { code: 302, redirect: url } });
      return;
    }
    conn.reject(`onConnection failed: ${f.message}`);
  }

  private async retire(app: string, sandbox: AppSandbox): Promise<void> {
    const deadline = Date.now() + this.o.limits.awaitMs;
    while (sandbox.busy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.report('stop', app, undefined, await sandbox.dispatch('stop', '', undefined, []));
    sandbox.dispose();
  }

  /** Logs what a handler did wrong; success and "no handler" are silent. */
  private report(event: string, app: string, clientId: string | undefined, outcome: Outcome): void {
    if (outcome.status !== 'failed' || outcome.failure.kind !== 'error') return;
    const { message, stack } = outcome.failure;
    this.log.error(
      { app, event, client: clientId?.slice(0, 16), err: { message, stack } },
      `${event} failed: ${message}`,
    );
  }

  /** Another node's `server.send(name, …)` for `app` (already authenticated by the cluster). */
  async deliver(app: string, from: ServerInfo, name: string, args: unknown[]): Promise<void> {
    const sandbox = this.apps.get(app);
    if (!sandbox) return;
    this.report(
      `server.${name}`,
      app,
      undefined,
      await sandbox.dispatch('server', name, undefined, [from, ...args]),
    );
  }

  /** onServerConnection / onServerDisconnection in every app. */
  async serverChanged(kind: 'serverJoined' | 'serverLeft', server: ServerInfo): Promise<void> {
    await Promise.all(
      [...this.apps].map(async ([app, sandbox]) =>
        this.report(kind, app, undefined, await sandbox.dispatch(kind, '', undefined, [server])),
      ),
    );
  }

  private self(): ServerInfo {
    return { ...this.o.node, load: { clients: this.clients.size }, paused: false };
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
          entry.conn.call(name, args as AmfValue[], (ok, value) => {
            if (ok) resolve(toPlain(value));
            else reject(new Error(describeStatus(value)));
          });
        }),
      clientClose: (id, reason) => this.byId.get(id)?.conn.close(reason || 'Closed by the app.'),
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

/** AMF values to plain data a sandbox can copy (class instances become plain objects). */
function toPlain(v: AmfValue): unknown {
  if (v instanceof EcmaArray) return mapValues(v.entries);
  if (v instanceof TypedObject) return mapValues(v.fields);
  if (Array.isArray(v)) return v.map(toPlain);
  if (isPlainObject(v)) return mapValues(v as AmfObject);
  return v;
}

function mapValues(o: AmfObject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(o)) out[k] = toPlain(val);
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function describeStatus(info: AmfValue): string {
  if (isPlainObject(info) && typeof info.description === 'string') return info.description;
  if (isPlainObject(info) && typeof info.code === 'string') return info.code;
  return 'the client answered with an error';
}
