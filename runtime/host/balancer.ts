import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  byHash,
  type Candidate,
  eligible,
  lightest,
  type Strategy,
  twoChoice,
} from '../cluster/selection.ts';
import type { NodeEntry, State } from '../cluster/state.ts';
import { errorText } from '../error-text.ts';
import type { LoadBalancerAnswer } from '../http/server.ts';
import { formatAddress, parseAddress } from '../rtmfp/address.ts';

/**
 * How long a redirected client may take from the Redirect to its NetConnection: a seat taken
 * this long before a node's heartbeat is counted in that heartbeat's clients instead.
 */
const CONNECT_GRACE_MS = 500;

/**
 * A seat read or write slower than this is given up (a hung store: its commands time out only
 * after seconds), and the handshake goes on without it rather than keep a client waiting.
 */
const STORE_WAIT_MS = 250;

/** A seat lives at least this long: a redirected client's handshake and connect fit well inside. */
export const MIN_SEAT_TTL_MS = 2_000;

/** What a handler's helper, `[balance] strategy` or `/loadbalancer` asks for. */
export interface BalanceRequest {
  strategy: Strategy;
  /** by-hash: what the client sticks by. */
  key?: string;
  /** Leave this node out. */
  exceptSelf?: boolean;
  /** Overrides `[balance] max_clients` for this request. */
  maxClients?: number;
}

/** Where a new client goes: here, elsewhere (public addresses), or nowhere ("cluster full"). */
export type Choice = { kind: 'here' } | { kind: 'redirect'; to: string[] } | { kind: 'full'; reason: string };

export interface BalancerOptions {
  /** This node's id. */
  self: () => string;
  /** Live nodes as of the last heartbeat, this one included. */
  nodes: () => NodeEntry[];
  /** This node's clients now; its record's figure is a heartbeat old. */
  localClients: () => number;
  store: Pick<State, 'addSeat' | 'hasSeat' | 'seats'>;
  /** `[balance] max_clients`. */
  maxClients: number | undefined;
  seatTtlMs: number;
  logger: Logger;
  random?: () => number;
}

/** Why no node was chosen, for logs, handlers and `/loadbalancer`'s 503. */
export const CLUSTER_FULL = 'cluster full: every node is paused, draining or at max_clients';

/**
 * Chooses nodes for new clients and keeps the pending seats (DESIGN.md "Selection avoids
 * herding"). Seats live in the cluster store, not in each node's memory, for two reasons:
 * the node a client is redirected to must recognise it and accept it (every node runs the
 * same onHandshake, so without that a client would be bounced on from node to node), and a
 * burst reaching several nodes at once must see the seats all of them handed out. A seat is
 * keyed by the client's handshake tag, which its retried IHellos repeat to every node. The
 * price is store round trips on the handshake path (see `npm run bench`, section i); when the
 * store is down, selection goes on from the heartbeat figures alone.
 */
export class Balancer {
  private readonly o: BalancerOptions;
  private readonly log: Logger;
  private readonly random: () => number;
  /** Round-robin position; per node, since the list it walks is the same on every node. */
  private turn = 0;
  /**
   * Nodes chosen here whose seat is not in the store yet, or (this node) whose client is not
   * connected yet: node id, when the reservation lapses. Choices made while an earlier one's
   * seat is being written must count it, or a burst that reads the store all at once would herd.
   */
  private reserved: { id: string; until: number }[] = [];

  constructor(o: BalancerOptions) {
    this.o = o;
    this.log = o.logger.child({ component: 'balance' });
    this.random = o.random ?? Math.random;
  }

  /** Picks by `request.strategy` among the eligible nodes; `here` when that is this node. */
  async choose(request: BalanceRequest): Promise<Choice> {
    const self = this.o.self();
    const seats = await this.storedSeats();
    // From here to the reservation below nothing awaits: concurrent choices see each other's.
    const list = eligible(this.candidates(seats), {
      self,
      exceptSelf: request.exceptSelf,
      maxClients: request.maxClients ?? this.o.maxClients,
    });
    if (list.length === 0) return { kind: 'full', reason: CLUSTER_FULL };
    let picked: Candidate[];
    switch (request.strategy) {
      case 'round-robin':
        picked = [list[this.turn++ % list.length]];
        break;
      case 'least-loaded':
        picked = [twoChoice(list, this.random)];
        break;
      case 'by-hash':
        picked = [byHash(list, request.key ?? '')];
        break;
      case 'all-servers':
        picked = list;
        break;
    }
    this.reserve(picked.map((c) => c.id));
    if (picked.length === 1 && picked[0].id === self) return { kind: 'here' };
    return { kind: 'redirect', to: picked.map((c) => c.publicAddress) };
  }

