import type { Logger } from 'pino';
import type { KvStore } from '../cluster/kv.ts';
import type { PublicationStore } from '../cluster/publications.ts';
import { errorText } from '../error-text.ts';
import type { AmfValue } from '../rtmfp/amf-value.ts';
import type { TCServerConnection } from '../rtmfp/tc-server.ts';
import type {
  GroupView,
  PublicationView,
  SandboxServices,
  Selection,
  ServerInfo,
} from '../sandbox/sandbox.ts';
import type { Balancer } from './balancer.ts';
import type { NodeGroups } from './groups.ts';
import { callArgumentsProblem, isPlainObject, selectRequest, toPlain } from './handler-values.ts';

/** This node as handlers see it (`ctx.node`, `ctx.servers`). */
export interface NodeIdentity {
  id: string;
  publicAddress: string;
}

/** Who else is in the cluster, and how to reach their apps (runtime/cluster). */
export interface ServerDirectory {
  servers(): ServerInfo[];
  send(to: string, app: string, name: string, args: unknown[]): void;
  broadcast(app: string, name: string, args: unknown[]): number;
}

/** What the node lends to every app's `ctx`. */
export interface AppServicesOptions {
  logger: Logger;
  kv: KvStore;
  node: NodeIdentity;
  /** The cluster's nodes and node-to-node messages; absent: standalone (this node only). */
  directory?: ServerDirectory;
  /** Chooses nodes for new clients; absent: standalone, every client is accepted here. */
  balancer?: Balancer;
  /** Sees every `ctx.log` line of every app (for `fnhost tail`). */
  tap?: (app: string, record: Record<string, unknown>) => void;
  /** NetGroups across the cluster; absent: NetGroup joins are refused. */
  groups?: NodeGroups;
  /** The cluster's publication registry, for `ctx.publications.get`; absent: it finds none. */
  publications?: PublicationStore;
}

/** What the services need of the apps' host (AppHost): its clients, and its apps' server handlers. */
export interface ServicesHost {
  /** The connection of a client here (let in, or still in onConnection), by peer ID. */
  connection(peerId: string): TCServerConnection | undefined;
  /** Clients connected here: this node's load as `ctx.node` reports it. */
  clientCount(): number;
  /** `server.<name>` of `app` here: a standalone node's message to itself. Never rejects. */
  deliver(app: string, from: ServerInfo, name: string, args: unknown[]): Promise<void>;
}

/**
 * The node side of `ctx` and `client` (SandboxServices): what each app's handlers reach
 * through the sandbox's bridges, checked here since nothing from a handler is trusted.
 */
export class AppServices {
  private readonly o: AppServicesOptions;
  private readonly host: ServicesHost;

  constructor(o: AppServicesOptions, host: ServicesHost) {
    this.o = o;
    this.host = host;
  }

  /** `app`'s services: its log lines, KV and publications are its own. */
  of(app: string): SandboxServices {
    const log = this.o.logger.child({ app });
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
        else if (to === this.o.node.id) void this.host.deliver(app, this.self(), name, args);
      },
      serverBroadcast: (name, args) => this.o.directory?.broadcast(app, name, args) ?? 0,
      kv: (op, args) => {
        const [key, value, extra] = args as [string, unknown, number];
        if (op === 'get') return this.o.kv.get(app, key);
        if (op === 'set') return this.o.kv.set(app, key, value, extra);
        if (op === 'delete') return this.o.kv.delete(app, key);
        return this.o.kv.incr(app, key, Number(value));
      },
      clientCall: (id, name, args) => this.clientCall(id, name, args),
      clientClose: (id, reason) => this.host.connection(id)?.close(reason || 'Closed by the app.'),
      select: (request) => this.select(request),
      group: (id) => this.group(id),
      publication: (name) => this.publication(app, name),
    };
  }

  private self(): ServerInfo {
    return { ...this.o.node, load: { clients: this.host.clientCount() }, paused: false, state: 'serving' };
  }

  /** `client.call(name, …args)`: the client's answer, or its error status as the rejection. */
  private clientCall(id: string, name: string, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const conn = this.host.connection(id);
      if (!conn) {
        reject(new Error(`client ${id.slice(0, 16)} is not connected`));
        return;
      }
      const problem = callArgumentsProblem(name, args);
      if (problem) {
        reject(new Error(problem));
        return;
      }
      conn.call(name, args as AmfValue[], (ok, value) => {
        if (ok) resolve(toPlain(value));
        else reject(new Error(describeStatus(value)));
      });
    });
  }

  /** `ctx.servers.select(request)`: checks what the handler asked, then lets the balancer choose. */
  private async select(raw: unknown): Promise<Selection> {
    const request = selectRequest(raw);
    if (typeof request === 'string') throw new Error(`ctx.servers.select: ${request}`);
    const choice = this.o.balancer ? await this.o.balancer.choose(request) : { kind: 'here' as const };
    if (choice.kind === 'full') return { full: choice.reason };
    return choice.kind === 'here' ? { here: true } : { to: choice.to };
  }

  /** `ctx.groups.get(id)`: a group across the cluster; a bad ID fails with a message naming it. */
  private async group(id: string): Promise<GroupView> {
    if (!this.o.groups) return { id, size: 0, members: [] };
    try {
      return await this.o.groups.view(id);
    } catch (e) {
      throw storeFailure('ctx.groups.get', e);
    }
  }

  /** `ctx.publications.get(name)`: the app's live publication across the cluster, or null. */
  private async publication(app: string, name: string): Promise<PublicationView | null> {
    if (!this.o.publications) return null;
    let info: Awaited<ReturnType<PublicationStore['get']>>;
    try {
      info = await this.o.publications.get(app, name);
    } catch (e) {
      throw storeFailure('ctx.publications.get', e);
    }
    if (!info) return null;
    const { node, publisher, since, subscribers, nodes } = info;
    return { name: info.name, node, publisher, since, subscribers, nodes };
  }
}

/** A cluster store failure as the handler that asked sees it: named after its `ctx` call. */
function storeFailure(call: string, e: unknown): Error {
  return new Error(`${call}: ${errorText(e).replace(/^state: /, '')}`);
}

function describeStatus(info: AmfValue): string {
  if (isPlainObject(info) && typeof info.description === 'string') return info.description;
  if (isPlainObject(info) && typeof info.code === 'string') return info.code;
  return 'the client answered with an error';
}
