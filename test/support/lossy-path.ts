import dgram from 'node:dgram';
import { prng } from './node.ts';

export interface LossyPathOptions {
  /** Probability a datagram is dropped, each direction. */
  loss: number;
  /** Probability a datagram is sent twice. */
  duplicate: number;
  /** Probability a datagram is held back and sent after the next one (reordering). */
  reorder: number;
  /** Extra random delay up to this many ms. */
  jitterMs: number;
  seed: number;
}

/**
 * A test transport, not the product: a UDP relay on 127.0.0.1 between clients and a node that
 * drops, duplicates, delays and reorders datagrams. Each client source port gets its own
 * upstream socket so the node sees distinct clients.
 */
export class LossyPath {
  readonly front = dgram.createSocket('udp4');
  private readonly upstreams = new Map<string, dgram.Socket>();
  private readonly random: () => number;
  private readonly o: LossyPathOptions;
  private readonly target: number;
  private held: (() => void) | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  forwarded = 0;
  dropped = 0;

  constructor(targetPort: number, o: LossyPathOptions) {
    this.target = targetPort;
    this.o = o;
    this.random = prng(o.seed);
  }

  async start(): Promise<number> {
    this.front.on('message', (msg, rinfo) => this.fromClient(msg, rinfo.port));
    await new Promise<void>((r) => this.front.bind(0, '127.0.0.1', r));
    return this.front.address().port;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    const sockets = [this.front, ...this.upstreams.values()];
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  private fromClient(msg: Buffer, clientPort: number): void {
    const key = String(clientPort);
    let up = this.upstreams.get(key);
    if (!up) {
      up = dgram.createSocket('udp4');
      up.bind(0, '127.0.0.1');
      up.on('message', (reply) => this.pass(() => this.front.send(reply, clientPort, '127.0.0.1')));
      this.upstreams.set(key, up);
    }
    const socket = up;
    this.pass(() => socket.send(msg, this.target, '127.0.0.1'));
  }

  /** Applies loss, duplication, reordering and jitter to one datagram's delivery. */
  private pass(deliver: () => void): void {
    if (this.random() < this.o.loss) {
      this.dropped++;
      return;
    }
    const copies = this.random() < this.o.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const send = () => {
        this.forwarded++;
        deliver();
      };
      if (this.random() < this.o.reorder && !this.held) {
        this.held = send;
        continue;
      }
      this.later(send);
      const held = this.held;
      if (held) {
        this.held = undefined;
        this.later(held);
      }
    }
  }

  private later(fn: () => void): void {
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        fn();
      },
      Math.floor(this.random() * this.o.jitterMs),
    );
    this.timers.add(t);
  }
}
