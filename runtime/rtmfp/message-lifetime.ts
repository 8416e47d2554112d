/**
 * Partial reliability for one message (RFC 7016 §3.6.2.3, RTMFP-NOTES §8.1): media that is
 * late is worth less than the bandwidth it takes, so it is given up instead of retransmitted.
 */
export interface MessageLifetime {
  /** ms (session clock) after which the message is abandoned if not fully acknowledged. */
  lifetimeMs: number;
  /** Abandon it instead if its first fragment is not sent within this many ms (default: lifetimeMs). */
  startWithinMs?: number;
}

/** The deadlines of one message written with a lifetime, shared by its fragments. */
export interface MessageDeadline {
  abandonAt: number;
  /** Infinity once the first fragment has gone out. */
  startBy: number;
  abandoned: boolean;
}

/** The deadlines of a message written at `now`. Throws RangeError for a lifetime that is not one. */
export function deadlineOf(lifetime: MessageLifetime, now: number): MessageDeadline {
  const { lifetimeMs, startWithinMs = lifetimeMs } = lifetime;
  checkMs('lifetimeMs', lifetimeMs);
  checkMs('startWithinMs', startWithinMs);
  return { abandonAt: now + lifetimeMs, startBy: now + startWithinMs, abandoned: false };
}

function checkMs(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0)
    throw new RangeError(`message lifetime: ${name} must be a finite number of ms ≥ 0, got ${value}`);
}
