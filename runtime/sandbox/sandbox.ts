import { SourceMap } from 'node:module';
import ivm from 'isolated-vm';
import { errorText } from '../error-text.ts';
import {
  type AsyncOp,
  CHOSE_HERE,
  type ClientInfo,
  type DispatchKind,
  type DispatchResult,
  eventName,
  type GroupInfo,
  type GroupView,
  HANDLERS,
  type HandlerFailure,
  handlerName,
  type IsolateApi,
  type LogLevel,
  type PublicationView,
  type SandboxLimit,
  type Selection,
  type ServerInfo,
  type Settlement,
  type StreamInfo,
  type SyncOp,
  UNSENDABLE_RESULT,
} from './isolate/protocol.ts';
import { authorStack, isolateRuntime, loadedIsolateRuntime, RUNTIME_NAME, SCRIPT_NAME } from './scripts.ts';

export type {
  ClientInfo,
  DispatchKind,
  GroupInfo,
  GroupView,
  HandlerFailure,
  LogLevel,
  PublicationView,
  SandboxLimit,
  Selection,
  ServerInfo,
  StreamInfo,
};
export { CHOSE_HERE, eventName, HANDLERS, handlerName };

/** Per-app limits (config `[limits]`). */
export interface SandboxLimits {
  /** CPU time one synchronous stretch of a handler may take (ms). */
  cpuMs: number;
  /** Isolate heap (MB); past it the isolate is rebuilt and the event in flight fails. */
  memoryMb: number;
  /** How long a handler may await before its event fails (ms). */
  awaitMs: number;
}

/** What the node provides to an app's handlers (behind `ctx` and `client`). */
export interface SandboxServices {
  log(level: LogLevel, event: string, clientId: string | undefined, message: string, fields: unknown): void;
  node(): unknown;
  servers(): unknown[];
  kv(op: 'get' | 'set' | 'delete' | 'incr', args: unknown[]): Promise<unknown>;
  clientCall(clientId: string, name: string, args: unknown[]): Promise<unknown>;
  /** `ctx.servers.select(request)`: where a new client goes (the request is unchecked). */
  select(request: unknown): Promise<Selection>;
  /** `ctx.groups.get(id)`: a NetGroup across the cluster (the ID is unchecked). */
  group(id: string): Promise<GroupView>;
  /** `ctx.publications.get(name)`: a live publication of this app across the cluster, or null. */
  publication(name: string): Promise<PublicationView | null>;
  clientClose(clientId: string, reason: string): void;
  /** Sends `server.<name>` to node `to` (fire and forget). */
  serverSend(to: string, name: string, args: unknown[]): void;
  /** `server.<name>` on every other node; returns how many. */
  serverBroadcast(name: string, args: unknown[]): number;
}

/** The app code to load: one script and its source map (see bundle.ts). */
export interface SandboxCode {
  code: string;
  map: string;
  hash: string;
}

export type Outcome =
  | { status: 'ok'; value: unknown }
  | { status: 'failed'; failure: HandlerFailure }
  | { status: 'missing' };

/** References to the isolate runtime's entry points (IsolateApi). */
interface IsolateRefs {
  dispatch: ivm.Reference<IsolateApi['dispatch']>;
  resume: ivm.Reference<IsolateApi['resume']>;
  abandon: ivm.Reference<IsolateApi['abandon']>;
  adopt: ivm.Reference<IsolateApi['adopt']>;
  clientData: ivm.Reference<IsolateApi['clientData']>;
  forget: ivm.Reference<IsolateApi['forget']>;
}

/** How long an app's top-level code may run when its version loads. */
const LOAD_TIMEOUT_MS = 1000;

/**
 * One app version on one node: an isolated-vm isolate running the app's bundle, with `ctx`
 * bridged in. Every call into the isolate is a synchronous `applySync` bounded by the CPU
 * limit, including the resumption of an awaiting handler, so a handler can never run
 * unbounded on the node's thread; a promise a handler returns is settled back through a host
 * callback, so synchronous handlers never pay for an async hop (PERF-NOTES).
 */
