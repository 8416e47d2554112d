import type { Logger } from 'pino';
import { eligible } from '../cluster/selection.ts';
import type { NodeEntry } from '../cluster/state.ts';
import { type Address, parseAddress } from '../rtmfp/address.ts';
import { redirectInfo, type TCServerConnection } from '../rtmfp/tc-server.ts';
import { MAX_REDIRECT_ADDRESSES } from './handler-values.ts';
import type { HandshakeRequest } from './handshake-hook.ts';
import { HostNames } from './host-names.ts';

/** How often a drain past its deadline looks again for a node to send its clients to. */
const NO_TARGET_RETRY_MS = 1_000;

export interface DrainOptions {
  log: Logger;
  /** Live nodes as of the last heartbeat, this one included. */
  servers: () => NodeEntry[];
  selfId: () => string;
  /** `[balance] max_clients`: a node that full takes no drained clients either. */
  maxClients?: number;
  /** This node's open NetConnections. */
  connections: () => TCServerConnection[];
  /** Every client was sent elsewhere: the node may exit. */
  drained: () => void;
}

/**
 * Nodes a draining node may send clients to: those balancing may choose (serving, not paused,
 * under `max_clients` at their last heartbeat: DESIGN.md "Selection"), not itself, with a
 * public address.
 */
export function drainTargets(servers: NodeEntry[], selfId: string, maxClients?: number): NodeEntry[] {
  const candidates = servers.map((s) => ({ ...s, clients: s.load.clients, seats: 0 }));
  const ids = new Set(eligible(candidates, { self: selfId, exceptSelf: true, maxClients }).map((c) => c.id));
  return servers.filter((s) => ids.has(s.id) && parseAddress(s.publicAddress));
}

/**
 * What a draining node does (DESIGN.md "Drain has a deadline and can be undone"): new
 * handshakes are redirected to the other eligible nodes (RFC 7016 §2.3.5 Redirect) — or, when
 * there are none, answered here and logged — and at the deadline every client still connected
 * is closed with a NetConnection redirect (`ex.code` 302, `ex.redirect`: RTMFP-NOTES §9) to one
 * of them, spread in turn; then `drained` lets the node exit. `cancel` (resume) undoes it. With
 * no eligible node at the deadline, nobody is dropped: it looks again every second.
 */
export class Drain {
  private readonly o: DrainOptions;
  private readonly hostNames = new HostNames();
  private timer: NodeJS.Timeout | undefined;
  /** The drain request being carried out (a command repeated until confirmed is applied once). */
  private request: string | undefined;
  private warnedNoTarget = false;
  private turn = 0;

  constructor(o: DrainOptions) {
    this.o = o;
  }

  get draining(): boolean {
    return this.request !== undefined;
  }

  /** Starts draining with `deadlineMs` from now; false when `request` is already under way. */
  start(deadlineMs: number, request: string): boolean {
    if (this.request === request) return false;
    this.cancel();
    this.request = request;
    this.timer = setTimeout(() => this.atDeadline(), deadlineMs);
    this.o.log.info(
      { deadlineMs, targets: this.targets().map((t) => t.id) },
      `draining: new handshakes go to other nodes; clients still here in ${deadlineMs / 1000} s are redirected, then the node exits`,
    );
    return true;
  }

  /** Back to serving (resume before the deadline). */
  cancel(): void {
    if (!this.draining) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.request = undefined;
    this.warnedNoTarget = false;
    this.o.log.info('drain cancelled: serving again');
  }

  /** The node is stopping: no deadline may fire any more (its state stays as it is). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * While draining: a promise of the other eligible nodes' addresses for this IHello (the
   * first one in turn, so handshakes spread). Undefined when not draining or when no node is
   * eligible: the IHello is then answered as usual.
   */
  handshake(request: HandshakeRequest): Promise<Address[] | undefined> | undefined {
    if (!this.draining) return undefined;
    const targets = this.targets();
    if (targets.length === 0) {
      this.noTarget('answering new handshakes here');
      return undefined;
    }
    const first = this.turn++ % targets.length;
    const ordered = [...targets.slice(first), ...targets.slice(0, first)];
    return Promise.all(
      ordered.map((t) =>
        this.hostNames.resolve(parseAddress(t.publicAddress) as Address, request.from).catch((e: Error) => {
          this.o.log.warn({ node: t.id, err: e.message }, 'cannot redirect to a node');
          return [];
        }),
      ),
    ).then((lists) => {
      const addresses = lists.flat().slice(0, MAX_REDIRECT_ADDRESSES);
      return addresses.length > 0 ? addresses : undefined;
    });
  }

  private targets(): NodeEntry[] {
    return drainTargets(this.o.servers(), this.o.selfId(), this.o.maxClients);
  }

  private noTarget(what: string): void {
    if (this.warnedNoTarget) return;
    this.warnedNoTarget = true;
    this.o.log.error(`draining, but no other node is serving and unpaused: ${what}`);
  }

  private atDeadline(): void {
    const targets = this.targets();
    const connections = this.o.connections();
    if (targets.length === 0 && connections.length > 0) {
      this.noTarget(
        `${connections.length} clients stay until one is (looking again every second; resume, or stop the node to drop them)`,
      );
      this.timer = setTimeout(() => this.atDeadline(), NO_TARGET_RETRY_MS);
      return;
    }
    connections.forEach((conn, i) => {
      const target = targets[i % targets.length].publicAddress;
      const tcUrl = conn.request?.tcUrl;
      const description = `Server draining: reconnect to ${target}.`;
      if (!tcUrl) conn.close(description);
      else if (conn.state === 'connecting') conn.reject(description, redirectInfo(tcUrl, target));
      else conn.close(description, redirectInfo(tcUrl, target));
    });
    this.o.log.info(
      { clients: connections.length, targets: targets.map((t) => t.id) },
      'drain deadline: clients redirected to other nodes; exiting',
    );
    this.timer = undefined;
    this.o.drained();
  }
}
