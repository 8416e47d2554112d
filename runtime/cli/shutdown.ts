import { constants } from 'node:os';
import type { Logger } from 'pino';
import { errorText } from '../error-text.ts';

/** Says what a shutdown is doing now, so a shutdown cut short can name the step that hung. */
export type ShutdownStep = (what: string) => void;

/**
 * How a long-running command (`fnhost node`, `fnhost dev`) ends on SIGINT or SIGTERM: `stop`
 * gets `shutdownMs` (`[node] shutdown_ms`) to leave the cluster and close sessions, then the
 * process exits (0 when `stop` finished, 1 when it failed or ran out of time, naming the step
 * it was in). A second signal exits at once (128 + the signal's number, as a shell reports it):
 * whoever presses Ctrl-C twice, or a supervisor that escalates, must not wait on a hung store.
 * Returns a function that starts the same shutdown without a signal (`why` is logged).
 */
export function exitOnSignals(o: {
  log: Logger;
  shutdownMs: number;
  stop: (step: ShutdownStep) => Promise<void>;
}): (why: string) => void {
  let step = 'starting to shut down';
  let stopping = false;
  const shutdown = (why: string) => {
    stopping = true;
    setTimeout(() => {
      o.log.error({ step }, `shutdown_ms (${o.shutdownMs} ms) passed while ${step}; exiting anyway`);
      process.exit(1);
    }, o.shutdownMs);
    o.stop((what) => {
      step = what;
    }).then(
      () => process.exit(0),
      (e: unknown) => {
        o.log.error({ step, err: errorText(e), why }, `shutdown failed while ${step}`);
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      o.log.warn({ signal, step }, `${signal} again: exiting now, while ${step}`);
      process.exit(128 + constants.signals[signal]);
    }
    o.log.info(
      { signal, shutdownMs: o.shutdownMs },
      `${signal}: shutting down (a second signal exits at once)`,
    );
    shutdown(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  /** The same bounded shutdown, started by the process itself (a drain that finished). */
  return (why: string): void => {
    if (stopping) return;
    o.log.info({ why, shutdownMs: o.shutdownMs }, `${why}: shutting down`);
    shutdown(why);
  };
}