export class AppSandbox {
  readonly hash: string;
  private readonly code: SandboxCode;
  private readonly limits: SandboxLimits;
  private readonly env: Record<string, string>;
  private readonly services: SandboxServices;
  private readonly sourceMap: SourceMap;
  private isolate!: ivm.Isolate;
  private api!: IsolateRefs;
  private readonly clients = new Map<string, ClientInfo>();
  private readonly pending = new Map<number, { done: (o: Outcome) => void; timer: NodeJS.Timeout }>();
  private disposed = false;
  /** Which pending event each async op belongs to, so a runaway continuation fails its own event. */
  private readonly opOwner = new Map<number, number>();
  private readonly settledEarly = new Map<number, Outcome>();
  /** The pending event running now: 0 while dispatching (its ID is not known yet). */
  private owner: number | undefined;
  /** Isolates rebuilt after hitting the memory limit. */
  rebuilds = 0;
  /** Answers to ops of an isolate that was rebuilt or disposed since: dropped. */
  droppedResults = 0;
  /** The highest op or pending ID any isolate of this sandbox used. */
  private lastId = 0;
  /** The live isolate's first ID: a lower one belongs to an isolate that is gone. */
  private firstId = 1;
  handlerNames: string[] = [];

  private constructor(
    code: SandboxCode,
    limits: SandboxLimits,
    env: Record<string, string>,
    services: SandboxServices,
  ) {
    this.hash = code.hash;
    this.code = code;
    this.limits = limits;
    this.env = env;
    this.services = services;
    this.sourceMap = new SourceMap(JSON.parse(code.map));
  }

  /** Loads `code` in a fresh isolate; throws (with mapped stack) if the bundle fails to run. */
  static async create(
    code: SandboxCode,
    limits: SandboxLimits,
    env: Record<string, string>,
    services: SandboxServices,
  ): Promise<AppSandbox> {
    const sandbox = new AppSandbox(code, limits, env, services);
    sandbox.boot(await isolateRuntime());
    return sandbox;
  }

  /** Bytes the isolate's heap uses now, outside memory included (0 once disposed). */
  heapBytes(): number {
    if (this.disposed || this.isolate.isDisposed) return 0;
    const h = this.isolate.getHeapStatisticsSync();
    return h.used_heap_size + h.externally_allocated_size;
  }

  /** Events still awaiting (they finish on this version even after a newer one took over). */
  get busy(): boolean {
    return this.pending.size > 0;
  }

  has(handler: string): boolean {
    return this.handlerNames.includes(handler);
  }

  /** Runs one event's handler. Never throws: a failing handler is an `Outcome`. */
  dispatch(
    kind: DispatchKind,
    name: string,
    client: ClientInfo | undefined,
    args: unknown[],
  ): Promise<Outcome> {
    if (this.disposed) return Promise.resolve(failed('the app is unloading'));
    if (client && kind === 'connect') this.clients.set(client.id, client);
    if (client && kind === 'disconnect') this.clients.delete(client.id);
    let result: DispatchResult;
    this.owner = 0;
    try {
      result = this.api.dispatch.applySync(undefined, [kind, name, client, args], {
        arguments: { copy: true },
        result: { copy: true },
        timeout: this.limits.cpuMs,
      });
    } catch (e) {
      return Promise.resolve({ status: 'failed', failure: this.describe(e) });
    } finally {
      this.owner = undefined;
    }
    if ('p' in result) {
      this.lastId = Math.max(this.lastId, result.p);
      for (const [op, owner] of this.opOwner) if (owner === 0) this.opOwner.set(op, result.p);
      return this.awaitSettlement(result.p);
    }
    for (const [op, owner] of this.opOwner) if (owner === 0) this.opOwner.delete(op);
    if ('missing' in result) return Promise.resolve({ status: 'missing' });
    if ('e' in result) return Promise.resolve({ status: 'failed', failure: this.mapFailure(result.e) });
    return Promise.resolve({ status: 'ok', value: result.v });
  }

  /** Per-client state kept in the isolate (to carry it to the next version). */
  clientData(id: string): unknown {
    if (this.disposed) return undefined;
    try {
      return this.api.clientData.applySync(undefined, [id], {
        arguments: { copy: true },
        result: { copy: true },
        timeout: this.limits.cpuMs,
      });
    } catch {
      return undefined;
    }
  }

  /** Registers a client that connected under another version, with its data. */
  adopt(client: ClientInfo, data: unknown): void {
    this.clients.set(client.id, client);
    try {
      this.api.adopt.applySync(undefined, [client, data ?? {}], {
        arguments: { copy: true },
        timeout: this.limits.cpuMs,
      });
    } catch {
      // data that cannot be copied over starts afresh
      this.api.adopt.applySync(undefined, [client, {}], { arguments: { copy: true } });
    }
  }

