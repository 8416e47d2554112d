import { type Address, sameAddress } from './address.ts';
import { Initiator, type InitiatorStep } from './handshake-initiator.ts';
import type { KeyingPolicy } from './keying.ts';

/** Startup retransmission: first after this, then growing (rtmfp-cpp grows by 1.5 s). */
const STARTUP_RETRY_MS = 500;
const STARTUP_RETRY_GROWTH_MS = 500;
/** Addresses a redirected opening tries at most (the newest kept). */
const MAX_OPENING_TARGETS = 24;

/** A session we open: where, and as whom (the EPD's URI). */
export interface OpenOptions {
  /** The server's rtmfp:// URI (RFC 7425 §4.4.2); or `peerId` to open to a peer. */
  uri?: string;
  /** A peer's ID (its certificate's SHA-256): the EPD names it and its RHello must match it. */
  peerId?: Buffer;
  /** Our certificate (default: a fresh one). */
  certificate?: Buffer;
  /** Where the IHello goes first (RHello narrows it to the answering address, Redirect adds). */
  targets: Address[];
  /** DH groups in our order of preference. */
  groups?: readonly number[];
  policy?: KeyingPolicy;
  /** Our session ID (default: random); rtmfp-cpp hands out small ones again after a restart. */
  localId?: number;
}

/**
 * One session we are opening as initiator (RFC 7016 §3.5.1), until it opens or is cancelled:
 * where the startup datagram goes and when it goes again.
 */
export class Opening {
  readonly localId: number;
  /** The peer ID (hex) this opening is to, when it opens to a peer rather than a server URI. */
  readonly farPeerId: string | undefined;
  /** When the IHello or IIKeying goes out again. */
  deadline = 0;
  private readonly initiator: Initiator;
  private targets: Address[];
  private attempts = 0;

  constructor(o: OpenOptions, localId: number) {
    this.localId = localId;
    this.farPeerId = o.peerId?.toString('hex');
    this.targets = o.targets;
    this.initiator = new Initiator({
      uri: o.uri,
      peerId: o.peerId,
      certificate: o.certificate,
      groups: o.groups,
      policy: o.policy,
      localId,
    });
  }

  /** Our peer ID (hex SHA-256 of the certificate the IIKeying carries). */
  get peerId(): string {
    return this.initiator.peerId;
  }

  /** The certificate our IIKeying carries: what the far end compares with its own on glare. */
  get certificate(): Buffer {
    return this.initiator.certificate;
  }

  /** Sends the current startup datagram (IHello, then IIKeying) to every target; sets `deadline`. */
  resend(now: number, send: (datagram: Buffer, to: Address) => void): void {
    const datagram = this.initiator.current(now);
    for (const t of this.targets) send(datagram, t);
    this.deadline = now + STARTUP_RETRY_MS + this.attempts++ * STARTUP_RETRY_GROWTH_MS;
  }

  /** A startup datagram from a responder (RHello, Redirect, Cookie Change, RIKeying). */
  onStartup(datagram: Buffer, from: Address, now: number): OpeningStep {
    const step = this.initiator.onStartup(datagram, now);
    switch (step.kind) {
      case 'ignore':
        return step.reason === 'tag' ? { kind: 'not-mine' } : { kind: 'drop', reason: step.reason };
      case 'send':
        this.targets = [from];
        return { kind: 'resend' };
      case 'redirect': {
        const next = step.addresses.filter((a) => !this.targets.some((t) => sameAddress(t, a)));
        // Nothing new: the IHellos go on at their retry time. Re-sending on every Redirect would
        // be a storm with a server that answers every IHello with one (the server is a target too).
        if (next.length === 0) return { kind: 'taken' };
        this.targets = [...this.targets, ...next].slice(-MAX_OPENING_TARGETS);
        return { kind: 'resend' };
      }
      case 'established':
        return step;
    }
  }
}

export type OpeningStep =
  /** Another opening's (its tag is not ours). */
  | { kind: 'not-mine' }
  | { kind: 'drop'; reason: string }
  /** Ours, and it changes nothing now (a Redirect naming only addresses already tried). */
  | { kind: 'taken' }
  /** Send the startup datagram again now (to the answering address, or redirected ones too). */
  | { kind: 'resend' }
  | Extract<InitiatorStep, { kind: 'established' }>;
