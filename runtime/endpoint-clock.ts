import { performance } from 'node:perf_hooks';
import type { Endpoint } from './rtmfp/endpoint.ts';

/**
 * Runs an Endpoint's deadlines and flushes on Node's timers, for the node and the client alike:
 * one timer, set for the endpoint's earliest deadline, and one setImmediate per batch of wakes.
 * A wake-up of an idle process costs far more than a tick's work (a fixed 20 ms interval cost
 * ~0.2 ms of CPU per session in the session benchmark, section a, with nothing due): it sleeps
 * until something is due.
 */
export class EndpointClock {
  private readonly endpoint: Endpoint;
  private timer: NodeJS.Timeout | undefined;
  /** When `timer` fires; Infinity when none is set. */
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = false;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
  }

  /** The endpoint's next deadline may have moved earlier: make sure the timer fires by then. */
  arm(): void {
    const at = this.endpoint.nextDeadline();
    if (this.stopped || at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.tick(), Math.max(0, at - performance.now()));
    this.timer.unref();
  }

  /**
   * Runs `service(now)` once this clock reaches `at`: a deadline of the layers above the
   * sessions, which the endpoint's do not cover (a Flow Sync barrier's bound, flow-sync.ts
   * WakeAt). Nothing runs once stopped.
   */
  at(at: number, service: (now: number) => void): void {
    if (this.stopped) return;
    const timer = setTimeout(
      () => {
        const now = performance.now();
        // Node's timers count from the event loop's cached time, so one may fire a little early.
        if (now < at) this.at(at, service);
        else if (!this.stopped) service(now);
      },
      Math.max(0, at - performance.now()),
    );
    timer.unref();
  }

  /** Flushes what the endpoint's sessions queued, once the current event is done. */
  wake(): void {
    setImmediate(() => this.endpoint.flush(performance.now()));
  }

  /** Services what is due, then sleeps until the earliest deadline. */
  tick(): void {
    clearTimeout(this.timer);
    this.timerAt = Number.POSITIVE_INFINITY;
    this.endpoint.service(performance.now());
    this.arm();
  }

  /** No timer from now on (`tick` still services by hand, e.g. while shutting down). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timerAt = Number.POSITIVE_INFINITY;
  }
}