  /** Drops a client whose connect was refused, without running onDisconnection. */
  forget(id: string): void {
    this.clients.delete(id);
    if (this.disposed) return;
    try {
      this.api.forget.applySync(undefined, [id], { arguments: { copy: true }, timeout: this.limits.cpuMs });
    } catch {
      // the isolate is gone (rebuilt or disposed): the client went with it
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.done(failed('the app is unloading'));
      this.pending.delete(id);
    }
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }

  private boot(runtime: string): void {
    this.isolate = new ivm.Isolate({ memoryLimit: this.limits.memoryMb });
    const context = this.isolate.createContextSync();
    const global = context.global;
    global.setSync('__host_log', new ivm.Callback(this.services.log));
    global.setSync(
      '__host_op',
      new ivm.Callback((opId: number, op: AsyncOp, args: unknown[]) => this.startOp(opId, op, args)),
    );
    global.setSync('__host_sync', new ivm.Callback((op: SyncOp, args: unknown[]) => this.syncOp(op, args)));
    global.setSync('__host_settle', new ivm.Callback((id: number, s: Settlement) => this.settle(id, s)));
    global.setSync('__host_env', new ivm.ExternalCopy(this.env).copyInto());
    this.firstId = this.lastId + 1;
    global.setSync('__host_first_id', this.firstId);
    this.isolate.compileScriptSync(runtime, { filename: RUNTIME_NAME }).runSync(context);
    try {
      this.isolate
        .compileScriptSync(this.code.code, { filename: SCRIPT_NAME })
        .runSync(context, { timeout: LOAD_TIMEOUT_MS });
    } catch (e) {
      // Not describe(): it would take the disposed isolate for a memory overrun and boot again.
      const failure = this.isolate.isDisposed
        ? { message: `its top-level code exceeded the ${this.limits.memoryMb} MB memory limit`, stack: '' }
        : /timed out/i.test(errorText(e))
          ? { message: `its top-level code ran longer than ${LOAD_TIMEOUT_MS} ms`, stack: '' }
          : this.mapFailure({
              kind: 'error',
              message: errorText(e),
              stack: e instanceof Error ? e.stack : undefined,
            });
      if (!this.isolate.isDisposed) this.isolate.dispose();
      throw new Error(`the app failed to load: ${failure.message}\n${failure.stack ?? ''}`.trim());
    }
    const api = global.getSync('__fnhost', { reference: true }) as ivm.Reference<IsolateApi>;
    const ref = <K extends keyof IsolateApi>(name: K) =>
      api.getSync(name, { reference: true }) as ivm.Reference<IsolateApi[K]>;
    this.api = {
      dispatch: ref('dispatch'),
      resume: ref('resume'),
      abandon: ref('abandon'),
      adopt: ref('adopt'),
      clientData: ref('clientData'),
      forget: ref('forget'),
    };
    this.handlerNames = ref('handlers').applySync(undefined, [], { result: { copy: true } }) as string[];
    for (const client of this.clients.values()) this.adopt(client, {});
  }

