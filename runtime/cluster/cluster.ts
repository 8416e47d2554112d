import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { errorText } from '../error-text.ts';
import { hmacSha256 } from '../rtmfp/hmac.ts';
import { type ForwardHelloRequest, parseForwardHello } from './forward-hello.ts';
import { type GroupIntroduction, parseGroupIntroduction } from './group-introduce.ts';
import type { NodeEntry, NodeRecord, State } from './state.ts';

/** Node-to-node messages older (or further in the future) than this are refused. */
const MESSAGE_WINDOW_MS = 60_000;
/** Pub/sub self-probe period; two missed probes → resubscribe and report not ready. */
const PROBE_MS = 2_000;

/**
 * A message between nodes, as published on `rpc:<nodeId>` (JSON), authenticated by `mac`:
 * `call` is an app's `server.send`, `probe` the pub/sub self-probe, `control` an operator's
 * command to the node (`fnhost pause`, `resume`, `drain`), sent by the CLI, `forward-hello` a
 * rendezvous across nodes (forward-hello.ts, in `args[0]`), `group-introduce` a NetGroup
 * member to tell about another after a leave (group-introduce.ts, in `args[0]`).
 */
interface Envelope {
  v: 1;
  kind: 'call' | 'probe' | 'control' | 'forward-hello' | 'group-introduce';
  from: string;
  epoch: string;
  to: string;
  app: string;
  name: string;
  args: unknown[];
  ts: number;
  nonce: string;
  mac?: string;
}

export interface ClusterHooks {
  /** A node appeared in the live set (not called for this node). */
  joined(server: NodeEntry): void;
  /** A node left or was reaped. */
  left(server: NodeEntry): void;
  /** The live nodes as of this heartbeat (after `joined`/`left`), this node included. */
  updated?(servers: NodeEntry[]): void;
  /** Another node's `server.send(name, …)` for `app` arrived, authenticated. */
  message(from: NodeEntry | undefined, fromId: string, app: string, name: string, args: unknown[]): void;
  /** An operator's command (`pause`, `resume`, `drain`) arrived, authenticated. */
  control?(name: string, args: unknown[]): void;
  /** Another node asks this one to send a Forwarded IHello to one of its clients, authenticated and checked. */
  forwardHello?(fromId: string, request: ForwardHelloRequest): void;
  /** Another node asks this one to tell one of its group members about another member, authenticated and checked. */
  groupIntroduce?(fromId: string, request: GroupIntroduction): void;
}

/**
 * The key that signs node-to-node messages: from `[cluster] secret`, else from the random
 * secret the cluster shares through its store (State.clusterSecret).
 */
export async function messageSecret(state: State, configured: string | undefined): Promise<Buffer> {
  return createHash('sha256')
    .update(configured ?? (await state.clusterSecret()))
    .digest();
}

/** What a sender fills in; `sealMessage` adds the rest. */
export type MessageFields = Pick<Envelope, 'kind' | 'from' | 'epoch' | 'to' | 'app' | 'name' | 'args'>;

/** A node-to-node (or CLI-to-node) message, signed with the cluster's secret, as JSON. */
export function sealMessage(secret: Buffer, m: MessageFields): string {
  // randomUUID draws from a cached entropy pool: ~10× cheaper than randomBytes(12) a call, as
  // unique (122 random bits); the nonce is only compared for replays.
  const envelope: Envelope = { v: 1, ...m, ts: Date.now(), nonce: randomUUID() };
  envelope.mac = messageMac(secret, envelope);
  return JSON.stringify(envelope);
}

/**
 * Two one-shot hashes (rtmfp/hmac.ts), not createHmac: ~5× cheaper a message, and every
 * cross-node introduction seals two forward-hellos and verifies them (bench r, CPU row).
 */
function messageMac(secret: Buffer, e: Envelope): string {
  const { mac: _omit, ...signed } = e;
  return hmacSha256(secret, Buffer.from(JSON.stringify(signed))).toString('hex');
}

export interface ClusterOptions {
  state: State;
  logger: Logger;
  /** Shared by every node of the cluster: authenticates node-to-node messages. */
  secret: Buffer;
  heartbeatMs: number;
  /** This node's record as of now (load, versions, state…), without id/epoch/startedAt. */
  describe: () => Omit<NodeRecord, 'id' | 'epoch' | 'startedAt'>;
  hooks: ClusterHooks;
  id?: string;
}