  /**
   * `/loadbalancer`: the least-loaded eligible node (this one included), whose seat is taken
   * at once so a burst of queries spreads too.
   */
  async lightest(): Promise<LoadBalancerAnswer> {
    const seats = await this.storedSeats();
    const list = eligible(this.candidates(seats), { self: this.o.self(), maxClients: this.o.maxClients });
    if (list.length === 0) return { unavailable: CLUSTER_FULL };
    const best = lightest(list);
    this.reserve([best.id]);
    await this.addSeats(randomBytes(8).toString('hex'), [best.id]);
    return { address: best.publicAddress };
  }

  /**
   * Seats the client (handshake tag, hex) at the nodes it is sent to, by public address
   * (`host:port` as formatAddress writes it); addresses of no node of the cluster get none.
   */
  async seat(client: string, addresses: readonly string[]): Promise<void> {
    const ids = this.o
      .nodes()
      .filter((n) => {
        const a = parseAddress(n.publicAddress);
        return a !== undefined && addresses.includes(formatAddress(a));
      })
      .map((n) => n.id);
    await this.addSeats(client, ids);
  }

  /** Whether another node (or this one, for a retried IHello) already chose this node for `client`. */
  async seated(client: string): Promise<boolean> {
    try {
      return await quick(this.o.store.hasSeat(this.o.self(), client));
    } catch (e) {
      this.log.debug({ err: errorText(e) }, 'could not read seats; deciding afresh');
      return false;
    }
  }

  /** Stores seats at `ids`; the reservations they stand for go once they are in the store. */
  private async addSeats(client: string, ids: readonly string[]): Promise<void> {
    try {
      await quick(Promise.all(ids.map((id) => this.o.store.addSeat(id, client, this.o.seatTtlMs))));
    } catch (e) {
      this.log.debug({ err: errorText(e) }, 'could not store a pending seat; redirecting anyway');
      return;
    }
    for (const id of ids) {
      const at = this.reserved.findIndex((r) => r.id === id);
      if (at >= 0) this.reserved.splice(at, 1);
    }
  }

  /**
   * A reservation covers a choice until its seat is stored, or, for this node, until the
   * client is one of its live connections: CONNECT_GRACE_MS is plenty for either.
   */
  private reserve(ids: readonly string[]): void {
    const until = performance.now() + CONNECT_GRACE_MS;
    for (const id of ids) this.reserved.push({ id, until });
  }

  private async storedSeats(): Promise<Record<string, number>> {
    try {
      const nodes = this.o.nodes();
      // A seat taken well before a node's last heartbeat is a client of that heartbeat by now:
      // counting it again would make a node look full while its clients connect.
      const lapsingAfter = Object.fromEntries(
        nodes.map((n) => [n.id, n.heartbeatAt - CONNECT_GRACE_MS + this.o.seatTtlMs]),
      );
      return await quick(
        this.o.store.seats(
          nodes.map((n) => n.id),
          lapsingAfter,
        ),
      );
    } catch (e) {
      this.log.debug({ err: errorText(e) }, 'could not read seats; balancing on heartbeat figures');
      return {};
    }
  }

  /** The live nodes with their seats: those in the store and those chosen here since. */
  private candidates(seats: Record<string, number>): Candidate[] {
    const self = this.o.self();
    const now = performance.now();
    this.reserved = this.reserved.filter((r) => r.until > now);
    const reserved = (id: string) => this.reserved.filter((r) => r.id === id).length;
    return this.o.nodes().map((n) => ({
      id: n.id,
      publicAddress: n.publicAddress,
      clients: n.id === self ? this.o.localClients() : n.load.clients,
      seats: (seats[n.id] ?? 0) + reserved(n.id),
      paused: n.paused,
      state: n.state,
    }));
  }
}

/** `work`, or a rejection once STORE_WAIT_MS has passed without it. */
function quick<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer from the cluster store in ${STORE_WAIT_MS} ms`)),
      STORE_WAIT_MS,
    );
  });
  // The store's own answer may still come (or fail) later: nothing waits for it then.
  work.catch(() => {});
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