  private awaitSettlement(id: number): Promise<Outcome> {
    const early = this.settledEarly.get(id);
    if (early) {
      this.settledEarly.delete(id);
      return Promise.resolve(early);
    }
    return new Promise((done) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        for (const [op, owner] of this.opOwner) if (owner === id) this.opOwner.delete(op);
        try {
          this.api.abandon.applySync(undefined, [id], { timeout: this.limits.cpuMs });
        } catch {
          // the isolate may be gone; the event fails either way
        }
        done(failed(`the handler did not finish within ${this.limits.awaitMs} ms`, 'await'));
      }, this.limits.awaitMs);
      this.pending.set(id, { done, timer });
    });
  }

  private settle(id: number, s: Settlement): void {
    const outcome: Outcome =
      'v' in s ? { status: 'ok', value: s.v } : { status: 'failed', failure: this.mapFailure(s.e) };
    const p = this.pending.get(id);
    if (!p) {
      // A promise that settled within its own dispatch (its microtasks ran before applySync returned).
      if (this.owner === 0) this.settledEarly.set(id, outcome);
      return;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.done(outcome);
  }

  private startOp(opId: number, op: AsyncOp, args: unknown[]): void {
    this.lastId = Math.max(this.lastId, opId);
    if (this.owner !== undefined) this.opOwner.set(opId, this.owner);
    const work =
      op === 'client.call'
        ? this.services.clientCall(String(args[0]), String(args[1]), (args[2] as unknown[]) ?? [])
        : op === 'servers.select'
          ? this.services.select(args[0])
          : op === 'groups.get'
            ? this.services.group(String(args[0]))
            : op === 'publications.get'
              ? this.services.publication(String(args[0]))
              : this.services.kv(op.slice(3) as 'get' | 'set' | 'delete' | 'incr', args);
    work.then(
      (value) => this.resume(opId, true, value),
      (e: unknown) => this.resume(opId, false, errorText(e)),
    );
  }

  /** Continues an awaiting handler inside the isolate, under the same CPU limit as a call. */
  private resume(opId: number, ok: boolean, value: unknown): void {
    const owner = this.opOwner.get(opId);
    this.opOwner.delete(opId);
    if (this.disposed || opId < this.firstId) {
      // Its isolate is gone, and with it the handler that awaited; the IDs of the one now
      // running start above it, so the answer cannot reach another client's handler.
      this.droppedResults++;
      this.services.log(
        'debug',
        'restart',
        undefined,
        'an answer for an isolate that is gone was dropped',
        null,
      );
      return;
    }
    this.owner = owner;
    try {
      this.api.resume.applySync(undefined, [opId, ok, value], {
        arguments: { copy: true },
        timeout: this.limits.cpuMs,
      });
    } catch (e) {
      // The continuation broke a limit: its event fails now, not at the await deadline.
      const failure = this.describe(e);
      const p = owner === undefined ? undefined : this.pending.get(owner);
      if (p && owner !== undefined) {
        this.pending.delete(owner);
        clearTimeout(p.timer);
        p.done({ status: 'failed', failure });
      }
    } finally {
      this.owner = undefined;
    }
  }

  private syncOp(op: SyncOp, args: unknown[]): unknown {
    switch (op) {
      case 'node':
        return this.services.node();
      case 'servers':
        return this.services.servers();
      case 'client.close':
        this.services.clientClose(String(args[0]), String(args[1] ?? ''));
        return undefined;
      case 'server.send':
        this.services.serverSend(String(args[0]), String(args[1]), (args[2] as unknown[]) ?? []);
        return undefined;
      case 'server.broadcast':
        return this.services.serverBroadcast(String(args[0]), (args[1] as unknown[]) ?? []);
    }
  }

  /** Turns what applySync threw into a failure; rebuilds the isolate if it ran out of memory. */
  private describe(e: unknown): HandlerFailure {
    const message = errorText(e);
    if (this.isolate.isDisposed && !this.disposed) {
      this.rebuilds++;
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.done(failed('the app was restarted after exceeding its memory limit'));
        this.pending.delete(id);
      }
      this.opOwner.clear();
      this.settledEarly.clear();
      const message = `the handler exceeded the ${this.limits.memoryMb} MB memory limit`;
      try {
        this.boot(loadedIsolateRuntime());
      } catch (e) {
        // The same code loaded before; if it cannot now, this version is done for on this node.
        this.disposed = true;
        this.services.log(
          'error',
          'restart',
          undefined,
          `the app could not be restarted: ${errorText(e)}`,
          null,
        );
        return {
          kind: 'error',
          message: `${message}, and the app could not be restarted`,
          stack: undefined,
          limit: 'memory',
        };
      }
      return { kind: 'error', message, stack: undefined, limit: 'memory' };
    }
    if (/timed out/i.test(message)) {
      return {
        kind: 'error',
        message: `the handler exceeded the ${this.limits.cpuMs} ms CPU limit`,
        stack: undefined,
        limit: 'cpu',
      };
    }
    // isolated-vm's words for a function (or an object holding one) and for a symbol.
    if (/could not be cloned|non-transferable|unsupported type/i.test(message)) {
      return { kind: 'error', message: `${UNSENDABLE_RESULT}: ${message}`, stack: undefined };
    }
    return this.mapFailure({ kind: 'error', message, stack: e instanceof Error ? e.stack : undefined });
  }

  /** Rewrites bundle positions in a stack trace to the author's .ts files and lines. */
  private mapFailure(f: HandlerFailure): HandlerFailure {
    return f.stack ? { ...f, stack: authorStack(f.stack, this.sourceMap) } : f;
  }
}

/**
 * An event that failed with `message` (no stack: the node, not the handler, says so), on
 * `limit` when a `[limits]` setting stopped it.
 */
export function failed(message: string, limit?: SandboxLimit): Outcome {
  return { status: 'failed', failure: { kind: 'error', message, stack: undefined, ...(limit && { limit }) } };
}