/**
 * This node's membership of the cluster: heartbeats its record (store clock, TTL 3 ×
 * heartbeat), reaps dead nodes, keeps the list of live servers and tells the apps who came
 * and went, and carries authenticated node-to-node messages. Local state is the truth:
 * after the store comes back it heartbeats at once, re-asserting the node.
 */
export class ClusterNode {
  readonly id: string;
  readonly epoch = randomBytes(8).toString('hex');
  readonly startedAt = Date.now();
  /**
   * Messages dropped: forged (bad MAC), replayed (nonce seen), stale (outside the window),
   * malformed (signed, but a request this node cannot use).
   */
  readonly dropped = { forged: 0, replayed: 0, stale: 0, malformed: 0 };
  private readonly o: ClusterOptions;
  private readonly log: Logger;
  private live = new Map<string, NodeEntry>();
  private readonly seenNonces = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private storeUp = true;
  private lastProbeAt = Date.now();
  private probesMissed = 0;
  private beating = false;
  private stopped = false;

  constructor(o: ClusterOptions) {
    this.o = o;
    this.log = o.logger.child({ component: 'cluster' });
    this.id = o.id ?? randomBytes(6).toString('hex');
  }

  /** Store reachable and pub/sub delivering (the self-probe came back): `/readyz`. */
  get ready(): boolean {
    return this.storeUp && this.probesMissed < 2;
  }

  /** Live nodes, this one included, as of the last heartbeat. */
  servers(): NodeEntry[] {
    return [...this.live.values()];
  }

