import type { Logger } from 'pino';
import {
  type AppSandbox,
  type ClientInfo,
  type DispatchKind,
  eventName,
  failed,
  handlerName,
  type Outcome,
} from '../sandbox/sandbox.ts';
import { connectResultProblem, rpcResultProblem } from './handler-values.ts';
import type { HandlerObserver } from './node-metrics.ts';

/**
 * Why a handler's result will not do, for the events whose result the node acts on (besides
 * onHandshake, whose addresses are checked as they are resolved); undefined when it will.
 */
const RESULT_CHECKS: Partial<Record<DispatchKind, (value: unknown) => string | undefined>> = {
  connect: connectResultProblem,
  rpc: rpcResultProblem,
};

/** One event's handler to run: in `app`'s `sandbox`, `name` the RPC's or server message's. */
type HandlerCall = [
  app: string,
  sandbox: AppSandbox,
  kind: DispatchKind,
  name: string,
  client: ClientInfo | undefined,
  args: unknown[],
];

/** What the node does with a handler's checked outcome. */
type Act = (outcome: Outcome) => void;

/**
 * The handler calls of one node's apps: each is timed for `/metrics`, its result checked, and
 * what a handler did wrong logged naming it.
 */
export class HandlerCalls {
  private readonly log: Logger;
  private readonly observer: HandlerObserver | undefined;

  constructor(log: Logger, observer: HandlerObserver | undefined) {
    this.log = log;
    this.observer = observer;
  }

  /**
   * Runs one event's handler and resolves to its outcome, checked (RESULT_CHECKS) and counted
   * but not logged: the caller `report`s it, once it knows whether the value will do.
   */
  call(...[app, sandbox, kind, name, client, args]: HandlerCall): Promise<Outcome> {
    const start = performance.now();
    return sandbox.dispatch(kind, name, client, args).then((raw) => {
      const why = raw.status === 'ok' ? RESULT_CHECKS[kind]?.(raw.value) : undefined;
      const outcome = why === undefined ? raw : failed(why);
      this.observe(app, kind, name, start, outcome);
      return outcome;
    });
  }

  /**
   * Runs one event's handler and, once its result is checked and any failure logged, `act`s
   * on the outcome. Never rejects: what acting throws (a bug of the node's, since results are
   * checked) is logged instead of ending the process.
   */
  run(...[app, sandbox, kind, name, client, args, act]: [...HandlerCall, act?: Act]): Promise<void> {
    return this.call(app, sandbox, kind, name, client, args)
      .then((outcome) => {
        this.report(app, kind, name, client?.id, outcome);
        act?.(outcome);
      })
      .catch((err: unknown) => this.internalError(app, handlerName(kind, name), err));
  }

  /** Logs what a handler did wrong, naming it; success and "no handler" are silent. */
  report(
    app: string,
    kind: DispatchKind,
    name: string,
    clientId: string | undefined,
    outcome: Outcome,
  ): void {
    if (outcome.status !== 'failed' || outcome.failure.kind !== 'error') return;
    const { message, stack } = outcome.failure;
    const handler = handlerName(kind, name);
    this.log.error(
      { app, event: eventName(kind, name), handler, client: clientId?.slice(0, 16), err: { message, stack } },
      `${handler} failed: ${message}`,
    );
  }

  /** Logs what the node itself failed at while acting on `handler`'s outcome. */
  internalError(app: string, handler: string, err: unknown): void {
    this.log.error({ app, handler, err }, `${handler}: the node failed to act on its outcome`);
  }

  /**
   * Times a handler call that ran. An event the app has no handler for is not counted: its
   * name (an RPC's comes from the client) would be a label anyone could make up.
   */
  private observe(app: string, kind: DispatchKind, name: string, start: number, outcome: Outcome): void {
    if (outcome.status === 'missing') return;
    const seconds = (performance.now() - start) / 1000;
    this.observer?.handled(
      app,
      eventName(kind, name),
      seconds,
      outcome.status === 'failed' ? outcome.failure : undefined,
    );
  }
}
