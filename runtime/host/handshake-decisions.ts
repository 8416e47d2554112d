import type { Logger } from 'pino';
import type { ConfigStrategy } from '../cluster/selection.ts';
import { type Address, formatAddress, parseAddress } from '../rtmfp/address.ts';
import { type AppSandbox, CHOSE_HERE, type DispatchKind, failed } from '../sandbox/sandbox.ts';
import { splitUrl } from './app-url.ts';
import type { Balancer } from './balancer.ts';
import type { HandlerCalls } from './handler-calls.ts';
import { MAX_REDIRECT_ADDRESSES, redirectTargets, unresolvedTarget } from './handler-values.ts';
import { type HandshakeHook, type HandshakeRequest, UNANSWERED } from './handshake-hook.ts';
import { HostNames } from './host-names.ts';

/**
 * How long an IHello's decision answers its repeats: the re-send to every address right after
 * a redirect and a first retransmission. Later retries are decided afresh, so an onHandshake
 * that falls back on `hs.attempts` (Cumulus-style: accept here after a few) still can.
 */
const DECISION_MS = 2_000;
/** Decisions kept at most; the oldest go first. */
const MAX_DECISIONS = 10_000;

/** Where an IHello goes: IP addresses to redirect to, undefined to accept here, or UNANSWERED. */
type Destination = Address[] | undefined | typeof UNANSWERED;

/** An IHello as onHandshake sees it. */
interface Handshake {
  address: string;
  path: string;
  properties: Record<string, string>;
  attempts: number;
}

export interface HandshakeDecisionsOptions {
  /** The apps running on this node, by name (the AppHost's, kept current by it). */
  apps: ReadonlyMap<string, AppSandbox>;
  calls: HandlerCalls;
  logger: Logger;
  /** onHandshake calls allowed per second; past it the default (accept here) applies. */
  perSecond: number;
  /** Chooses nodes and seats redirected clients; absent: standalone. */
  balancer?: Balancer;
  /** `[balance] strategy`: balances handshakes that onHandshake leaves undecided. */
  strategy?: ConfigStrategy;
}

/**
 * Where the IHellos of one node's apps go (RFC 7016 §3.5.1.1): one naming an app, by that
 * app's onHandshake and then `[balance] strategy`; one naming a peer no node knows, by the
 * apps' onRendezVousUnknown. Host names a handler gives are resolved to IP addresses, since a
 * redirect carries addresses only.
 */
export class HandshakeDecisions {
  private readonly o: HandshakeDecisionsOptions;
  private readonly hostNames = new HostNames();
  private window = 0;
  private windowCalls = 0;
  /** Handshake tag → where its IHellos go, while its client may still be handshaking. */
  private readonly decisions = new Map<string, { decision: Promise<Destination>; until: number }>();
  /** onHandshake calls skipped because of the per-second bound. */
  overBound = 0;

  constructor(o: HandshakeDecisionsOptions) {
    this.o = o;
  }

  /**
   * Where an IHello goes: IP addresses to redirect to, undefined to accept here (also when
   * onHandshake fails or returns something else), UNANSWERED when no node may take the
   * client. onHandshake decides first; when it names no address, `[balance] strategy` does.
   * A client another node sent here (it holds a seat here) is accepted without either: its
   * onHandshake ran there. Never rejects.
   */
  handshake(request: HandshakeRequest, now: number): ReturnType<HandshakeHook> {
    const { app, path, properties } = splitUrl(request.uri);
    const sandbox = this.o.apps.get(app);
    const handler = sandbox?.has('onHandshake') ?? false;
    const strategy = this.o.strategy ?? 'none';
    if (!sandbox || (!handler && (strategy === 'none' || !this.o.balancer))) return undefined;
    const known = this.decisions.get(request.tag);
    if (known && known.until > now) return known.decision;
    if (now - this.window >= 1000) {
      this.window = now;
      this.windowCalls = 0;
    }
    if (++this.windowCalls > this.o.perSecond) {
      this.overBound++;
      return undefined;
    }
    const hs = { address: formatAddress(request.from), path, properties, attempts: request.attempts };
    const decision = this.decide(app, sandbox, handler ? hs : undefined, request).catch((err: unknown) => {
      this.o.calls.internalError(app, 'onHandshake', err);
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
    for (const app of [...this.o.apps.keys()].sort()) {
      const sandbox = this.o.apps.get(app);
      if (!sandbox?.has('onRendezVousUnknown')) continue;
      const outcome = await this.o.calls.call(app, sandbox, 'rendezvousUnknown', '', undefined, [peerId]);
      const named = outcome.status === 'ok' ? redirectTargets(outcome.value) : [];
      if (typeof named === 'string') {
        this.misnamed(app, 'rendezvousUnknown', named);
        continue;
      }
      this.o.calls.report(app, 'rendezvousUnknown', '', undefined, outcome);
      if (named.length === 0) continue;
      const resolved = await this.resolve(named, from);
      if (typeof resolved !== 'string') return resolved;
      this.misnamed(app, 'rendezvousUnknown', resolved);
    }
    return undefined;
  }

  /**
   * Keeps an IHello's decision for its tag: a client re-sends its IHello to every address it
   * has (RFC 7016 §3.5.1.1.1), so the node that redirected it hears it again and must answer
   * the same, not take a fresh turn. A client left unanswered is decided afresh.
   */
  private remember(tag: string, decision: Promise<Destination>, now: number): void {
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
  ): Promise<Destination> {
    const balancer = this.o.balancer;
    if (balancer && (await balancer.seated(request.tag))) return undefined;
    let targets: Address[] = [];
    if (hs) {
      const outcome = await this.o.calls.call(app, sandbox, 'handshake', '', undefined, [hs]);
      if (outcome.status === 'ok' && outcome.value === CHOSE_HERE) return undefined;
      const named = outcome.status === 'ok' ? redirectTargets(outcome.value) : [];
      if (typeof named === 'string') {
        this.misnamed(app, 'handshake', named);
        return undefined;
      }
      if (outcome.status === 'failed' && outcome.failure.kind === 'reject') {
        this.o.logger.info({ app, why: outcome.failure.message }, 'onHandshake left an IHello unanswered');
        return UNANSWERED;
      }
      this.o.calls.report(app, 'handshake', '', undefined, outcome);
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
      this.misnamed(app, 'handshake', resolved);
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

  /** Logs a handler's answer that names no usable address, as its failure. */
  private misnamed(app: string, kind: DispatchKind, why: string): void {
    this.o.calls.report(app, kind, '', undefined, failed(why));
  }
}