  async start(): Promise<void> {
    this.o.state.onStatus((status) => {
      this.storeUp = status === 'up';
      this.log[status === 'up' ? 'info' : 'warn']({ status }, `cluster store ${status}`);
      if (status === 'up') void this.beat(); // re-assert at once (DESIGN.md: local state is the truth)
    });
    await this.subscribe();
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.o.heartbeatMs);
    this.timer.unref();
    this.probeTimer = setInterval(() => void this.probe(), PROBE_MS);
    this.probeTimer.unref();
  }

  /** Leaves the cluster cleanly (SIGTERM): the record goes at once, others see the node gone. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.probeTimer);
    await this.unsubscribe?.().catch(() => {});
    await this.o.state
      .leave(this.id, this.epoch)
      .catch((e: unknown) => this.log.warn({ err: e }, 'leave failed'));
  }

  /** Heartbeat now (after a deploy, so convergence shows without waiting for the period). */
  async heartbeatNow(): Promise<void> {
    await this.beat();
  }

  /** Sends `server.<name>(from, args)` to the app on node `to`. False if that node is not live. */
  async send(to: string, app: string, name: string, args: unknown[]): Promise<boolean> {
    return this.deliver({ kind: 'call', to, app, name, args });
  }

  /**
   * Asks node `to` to send a Forwarded IHello to its client `request.target` (a rendezvous
   * across nodes). Throws on a request the other node would drop; false if `to` is not live.
   */
  async forwardHello(to: string, request: ForwardHelloRequest): Promise<boolean> {
    return this.deliver({ kind: 'forward-hello', to, app: '', name: '', args: [parseForwardHello(request)] });
  }

  /**
   * Asks node `to` to tell its group member `request.to` about `request.peer` (a NetGroup leave
   * across nodes). Throws on a request the other node would drop; false if `to` is not live.
   */
  async groupIntroduce(to: string, request: GroupIntroduction): Promise<boolean> {
    return this.deliver({
      kind: 'group-introduce',
      to,
      app: '',
      name: '',
      args: [parseGroupIntroduction(request)],
    });
  }

  /** `server.<name>` on every other live node. */
  async broadcast(app: string, name: string, args: unknown[]): Promise<number> {
    const others = [...this.live.keys()].filter((id) => id !== this.id);
    await Promise.all(others.map((id) => this.send(id, app, name, args)));
    return others.length;
  }

  private record(): NodeRecord {
    return { ...this.o.describe(), id: this.id, epoch: this.epoch, startedAt: this.startedAt };
  }

  private async beat(): Promise<void> {
    if (this.beating || this.stopped) return;
    this.beating = true;
    try {
      await this.o.state.heartbeat(this.record(), this.o.heartbeatMs * 3);
      const reaped = await this.o.state.reap();
      if (reaped.length > 0) this.log.info({ reaped }, 'reaped dead nodes');
      this.update(await this.o.state.nodes());
    } catch (e) {
      this.log.warn({ err: errorText(e) }, 'heartbeat failed; will retry');
    } finally {
      this.beating = false;
    }
  }

  /** Diffs the live set against the last one and tells the apps. */
  private update(entries: NodeEntry[]): void {
    const next = new Map(entries.map((e) => [e.id, e]));
    const previous = this.live;
    this.live = next;
    for (const [id, e] of next) if (!previous.has(id) && id !== this.id) this.o.hooks.joined(e);
    for (const [id, e] of previous) if (!next.has(id) && id !== this.id) this.o.hooks.left(e);
    this.o.hooks.updated?.(entries);
  }

  private async subscribe(): Promise<void> {
    await this.unsubscribe?.().catch(() => {});
    this.unsubscribe = await this.o.state.subscribe(`rpc:${this.id}`, (m) => this.onMessage(m));
  }

  /** DESIGN.md: pub/sub is probed; two missed probes → resubscribe, and not ready meanwhile. */
  private async probe(): Promise<void> {
    if (Date.now() - this.lastProbeAt > PROBE_MS * 1.5) {
      this.probesMissed++;
      if (this.probesMissed >= 2) {
        this.log.warn({ missed: this.probesMissed }, 'pub/sub probe lost; resubscribing');
        await this.subscribe().catch((e: unknown) =>
          this.log.warn({ err: errorText(e) }, 'resubscribe failed'),
        );
      }
    }
    await this.o.state
      .publish(`rpc:${this.id}`, this.seal({ kind: 'probe', to: this.id, app: '', name: '', args: [] }))
      .catch(() => {});
  }

  private async deliver(m: Pick<Envelope, 'kind' | 'to' | 'app' | 'name' | 'args'>): Promise<boolean> {
    if (!this.live.has(m.to)) return false;
    await this.o.state.publish(`rpc:${m.to}`, this.seal(m));
    return true;
  }

  private seal(m: Pick<Envelope, 'kind' | 'to' | 'app' | 'name' | 'args'>): string {
    return sealMessage(this.o.secret, { ...m, from: this.id, epoch: this.epoch });
  }

  private onMessage(raw: string): void {
    let e: Envelope;
    try {
      e = JSON.parse(raw) as Envelope;
    } catch {
      this.dropped.forged++;
      return;
    }
    const mac = Buffer.from(typeof e.mac === 'string' ? e.mac : '', 'hex');
    const expected = Buffer.from(messageMac(this.o.secret, e), 'hex');
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected) || e.to !== this.id) {
      this.dropped.forged++;
      this.log.warn({ from: e.from }, 'dropped a node message with a bad signature');
      return;
    }
    if (Math.abs(Date.now() - e.ts) > MESSAGE_WINDOW_MS) {
      this.dropped.stale++;
      return;
    }
    if (this.seenNonces.has(e.nonce)) {
      this.dropped.replayed++;
      return;
    }
    this.remember(e.nonce);
    if (e.kind === 'probe') {
      if (e.from === this.id) {
        this.lastProbeAt = Date.now();
        this.probesMissed = 0;
      }
      return;
    }
    if (e.kind === 'control') {
      this.o.hooks.control?.(e.name, Array.isArray(e.args) ? e.args : []);
      return;
    }
    if (e.kind === 'forward-hello') {
      const request = this.checked(e, parseForwardHello);
      if (request) this.o.hooks.forwardHello?.(e.from, request);
      return;
    }
    if (e.kind === 'group-introduce') {
      const request = this.checked(e, parseGroupIntroduction);
      if (request) this.o.hooks.groupIntroduce?.(e.from, request);
      return;
    }
    this.o.hooks.message(this.live.get(e.from), e.from, e.app, e.name, Array.isArray(e.args) ? e.args : []);
  }

  /** A signed request's `args[0]`, parsed; undefined (dropped, counted, logged) when it is malformed. */
  private checked<T>(e: Envelope, parse: (value: unknown) => T): T | undefined {
    try {
      return parse(Array.isArray(e.args) ? e.args[0] : undefined);
    } catch (err) {
      this.dropped.malformed++;
      this.log.warn({ from: e.from, err: errorText(err) }, `dropped a ${e.kind} request`);
      return undefined;
    }
  }

  /** Nonces are kept as long as a message could still be fresh. */
  private remember(nonce: string): void {
    const now = Date.now();
    this.seenNonces.set(nonce, now);
    if (this.seenNonces.size % 1024 === 0) {
      for (const [n, at] of this.seenNonces) if (now - at > 2 * MESSAGE_WINDOW_MS) this.seenNonces.delete(n);
    }
  }
}
